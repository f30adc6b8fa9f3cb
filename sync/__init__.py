"""Gridbook's sync engine: protocol v1 over SQLite, with no web framework in it.

The server (``server/``) is a thin HTTP shell around :mod:`sync.engine`.
"""

PROTOCOL_VERSION = 1
