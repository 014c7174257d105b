"""Benchmarks of okr-warehouse against plain DuckDB baselines (issue 6); see benchmarks/README.md."""
