"""Benchmarks: plain scripts that print numbers (`python -m bench.<name>`)."""
