"""Drift: statistics and histograms (pure), the scheduled job, its reports and alarm rules."""
