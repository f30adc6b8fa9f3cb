"""Blobs on shared storage (issue 13, item 5): several servers over one database and one bucket.

An upload's offset and chunks are in the database, so a phone whose chunks reach different servers
resumes and finishes as on one; two servers taking the same chunk at once count it once; a finish
cut short at any point (after the complete blob is stored, before the database says so) is done by
the next PATCH on any server or at a server's start; stray chunks are swept. Each runs against the
local directory (shared by the two apps) and an S3 bucket on moto (tests/blobstores.py), plus what
only S3 has: the key layout, a blob over 5 MiB going up in parts, the settings.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from server.settings import SettingError

from . import backend as dbs
from .blobstores import Backend, BlobApi, backend_settings, blob_backend, moto_s3, serve  # noqa: F401
from .test_api import Template, assert_error, town_template  # noqa: F401
from .test_blobs_api import head, patch, sha, url

MiB = 1024 * 1024
PHOTO = b"\xff\xd8\xff\xe0" + os.urandom(300_000)


class Killed(Exception):
    """A server dying at this point (the request answers 500, nothing after it runs)."""


@contextlib.contextmanager
def two_servers(town_template: Template, backend: Backend, tmp_path: Path) -> Iterator[tuple[BlobApi, BlobApi]]:
    """Two apps (two servers) over one database and one blob storage."""
    with serve(town_template, backend, tmp_path) as a, serve(town_template, backend, tmp_path, a.db, copy=False) as b:
        yield a, b


def get(api: BlobApi, who: str, digest: str) -> httpx.Response:
    return api.client.get(url(digest), headers=api.auth(who))


def test_an_upload_started_on_one_server_finishes_on_another(
        town_template: Template, blob_backend: Backend, tmp_path: Path) -> None:
    digest, n = sha(PHOTO), len(PHOTO)
    with two_servers(town_template, blob_backend, tmp_path) as (a, b):
        assert patch(a, "w1", digest, PHOTO[:100_000], 0, n).status_code == 204
        # The phone's next request reaches the other server: it knows where the upload stands.
        h = head(b, "w1", digest)
        assert h.status_code == 200 and h.headers["upload-offset"] == "100000"
        assert_error(patch(b, "w1", digest, PHOTO[:1000], 0, n), 409, "offset_mismatch")
        assert patch(b, "w1", digest, PHOTO[100_000:200_000], 100_000, n).status_code == 204
        assert head(a, "w1", digest).headers["upload-offset"] == "200000"
        assert head(b, "w3", digest).status_code == 404   # still its uploader's alone, on every server
        r = patch(b, "w1", digest, PHOTO[200_000:], 200_000, n)
        assert r.status_code == 204 and r.headers["upload-offset"] == str(n)
        for server in (a, b):
            r = get(server, "w1", digest)
            assert r.status_code == 200 and r.content == PHOTO
            assert r.headers["content-type"] == "image/jpeg" and r.headers["cache-control"] == "no-store"
            assert r.headers["etag"] == f'"{digest}"'
            assert r.headers["content-disposition"] == f'inline; filename="{digest}"'
            assert head(server, "w1", digest).headers["upload-offset"] == str(n)
        assert a.stored() == [f"{digest[:2]}/{digest}"]


def test_two_servers_taking_the_same_chunk_count_it_once(
        town_template: Template, blob_backend: Backend, tmp_path: Path) -> None:
    """A phone that got no answer sends the chunk again and reaches the other server while the
    first is still storing it: both store it, the database counts one, the other answers 409 with
    the offset to go on from. The loser's copy goes with the upload."""
    digest, n = sha(PHOTO), len(PHOTO)
    with two_servers(town_template, blob_backend, tmp_path) as (a, b):
        assert patch(a, "w1", digest, PHOTO[:100_000], 0, n).status_code == 204
        storage = a.app.state["blobs"].bytes
        real = storage.put_chunk
        answers: list[httpx.Response] = []

        def slow_put(upload: str, start: int, data: bytes) -> str:
            name = real(upload, start, data)
            # meanwhile the retry reaches server b, with a longer chunk, and is stored and counted
            answers.append(patch(b, "w1", digest, PHOTO[100_000:250_000], 100_000, n))
            return name

        storage.put_chunk = slow_put
        r = patch(a, "w1", digest, PHOTO[100_000:200_000], 100_000, n)
        del storage.put_chunk
        assert answers[0].status_code == 204 and answers[0].headers["upload-offset"] == "250000"
        err = assert_error(r, 409, "offset_mismatch")
        assert err["details"]["upload_offset"] == 250_000 and r.headers["upload-offset"] == "250000"
        assert patch(a, "w1", digest, PHOTO[250_000:], 250_000, n).status_code == 204
        assert get(b, "w1", digest).content == PHOTO
        assert a.stored() == [f"{digest[:2]}/{digest}"]


