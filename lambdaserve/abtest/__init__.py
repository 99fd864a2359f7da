"""A/B tests: the per-arm statistics and the report over captured traffic."""
