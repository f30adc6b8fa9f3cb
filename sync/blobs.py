"""Blobs (protocol §7): resumable, hash-checked uploads in chunks, stored by SHA-256.

Bytes live in files under the blob directory (``ab/abcdef…``); partial uploads under
``partial/``. The size of the partial file is the upload offset, so a crash between writing a
chunk and answering loses nothing: the phone asks (HEAD) and resumes from there.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from .engine import area_tree
from .errors import SyncError
from .schema import SHA256_RE
from .scope import Actor, user_keys, visible
from .store import SQLiteStore, iso, utcnow

MAX_BLOB = 10 * 1024 * 1024
MAX_CHUNK = 1024 * 1024


@dataclass
class BlobState:
    offset: int
    length: int | None
    complete: bool


def check_sha(sha: str) -> str:
    if not isinstance(sha, str) or not SHA256_RE.match(sha):
        raise SyncError("invalid_request", "The blob name must be a SHA-256: 64 lowercase hex characters.",
                        {"parameter": "sha256"})
    return sha


class BlobStore:
    def __init__(self, root: str, max_blob: int = MAX_BLOB, max_chunk: int = MAX_CHUNK) -> None:
        self.root = root
        self.max_blob = max_blob
        self.max_chunk = max_chunk
        os.makedirs(os.path.join(root, "partial"), exist_ok=True)

    def final_path(self, sha: str) -> str:
        return os.path.join(self.root, check_sha(sha)[:2], sha)

    def partial_path(self, sha: str) -> str:
        return os.path.join(self.root, "partial", check_sha(sha))

    def state(self, store: SQLiteStore, sha: str) -> BlobState | None:
        check_sha(sha)
        row = store.blob(sha)
        if os.path.exists(self.final_path(sha)):
            length = os.path.getsize(self.final_path(sha))
            return BlobState(length, length, True)
        if row is None:
            return None
        p = self.partial_path(sha)
        return BlobState(os.path.getsize(p) if os.path.exists(p) else 0, row["length"], False)

    def patch(self, store: SQLiteStore, actor: Actor, sha: str, offset: int, length: int, chunk: bytes) -> BlobState:
        """Append one chunk at ``offset``; on the last byte, check the hash and keep or discard."""
        check_sha(sha)
        if length > self.max_blob:
            raise SyncError("too_large", f"A blob may be at most {self.max_blob} bytes.", {"max_bytes": self.max_blob})
        if len(chunk) > self.max_chunk:
            raise SyncError("too_large", f"A chunk may be at most {self.max_chunk} bytes.", {"max_chunk": self.max_chunk})
        if length < 0 or offset < 0:
            raise SyncError("invalid_request", "Upload-Offset and Upload-Length must be non-negative integers.")
        with store.write_lock:  # one writer for the partial file and its row
            st = self.state(store, sha)
            if st and st.complete:
                return st  # already here: a cheap no-op
            if st and st.length is not None and st.length != length:
                raise SyncError("invalid_request", f"Upload-Length {length} differs from the {st.length} bytes "
                                "this upload started with.", {"upload_length": st.length})
            have = st.offset if st else 0
            if st and have == length:
                return self._finish(store, sha, length)   # every byte here, never checked (see recover)
            if offset != have:
                raise SyncError("offset_mismatch", f"The server holds {have} bytes of this blob; "
                                f"resume from there.", {"upload_offset": have}, headers={"Upload-Offset": str(have)})
            if offset + len(chunk) > length:
                raise SyncError("invalid_request", "The chunk runs past Upload-Length.")
            if st is None:
                with store.transaction():
                    store.blob_start(sha, length, actor.user_id, iso(utcnow()))
            p = self.partial_path(sha)
            with open(p, "ab") as fh:
                fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
            new_offset = offset + len(chunk)
            if new_offset < length:
                return BlobState(new_offset, length, False)
            return self._finish(store, sha, length)

    def _finish(self, store: SQLiteStore, sha: str, length: int) -> BlobState:
        """Check the hash of a partial upload that holds all its bytes; keep it, or discard it."""
        p = self.partial_path(sha)
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 16), b""):
                h.update(block)
        if h.hexdigest() != sha:
            os.remove(p)
            with store.transaction():
                store.blob_forget(sha)
            raise SyncError("hash_mismatch", "The uploaded bytes do not hash to the blob's name; "
                            "the partial upload was discarded. Upload it again from the start.")
        final = self.final_path(sha)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.replace(p, final)
        _fsync_dir(os.path.dirname(final))
        with store.transaction():
            store.blob_complete(sha, iso(utcnow()))
        return BlobState(length, length, True)

    def recover(self, store: SQLiteStore) -> int:
        """At start-up, finish the uploads whose last chunk was written but not yet checked when
        the server stopped (killed between the two). Without this HEAD would report every byte
        held, the phone would count the photo as uploaded, and it would never become readable.
        Returns how many were finished (a hash mismatch is discarded: the phone starts again)."""
        finished = 0
        with store.write_lock:
            for name in sorted(os.listdir(os.path.join(self.root, "partial"))):
                row = store.blob(name) if SHA256_RE.match(name) else None
                if row is None or row["complete"] or os.path.getsize(self.partial_path(name)) < row["length"]:
                    continue
                try:
                    self._finish(store, name, int(row["length"]))
                    finished += 1
                except SyncError:
                    pass
        return finished

    def state_for(self, store: SQLiteStore, actor: Actor, sha: str) -> BlobState | None:
        """The upload state, told only to its uploader and to users who may read the blob."""
        st = self.state(store, sha)
        if st is None or not self.may_read(store, actor, sha):
            return None
        return st

    def may_read(self, store: SQLiteStore, actor: Actor, sha: str) -> bool:
        """Only users in whose scope a record refers to the blob, or who uploaded it."""
        row = store.blob(sha)
        if row and row["uploaded_by"] == actor.user_id:
            return True
        keys = user_keys(actor, area_tree(store))
        for coll, rid in store.blob_referrers(sha):
            rec = store.get(coll, rid)
            if rec and not rec.deleted and visible(keys, rec.keys):
                return True
        return False

    def open_for(self, store: SQLiteStore, actor: Actor, sha: str) -> str:
        """The path of a complete blob the actor may read, else ``not_found`` (never a hint it exists)."""
        check_sha(sha)
        path = self.final_path(sha)
        if not os.path.exists(path) or not self.may_read(store, actor, sha):
            raise SyncError("not_found", "No such blob, or not one you may see.")
        return path


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
