"""Blob bytes in an S3-compatible bucket (AWS S3, MinIO, Ceph, the clouds' object stores), shared
by every server of a town: ``S3Bytes``, the ``BlobBytes`` of ``sync.blobs``.

Keys, under an optional prefix::

    <prefix>ab/abcdef…                          complete blobs, as in the blob directory
    <prefix>partial/<upload>/000000065536.9f3c…  one object per chunk of an unfinished upload

Each chunk is its own object, named by where it starts and a random suffix, and the database
records it (``blob_chunks``) once stored. An S3 multipart upload cannot hold the chunks instead:
every part but the last must be at least 5 MiB, and phones send 64 KiB. The random suffix keeps
two servers that take the same chunk at once (a phone's retry) from overwriting each other: the
database counts one, the other is a stray deleted with the upload's prefix.

Finishing streams the chunks in order, hashing them, into the complete blob: one PUT for a blob
of at most 5 MiB, else a multipart upload in parts of 5 MiB (never more than a part and a chunk in
memory) completed only when the hash matched, aborted otherwise. The chunks are deleted after the
database says the upload is finished, so a finish cut short is done again by whichever server
gets there next.

boto3 is imported here only: the server loads this module when ``blob_store`` is ``s3``.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import threading
from datetime import datetime
from typing import Any, Iterator, Sequence

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .blobs import Chunk, StorageError, StoredBlob, check_sha, is_upload_name

PART = 5 * 1024 * 1024   # S3's smallest multipart part (every part but the last)


@contextlib.contextmanager
def _errors(what: str, missing: bool = False) -> Iterator[None]:
    """S3's errors as ``StorageError``; with ``missing``, a key not there as ``_Missing``."""
    try:
        yield
    except ClientError as e:
        err = e.response.get("Error", {})
        if missing and str(err.get("Code")) in ("404", "NoSuchKey", "NotFound"):
            raise _Missing() from e
        raise StorageError(f"S3 {what}: {err.get('Code', '?')} {err.get('Message', '')}".strip()) from e
    except BotoCoreError as e:
        raise StorageError(f"S3 {what}: {e}") from e


# One boto3 session for the process, made at the first S3Bytes: it parses S3's service description
# once (a fifth of a second each time otherwise). Sessions are not thread-safe: clients are made
# under a lock; the clients themselves are.
_session_lock = threading.Lock()
_sessions: list[Any] = []


def _session() -> Any:
    if not _sessions:
        _sessions.append(boto3.session.Session())
    return _sessions[0]


class _Missing(Exception):
    """The key is not in the bucket, or (a chunk) holds other than the bytes the database recorded."""


