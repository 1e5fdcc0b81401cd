"""Fault drills: the guarantees that hold when what is around the worker breaks."""
