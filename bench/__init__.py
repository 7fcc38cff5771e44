"""Benchmark of session-sweeper's write path, per-user call and sweep.

Run it with `python -m bench` (full) or `python -m bench --quick`.
"""
