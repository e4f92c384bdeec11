"""Real services for tests and benchmarks, started as processes on free loopback ports."""
