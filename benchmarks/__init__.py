"""Benchmarks of driftstream against baselines measured in the same run."""
