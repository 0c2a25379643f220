"""Micro-benchmarks of redkeeper's hot paths (run each module as a script)."""