def test_a_retry_that_finishes_first_is_no_mismatch(
        town_template: Template, blob_backend: Backend, tmp_path: Path) -> None:
    """While one server checks the last chunk, the phone's retry of it finishes the upload on the
    other (and deletes its chunks): the first then finds the blob done, not a hash mismatch."""
    digest, n = sha(PHOTO), len(PHOTO)
    with two_servers(town_template, blob_backend, tmp_path) as (a, b):
        assert patch(a, "w1", digest, PHOTO[:200_000], 0, n).status_code == 204
        storage = a.app.state["blobs"].bytes
        real = storage.finish
        retried: list[httpx.Response] = []

        def slow_finish(*args: Any) -> bool:
            retried.append(patch(b, "w1", digest, PHOTO[200_000:], 200_000, n))
            return real(*args)  # type: ignore[no-any-return]

        storage.finish = slow_finish
        r = patch(a, "w1", digest, PHOTO[200_000:], 200_000, n)
        del storage.finish
        for answer in (retried[0], r):
            assert answer.status_code == 204 and answer.headers["upload-offset"] == str(n), answer.text
        assert get(a, "w1", digest).content == PHOTO
        assert a.stored() == [f"{digest[:2]}/{digest}"]


def test_a_late_write_into_the_upload_never_changes_the_stored_blob(
        town_template: Template, blob_backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A request that lost a race for a chunk may still be writing its bytes (any bytes: the
    uploader may be hostile) when the blob has been checked and stored: what others read under the
    hash stays the bytes that hashed to it."""
    digest, n = sha(PHOTO), len(PHOTO)
    with serve(town_template, blob_backend, tmp_path) as a:
        storage, writer = a.app.state["blobs"].bytes, a.app.state["stores"].writer
        real = writer.blob_uploaded

        def late_write(sha256: str, user_id: str, length: int, at: str) -> None:
            [upload] = writer.blob_uploads_unfinished()
            storage.put_chunk(upload["partial"], 0, b"\0" * 100_000)   # the loser's write lands now
            real(sha256, user_id, length, at)

        monkeypatch.setattr(writer, "blob_uploaded", late_write)
        assert patch(a, "w1", digest, PHOTO[:200_000], 0, n).status_code == 204
        assert patch(a, "w1", digest, PHOTO[200_000:], 200_000, n).status_code == 204
        assert get(a, "w1", digest).content == PHOTO


def test_a_finish_cut_short_is_done_by_the_next_patch_on_any_server_or_at_start(
        town_template: Template, blob_backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server dies after storing the complete blob and before the database says so. The upload
    holds every byte and HEAD says so; the phone's retry of the last PATCH, on another server, finishes
    it; a server starting finishes the ones nobody retried."""
    first, second = PHOTO, b"\xff\xd8\xff\xe0" + os.urandom(200_000)
    with two_servers(town_template, blob_backend, tmp_path) as (a, b):
        monkeypatch.setattr(a.app.state["stores"].writer, "blob_uploaded", _killed)
        for data in (first, second):
            half = len(data) // 2
            assert patch(a, "w1", sha(data), data[:half], 0, len(data)).status_code == 204
            assert a.client.patch(url(sha(data)), content=data[half:], headers={
                **a.auth("w1"), "Content-Type": "application/offset+octet-stream", "Upload-Offset": str(half),
                "Upload-Length": str(len(data))}).status_code == 500
            assert f"{sha(data)[:2]}/{sha(data)}" in a.stored()    # stored, but the database does not know
            assert_error(get(b, "w1", sha(data)), 404, "not_found")
            h = head(b, "w1", sha(data))
            assert h.headers["upload-offset"] == h.headers["upload-length"] == str(len(data))
        r = patch(b, "w1", sha(first), first[-1000:], len(first) - 1000, len(first))   # the phone's retry
        assert r.status_code == 204 and r.headers["upload-offset"] == str(len(first))
        assert get(b, "w1", sha(first)).content == first
    assert len(blob_backend.partials()) == 1            # the second one, never retried
    with serve(town_template, blob_backend, tmp_path, a.db, copy=False) as c:
        assert get(c, "w1", sha(second)).content == second     # finished as the server started
        assert get(c, "w1", sha(first)).content == first
        assert c.partials() == []
        with contextlib.closing(dbs.connect(c.db)) as db:
            assert db.execute("SELECT count(*) FROM blob_uploads").fetchone()[0] == 0
            assert db.execute("SELECT count(*) FROM blob_chunks").fetchone()[0] == 0


def test_a_chunk_stored_but_not_counted_is_sent_again(
        town_template: Template, blob_backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server dies after storing a chunk and before counting it: the phone was never told it
    arrived, HEAD says where the database stands, and the phone sends it again (here in another
    size), wherever it lands; the stray copy does not end up in the blob."""
    digest, n = sha(PHOTO), len(PHOTO)
    with two_servers(town_template, blob_backend, tmp_path) as (a, b):
        assert patch(a, "w1", digest, PHOTO[:100_000], 0, n).status_code == 204
        monkeypatch.setattr(a.app.state["stores"].writer, "blob_chunk_received", _killed)
        garbage = os.urandom(150_000)   # what a half-written chunk could leave
        assert a.client.patch(url(digest), content=garbage, headers={
            **a.auth("w1"), "Content-Type": "application/offset+octet-stream", "Upload-Offset": "100000",
            "Upload-Length": str(n)}).status_code == 500
        assert head(b, "w1", digest).headers["upload-offset"] == "100000"
        assert patch(b, "w1", digest, PHOTO[100_000:180_000], 100_000, n).status_code == 204
        assert patch(b, "w1", digest, PHOTO[180_000:], 180_000, n).status_code == 204
        assert get(a, "w1", digest).content == PHOTO
        assert b.stored() == [f"{digest[:2]}/{digest}"]


def test_gc_sweeps_the_bytes_of_uploads_no_row_names(
        town_template: Template, blob_backend: Backend, tmp_path: Path) -> None:
    """Bytes left behind when deleting them failed (the storage unreachable a moment): the upload
    is over for the database; ``gridbook gc`` deletes them once as old as the expiry."""
    from sync.blobs import StorageError
    from sync.store import utcnow

    data = os.urandom(50_000)
    with serve(town_template, blob_backend, tmp_path) as a:
        storage = a.app.state["blobs"].bytes
        assert patch(a, "w1", sha(data), data[:20_000], 0, len(data)).status_code == 204

        def unreachable(upload: str) -> None:
            raise StorageError("unreachable")

        storage.drop_upload = unreachable
        assert_error(patch(a, "w1", sha(data), os.urandom(30_000), 20_000, len(data)), 422, "hash_mismatch")
        del storage.drop_upload
        assert head(a, "w1", sha(data)).status_code == 404
        assert len(a.partials()) == 1
        blobs, store = a.app.state["blobs"], a.app.state["stores"].writer
        assert blobs.expire_uploads(store, utcnow() - timedelta(days=7)) == (0, 0, 0)   # too young yet
        assert blobs.expire_uploads(store, utcnow() + timedelta(seconds=5)) == (0, 0, 1)
        assert a.stored() == []


def test_an_empty_blob(town_template: Template, blob_backend: Backend, tmp_path: Path) -> None:
    with serve(town_template, blob_backend, tmp_path) as a:
        r = patch(a, "w1", sha(b""), b"", 0, 0)
        assert r.status_code == 204 and r.headers["upload-offset"] == r.headers["upload-length"] == "0"
        r = get(a, "w1", sha(b""))
        assert r.status_code == 200 and r.content == b""
        assert a.stored() == [f"{sha(b'')[:2]}/{sha(b'')}"]


def _killed(*_: Any, **__: Any) -> Any:
    raise Killed("the server died here")


# -- S3 only ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("blob_backend", ["s3"], indirect=True)
def test_s3_keys_and_a_blob_over_5_mib_going_up_in_parts(
        town_template: Template, blob_backend: Backend, tmp_path: Path) -> None:
    """Chunks are objects of their own under ``<prefix>partial/<upload>/`` until the finish; a blob
    over S3's 5 MiB smallest part is composed by a multipart upload, completed only when the hash
    matched, and nothing of a mismatch stays (no blob, no parts)."""
    s3 = blob_backend
    s3.settings["s3_prefix"] = "zhangshui/"
    big = os.urandom(6 * MiB + 12345)
    bucket = s3.settings["s3_bucket"]
    with serve(town_template, s3, tmp_path) as a:
        for start in range(0, 3 * MiB, MiB):
            assert patch(a, "w1", sha(big), big[start:start + MiB], start, len(big)).status_code == 204
        keys = s3.objects()
        assert len(keys) == 3 and all(k.startswith("zhangshui/partial/" + sha(big) + ".") for k in keys), keys
        assert [k.rsplit("/", 1)[1].split(".")[0] for k in keys] == [f"{o:012d}" for o in (0, MiB, 2 * MiB)]
        for start in range(3 * MiB, len(big), MiB):
            assert patch(a, "w1", sha(big), big[start:start + MiB], start, len(big)).status_code == 204
        assert s3.objects() == [f"zhangshui/{sha(big)[:2]}/{sha(big)}"]
        r = get(a, "w1", sha(big))
        assert r.status_code == 200 and r.content == big and r.headers["content-type"] == "application/octet-stream"
        # the same size, one byte wrong in the last chunk: hash_mismatch, nothing composed or left
        bad = bytearray(os.urandom(6 * MiB))
        wrong = sha(bytes(bad) + b"x")
        for start in range(0, len(bad), MiB):
            r = patch(a, "w1", wrong, bytes(bad[start:start + MiB]), start, len(bad))
        assert_error(r, 422, "hash_mismatch")
        assert s3.objects() == [f"zhangshui/{sha(big)[:2]}/{sha(big)}"]
        assert s3.client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


@pytest.mark.parametrize("blob_backend", ["s3"], indirect=True)
def test_s3_settings_that_cannot_work_stop_the_start(town_template: Template, blob_backend: Backend,
                                                     tmp_path: Path) -> None:
    from server.app import create_app

    s3 = blob_backend
    db = dbs.new_db(tmp_path)
    for extra, message in (({"s3_bucket": "no-such-bucket"}, "cannot use bucket 'no-such-bucket'"),
                           ({"s3_bucket": ""}, "s3_bucket: blob_store is s3"),
                           ({"blob_store": "nfs"}, "neither local nor s3")):
        with pytest.raises(SettingError, match=message):
            create_app(backend_settings(s3, tmp_path, db, **extra))


def test_reading_a_blob_streams_it(town_template: Template, blob_backend: Backend, tmp_path: Path) -> None:
    """GET hands the storage's stream to the response: the first block is read to tell the type,
    the rest as the client takes it (never the whole blob at once)."""
    data = b"%PDF-1.7 " + os.urandom(3 * MiB)
    digest = sha(data)
    with serve(town_template, blob_backend, tmp_path) as a:
        for start in range(0, len(data), MiB):
            assert patch(a, "w1", digest, data[start:start + MiB], start, len(data)).status_code == 204
        sizes: list[int] = []
        stored = a.app.state["blobs"].bytes
        real_open = stored.open

        class Watched:
            def __init__(self, body: Any) -> None:
                self.body = body

            def read(self, size: int = -1) -> bytes:
                sizes.append(size)
                return self.body.read(size)  # type: ignore[no-any-return]

            def close(self) -> None:
                self.body.close()

        def watched_open(sha256: str) -> Any:
            blob = real_open(sha256)
            blob.body = Watched(blob.body)
            return blob

        stored.open = watched_open
        with a.client.stream("GET", url(digest), headers=a.auth("w1")) as r:
            assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
            assert hashlib.sha256(r.read()).hexdigest() == digest
        assert sizes and max(sizes) <= 1 << 16 and -1 not in sizes
