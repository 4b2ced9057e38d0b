"""Pages of goals: the quota grid, benchmarks and the time-off calendar."""
