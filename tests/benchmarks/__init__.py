"""Benchmarks: measured figures, never asserted. Run them all with `bin/bench`."""
