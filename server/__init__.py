"""Gridbook's server: a thin Litestar shell around the sync engine, staff pages and the CLI."""

__version__ = "0.1.0"
