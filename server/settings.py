"""Settings are a table of (name, default, help), read once into a Settings object.

Nothing reads the environment at import time: the CLI builds Settings from its arguments and
``GRIDBOOK_<NAME>`` environment variables, and passes them to ``create_app(settings)``.
"""

from __future__ import annotations

import ipaddress
import os
import urllib.parse
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sync.store import is_postgres

ROOT = Path(__file__).resolve().parent.parent


class SettingError(Exception):
    """A setting the server cannot start with; the message says which and what to do."""

SETTINGS: list[tuple[str, Any, str]] = [
    ("db", "data/gridbook.db", "the database: a SQLite file path, or a postgresql:// URL (several servers, one "
                               "database)"),
    ("blob_dir", "", "directory for photos and documents; default: <db>.blobs beside the database"),
    ("blob_store", "local", "where blob bytes are kept: local (the blob_dir directory) or s3 (an S3-compatible "
                            "bucket, which several servers sharing one database may share)"),
    ("s3_endpoint_url", "", "URL of the S3-compatible service, e.g. http://127.0.0.1:9000; empty: AWS S3 itself"),
    ("s3_bucket", "", "the bucket for blobs (it must exist); needed when blob_store is s3"),
    ("s3_prefix", "", "a prefix for every key in the bucket, e.g. zhangshui/ to share a bucket"),
    ("s3_region", "us-east-1", "the bucket's region"),
    ("s3_access_key_id", "", "the S3 access key; empty: boto3's own chain (AWS_ACCESS_KEY_ID, ~/.aws, "
                             "an instance role)"),
    ("s3_secret_access_key", "", "the secret of that access key"),
    ("pwa_dir", str(ROOT / "pwa"), "directory of the field app served at /"),
    ("host", "127.0.0.1", "address to listen on"),
    ("port", 8000, "port to listen on"),
    ("max_push_bytes", 2 * 1024 * 1024, "largest push body, after gzip decompression"),
    ("max_mutations", 500, "most mutations in one push"),
    ("max_blob_bytes", 10 * 1024 * 1024, "largest blob"),
    ("max_chunk_bytes", 1024 * 1024, "largest blob chunk in one PATCH"),
    ("max_pending_upload_bytes", 64 * 1024 * 1024,
     "most bytes one user's unfinished blob uploads may announce (Upload-Length) at once"),
    ("upload_expiry_days", 7, "gridbook gc deletes unfinished blob uploads untouched (no chunk) for this many days"),
    ("pull_default_limit", 500, "changes per pull page when the client does not say"),
    ("login_max_failures", 5, "failed logins of one username from one address before each further attempt "
                              "waits twice as long (2 s, 4 s, 8 s … up to the window)"),
    ("login_max_failures_ip", 30, "failed logins per client address within the window before 429"),
    ("login_window_seconds", 900, "the login rate-limit window"),
    ("trusted_proxies", "", "addresses or networks of reverse proxies whose X-Forwarded-For and X-Forwarded-Proto "
                            "are believed, comma-separated; empty: none"),
    ("tombstone_retention_days", 180, "how long deletions and scope exits are kept for pulls"),
    ("secure_cookies", False, "mark staff session cookies Secure (behind HTTPS)"),
    ("session_hours", 12, "how long a staff session lasts"),
    ("secret_key", "", "the key that signs staff console sessions and CSRF tokens (at least 32 characters); "
                       "empty: kept in secret_key_file"),
    ("secret_key_file", "", "file holding that key; default: <db>.key beside the database, made with mode 0600 "
                            "on first start"),
]


@dataclass
class Settings:
    db: str = "data/gridbook.db"
    blob_dir: str = ""
    blob_store: str = "local"
    s3_endpoint_url: str = ""
    s3_bucket: str = ""
    s3_prefix: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = field(default="", repr=False)
    pwa_dir: str = str(ROOT / "pwa")
    host: str = "127.0.0.1"
    port: int = 8000
    max_push_bytes: int = 2 * 1024 * 1024
    max_mutations: int = 500
    max_blob_bytes: int = 10 * 1024 * 1024
    max_chunk_bytes: int = 1024 * 1024
    max_pending_upload_bytes: int = 64 * 1024 * 1024
    upload_expiry_days: int = 7
    pull_default_limit: int = 500
    login_max_failures: int = 5
    login_max_failures_ip: int = 30
    login_window_seconds: int = 900
    trusted_proxies: str = ""
    tombstone_retention_days: int = 180
    secure_cookies: bool = False
    session_hours: int = 12
    secret_key: str = ""
    secret_key_file: str = ""

    @property
    def local_base(self) -> str:
        """Where files that belong beside the database go: the SQLite file's own path, or for a
        PostgreSQL URL ``data/<database name>`` on this server (several servers share the key and
        the blobs through settings instead: ``GRIDBOOK_SECRET_KEY``, ``blob_store = s3``)."""
        if is_postgres(self.db):
            name = urllib.parse.urlsplit(self.db).path.strip("/") or "postgres"
            return os.path.join("data", name)
        return self.db

    @property
    def blobs(self) -> str:
        return self.blob_dir or (self.local_base + ".blobs")

    def proxy_options(self) -> dict[str, Any]:
        """uvicorn's ``proxy_headers`` and ``forwarded_allow_ips``, from ``trusted_proxies`` alone.

        uvicorn's own default believes forwarded headers from 127.0.0.1, where a client (or a proxy
        that passes the header on) then chooses the address the login limiter counts.
        """
        items = [x.strip() for x in self.trusted_proxies.split(",") if x.strip()]
        for item in items:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise SettingError(f"trusted_proxies: {item!r} is not an IP address or network (e.g. 127.0.0.1, "
                                   "10.0.0.0/8); list the proxies themselves, never '*'") from None
        if not items:
            return {"proxy_headers": False}
        return {"proxy_headers": True, "forwarded_allow_ips": items}

    @classmethod
    def load(cls, overrides: dict[str, Any] | None = None, environ: dict[str, str] | None = None) -> "Settings":
        """Defaults, then GRIDBOOK_* variables, then explicit overrides (CLI arguments)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        types = {f.name: type(getattr(cls(), f.name)) for f in fields(cls)}
        for name, _, _ in SETTINGS:
            raw = env.get("GRIDBOOK_" + name.upper())
            if raw is not None:
                values[name] = _coerce(types[name], raw)
        for name, value in (overrides or {}).items():
            if value is not None:
                values[name] = value
        return cls(**values)


def _coerce(t: type, raw: str) -> Any:
    if t is bool:
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if t is int:
        return int(raw)
    return raw
