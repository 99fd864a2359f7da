"""Scripts run as fresh processes by ``bench.cold_start``; each times itself from its first line."""