class S3Bytes:
    """Blob bytes in ``bucket`` under ``prefix``. Credentials given as None or empty leave boto3 to
    its usual chain (``AWS_ACCESS_KEY_ID``, ``~/.aws``, an instance role), read when this is made."""

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 region: str | None = None, access_key_id: str | None = None,
                 secret_access_key: str | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix
        config = Config(
            # Path-style URLs (endpoint/bucket/key): what S3-compatible services answer without
            # a wildcard DNS name per bucket.
            s3={"addressing_style": "path"} if endpoint_url else {},
            # Checksums only where S3 requires them: botocore's newer default (a CRC on every PUT)
            # is refused by several S3-compatible services; each blob's SHA-256 is checked anyway.
            request_checksum_calculation="when_required", response_checksum_validation="when_required",
            connect_timeout=5, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"})
        with _session_lock:
            self.client: Any = _session().client(
                "s3", endpoint_url=endpoint_url or None, region_name=region or None, config=config,
                aws_access_key_id=access_key_id or None, aws_secret_access_key=secret_access_key or None)

    # -- keys ---------------------------------------------------------------------------------------
    def final_key(self, sha: str) -> str:
        return f"{self.prefix}{check_sha(sha)[:2]}/{sha}"

    def upload_prefix(self, upload: str) -> str:
        if not is_upload_name(upload):
            raise ValueError(f"not an upload's name: {upload!r}")
        return f"{self.prefix}partial/{upload}/"

    def check(self) -> None:
        """Whether the bucket is there and these credentials may use it (at start-up)."""
        with _errors(f"bucket {self.bucket!r}"):
            self.client.head_bucket(Bucket=self.bucket)

    # -- BlobBytes ----------------------------------------------------------------------------------
    def put_chunk(self, upload: str, start: int, data: bytes) -> str:
        name = f"{start:012d}.{secrets.token_hex(8)}"
        with _errors("storing a chunk"):
            self.client.put_object(Bucket=self.bucket, Key=self.upload_prefix(upload) + name, Body=data)
        return name

    def _blocks(self, upload: str, chunks: Sequence[Chunk], length: int) -> Iterator[bytes] | None:
        """The upload's bytes, chunk after chunk, if its chunks cover exactly ``length`` bytes."""
        at = 0
        for c in chunks:
            if c.start != at:
                return None
            at += c.length
        if at != length:
            return None
        return self._stream(upload, chunks)

    def _stream(self, upload: str, chunks: Sequence[Chunk]) -> Iterator[bytes]:
        prefix = self.upload_prefix(upload)
        for c in chunks:
            with _errors("reading a chunk", missing=True):
                body = self.client.get_object(Bucket=self.bucket, Key=prefix + c.name)["Body"]
                got = 0
                try:
                    while block := body.read(1 << 16):
                        got += len(block)
                        yield block
                finally:
                    body.close()
            if got != c.length:
                raise _Missing()

    def finish(self, upload: str, chunks: Sequence[Chunk], sha: str, length: int) -> bool:
        blocks = self._blocks(upload, chunks, length)
        if blocks is None:
            return False
        try:
            if self.length(sha) is not None:   # the same bytes, finished by someone else: check only
                h = hashlib.sha256()
                for block in blocks:
                    h.update(block)
                return h.hexdigest() == sha
            if length <= PART:
                return self._put_whole(blocks, sha)
            return self._put_parts(blocks, sha)
        except _Missing:   # a chunk the database counts is gone: these bytes cannot be finished
            return False

    def _put_whole(self, blocks: Iterator[bytes], sha: str) -> bool:
        h = hashlib.sha256()
        buf = bytearray()
        for block in blocks:
            h.update(block)
            buf += block
        if h.hexdigest() != sha:
            return False
        with _errors("storing a blob"):
            self.client.put_object(Bucket=self.bucket, Key=self.final_key(sha), Body=bytes(buf))
        return True

    def _put_parts(self, blocks: Iterator[bytes], sha: str) -> bool:
        key = self.final_key(sha)
        with _errors("starting a multipart upload"):
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        parts: list[dict[str, Any]] = []
        done = False
        try:
            h = hashlib.sha256()
            buf = bytearray()

            def send() -> None:
                with _errors("storing a part"):
                    r = self.client.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                PartNumber=len(parts) + 1, Body=bytes(buf))
                parts.append({"PartNumber": len(parts) + 1, "ETag": r["ETag"]})
                buf.clear()

            for block in blocks:
                h.update(block)
                buf += block
                if len(buf) >= PART:
                    send()
            if h.hexdigest() != sha:
                return False
            if buf:
                send()
            with _errors("completing a multipart upload"):
                self.client.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                      MultipartUpload={"Parts": parts})
            done = True
            return True
        finally:
            if not done:   # a mismatch or an error: no complete blob, no parts left behind
                with contextlib.suppress(ClientError, BotoCoreError):
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def drop_upload(self, upload: str) -> None:
        keys = self._list(self.upload_prefix(upload))
        for i in range(0, len(keys), 1000):   # DeleteObjects takes at most 1000 keys
            with _errors("deleting an upload's chunks"):
                self.client.delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": k} for k, _ in keys[i:i + 1000]], "Quiet": True})

    def _list(self, prefix: str) -> list[tuple[str, datetime]]:
        out = []
        with _errors("listing"):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                out += [(o["Key"], o["LastModified"]) for o in page.get("Contents", [])]
        return out

    def length(self, sha: str) -> int | None:
        try:
            with _errors("looking up a blob", missing=True):
                return int(self.client.head_object(Bucket=self.bucket, Key=self.final_key(sha))["ContentLength"])
        except _Missing:
            return None

    def open(self, sha: str) -> StoredBlob | None:
        try:
            with _errors("reading a blob", missing=True):
                r = self.client.get_object(Bucket=self.bucket, Key=self.final_key(sha))
        except _Missing:
            return None
        return StoredBlob(int(r["ContentLength"]), r["LastModified"].timestamp(), r["Body"])

    def put(self, sha: str, data: bytes) -> None:
        with _errors("storing a blob"):
            self.client.put_object(Bucket=self.bucket, Key=self.final_key(sha), Body=data)

    def stale_uploads(self, before: datetime) -> list[str]:
        root = f"{self.prefix}partial/"
        newest: dict[str, datetime] = {}
        for key, modified in self._list(root):
            upload, _, chunk = key[len(root):].partition("/")
            if is_upload_name(upload) and chunk and (upload not in newest or modified > newest[upload]):
                newest[upload] = modified   # only what this module names: partial/<upload>/<chunk>
        return sorted(u for u, at in newest.items() if at < before)

    def legacy_partial(self, upload: str) -> tuple[int, float] | None:
        return None   # uploads begun before migration 0003 were all in a local directory
