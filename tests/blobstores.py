"""The blob tests run against both byte storages: the local directory, and an S3 bucket on a moto
server (``moto.server.ThreadedMotoServer``, in this process, on 127.0.0.1 with a free port, one per
test session, stopped at its end; a new bucket per test).

    api                the protocol's Api (tests/test_api.py) over either storage: ``api.stored()``
                       lists what the storage holds, the same way for both
    blob_backend       the storage's settings, for tests that make their own app or run the CLI
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from litestar.testing import TestClient

from server.app import create_app

from . import backend as dbs
from .test_api import Api, Template, settings_for, town_template  # noqa: F401

MOTO_START_SECONDS = 30


@dataclasses.dataclass
class Backend:
    """One byte storage for one test: its settings, and a way to list what it holds."""

    kind: str                      # "local" or "s3"
    root: Path                     # the blob directory (local; S3 tests leave it empty)
    settings: dict[str, Any]       # Settings overrides beyond db and blob_dir
    client: Any = None             # boto3 S3 client (s3)

    @property
    def env(self) -> dict[str, str]:
        """The settings as the CLI reads them from the environment."""
        return {f"GRIDBOOK_{k.upper()}": str(v) for k, v in self.settings.items()}

    def stored(self) -> list[str]:
        """What the storage holds, as relative names: ``ab/abcdef…`` for complete blobs and
        ``partial/<upload>`` for each unfinished upload with bytes stored."""
        if self.kind == "local":
            return sorted(os.path.relpath(os.path.join(d, f), self.root)
                          for d, _, fs in os.walk(self.root) for f in fs)
        out: set[str] = set()
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.settings["s3_bucket"]):
            for o in page.get("Contents", []):
                parts = o["Key"].split("/")
                out.add("/".join(parts[:2]))   # a chunk object partial/<upload>/<chunk> counts as its upload
        return sorted(out)

    def partials(self) -> list[str]:
        return [n for n in self.stored() if n.startswith("partial/")]

    def objects(self, prefix: str = "") -> list[str]:
        """Every key in the bucket (s3)."""
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.settings["s3_bucket"],
                                                                          Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", [])]
        return keys


@dataclasses.dataclass
class BlobApi(Api):
    backend: Backend

    def stored(self) -> list[str]:
        return self.backend.stored()

    def partials(self) -> list[str]:
        return self.backend.partials()


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[tuple[str, Any]]:
    """An S3 server for the session: its URL and a boto3 client of it."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)   # one log line per S3 request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    starting = threading.Thread(target=server.start, daemon=True)
    starting.start()
    starting.join(MOTO_START_SECONDS)
    if starting.is_alive():
        pytest.fail(f"the moto S3 server did not start within {MOTO_START_SECONDS} s")
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    client = boto3.session.Session().client("s3", endpoint_url=url, region_name="us-east-1",
                                            aws_access_key_id="testing", aws_secret_access_key="testing")
    try:
        yield url, client
    finally:
        server.stop()


@pytest.fixture(params=["local", "s3"])
def blob_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    root = tmp_path / "blobs"
    if request.param == "local":
        return Backend("local", root, {})
    url, client = request.getfixturevalue("moto_s3")
    bucket = f"gridbook-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket)
    return Backend("s3", root, {"blob_store": "s3", "s3_endpoint_url": url, "s3_bucket": bucket,
                                "s3_prefix": "", "s3_region": "us-east-1", "s3_access_key_id": "testing",
                                "s3_secret_access_key": "testing"}, client)


def backend_settings(backend: Backend, tmp_path: Path, db: str, **extra: Any) -> Any:
    return settings_for(tmp_path, db, **{**backend.settings, **extra})


@contextlib.contextmanager
def serve(template: Template, backend: Backend, tmp_path: Path, db: str | None = None, copy: bool = True,
          **extra: Any) -> Iterator[BlobApi]:
    """An app over a copy of the template town (or the database ``db`` as it is) and ``backend``."""
    if db is None:
        db = dbs.copy_db(template.db, tmp_path)
    elif copy:
        assert not dbs.POSTGRES, "a PostgreSQL copy gets a name of its own: pass db=None"
        shutil.copyfile(template.db, db)
    town = dataclasses.replace(template.town, clock=0)
    app = create_app(backend_settings(backend, tmp_path, db, **extra))
    with TestClient(app) as client:
        yield BlobApi(client, app, town, db, tmp_path, backend)


@pytest.fixture
def api(town_template: Template, tmp_path: Path, blob_backend: Backend) -> Iterator[BlobApi]:  # noqa: F811
    with serve(town_template, blob_backend, tmp_path) as a:
        yield a
