"""Benchmarks: ``python -m bench`` (``make bench``) prints every performance figure in one table;
each part also runs alone (``python -m bench.latency``, ``bench.coldstart``, ``bench.memory``)."""
