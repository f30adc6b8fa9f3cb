"""Fault injection: phones sync with a real server through a proxy that loses, cuts, delays and
duplicates requests and kills the server (``python -m bench.faults``; docs/reliability.md)."""
