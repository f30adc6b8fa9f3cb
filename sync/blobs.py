"""Blobs (protocol §7, docs/protocol.md §10): resumable, hash-checked uploads in chunks, stored by
SHA-256, and who may read, cite and resume them.

Bytes live in files under the blob directory (``ab/abcdef…``); unfinished uploads under
``partial/``, one file per upload. The size of the partial file is the upload offset, so a crash
between writing a chunk and answering loses nothing: the phone asks (HEAD) and resumes from there.

A hash is a name, not a key: anyone may learn one (from a record they once saw, a log, a photo
sent around). So the bytes are the proof, never the name (issue 12, finding 5):

- **Uploads belong to their uploader.** Each user has their own partial upload of a blob; nobody
  else sees its offset or adds to it. A user who may not read a blob gets, from HEAD and PATCH,
  exactly the answers they would get for a blob the server has never seen, also when it is
  complete: a PATCH starts an upload of their own, which finishes only with every byte.
- **Whoever uploads every byte holds the blob** (``blob_holders``) and may read it.
- **A citation counts only once its author has shown they hold the bytes.** A record may cite any
  hash, and the push answers the same whatever the server holds (a rejection would tell an
  attacker that the blob exists). A citation grants readers of the record access to the bytes only
  when it is *proven*: its author held the blob (uploaded it) or could read it when citing, or
  uploads every byte later (phones push the record before the photo). A hash cited before the blob
  exists is thereby bound to the citing user: bytes someone else uploads do not become readable
  through it.
- **Unfinished uploads are bounded**: at most ``max_pending`` announced bytes per user, and
  ``expire_uploads`` (``gridbook gc``) deletes those untouched for days.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from . import engine
from .errors import SyncError
from .schema import SHA256_RE
from .scope import Actor, user_keys, visible
from .store import SQLiteStore, iso, utcnow

MAX_BLOB = 10 * 1024 * 1024
MAX_CHUNK = 1024 * 1024
MAX_PENDING = 64 * 1024 * 1024
# Partial files are named by the server: the blob's hash (uploads begun before migration 0002),
# or the hash and a random suffix.
_PARTIAL_RE = re.compile(r"^[0-9a-f]{64}(\.[0-9a-f]{16})?$")


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


# -- citations ------------------------------------------------------------------------------------

def record_citations(store: SQLiteStore, user_id: str, keys: Iterable[str], coll: str, rid: str,
                     shas: Iterable[str], new_record: bool = False) -> None:
    """Write which blobs record ``coll``/``rid`` cites now, after ``user_id`` wrote it.

    Call it on every write of a record with blob reference fields, in the write's transaction,
    with the writing user and their scope keys (``scope.user_keys``). Citations the record already
    had keep their author; a new one is the writing user's, and is *proven* (grants readers of the
    record access to the bytes) when that user holds the blob or may read it now through another
    record. An unproven citation becomes proven when its author uploads every byte
    (``BlobStore.patch``). It never refuses anything, so that the answer of a push never depends on
    which blobs the server holds. ``new_record``: the record was created by this write.
    """
    new = set(shas)
    if new_record and not new:
        return     # a record created without blobs cites nothing, and had nothing to uncite
    current = set() if new_record else set(store.blob_refs_of(coll, rid))
    if current - new:
        store.uncite_blobs(coll, rid, current - new)
    added = sorted(new - current)
    if added:
        key_set = frozenset(keys)
        store.cite_blobs(coll, rid, [(sha, user_id, holds_or_reads(store, user_id, key_set, sha)) for sha in added])


def holds_or_reads(store: SQLiteStore, user_id: str, keys: frozenset[str], sha: str) -> bool:
    """Whether the user uploaded every byte of the blob, or may read it through a record in ``keys``."""
    return store.blob_holds(sha, user_id) or cited_for(store, keys, sha)


def cited_for(store: SQLiteStore, keys: frozenset[str], sha: str) -> bool:
    """Whether a live record visible under ``keys`` cites the blob with a proven citation."""
    by_coll: dict[str, list[str]] = {}
    for coll, rid in store.blob_proven_referrers(sha):
        by_coll.setdefault(coll, []).append(rid)
    for coll, ids in by_coll.items():
        for rec in store.get_many(coll, ids).values():
            if not rec.deleted and visible(keys, rec.keys):
                return True
    return False


# -- the bytes ------------------------------------------------------------------------------------

class BlobStore:
    def __init__(self, root: str, max_blob: int = MAX_BLOB, max_chunk: int = MAX_CHUNK,
                 max_pending: int = MAX_PENDING) -> None:
        self.root = root
        self.max_blob = max_blob
        self.max_chunk = max_chunk
        self.max_pending = max_pending
        os.makedirs(os.path.join(root, "partial"), exist_ok=True)

    def final_path(self, sha: str) -> str:
        return os.path.join(self.root, check_sha(sha)[:2], sha)

    def partial_path(self, name: str) -> str:
        if not _PARTIAL_RE.match(name):
            raise ValueError(f"not a partial upload's file name: {name!r}")
        return os.path.join(self.root, "partial", name)

    def _complete(self, sha: str) -> BlobState | None:
        path = self.final_path(sha)
        if not os.path.exists(path):
            return None
        length = os.path.getsize(path)
        return BlobState(length, length, True)

    def _held(self, upload: dict[str, Any]) -> int:
        p = self.partial_path(upload["partial"])
        return os.path.getsize(p) if os.path.exists(p) else 0

    def state_for(self, store: SQLiteStore, actor: Actor, sha: str) -> BlobState | None:
        """What HEAD tells this user: a complete blob they may read, else their own upload, else
        nothing (as for a blob the server has never seen)."""
        check_sha(sha)
        readable = self.may_read(store, actor, sha)   # asked whether or not the blob exists: same work
        done = self._complete(sha)
        if done is not None and readable:
            return done
        mine = store.blob_upload(sha, actor.user_id)
        if mine is None:
            return None
        return BlobState(self._held(mine), int(mine["length"]), False)

    def patch(self, store: SQLiteStore, actor: Actor, sha: str, offset: int, length: int, chunk: bytes) -> BlobState:
        """Append one chunk at ``offset`` to the user's own upload; on the last byte, check the hash
        and keep or discard. A complete blob the user may read is a cheap no-op."""
        check_sha(sha)
        if length > self.max_blob:
            raise SyncError("too_large", f"A blob may be at most {self.max_blob} bytes.", {"max_bytes": self.max_blob})
        if len(chunk) > self.max_chunk:
            raise SyncError("too_large", f"A chunk may be at most {self.max_chunk} bytes.", {"max_chunk": self.max_chunk})
        if length < 0 or offset < 0:
            raise SyncError("invalid_request", "Upload-Offset and Upload-Length must be non-negative integers.")
        uid = actor.user_id
        with store.write_lock:  # one writer for the partial files and their rows
            mine = store.blob_upload(sha, uid)
            readable = self.may_read(store, actor, sha)
            done = self._complete(sha)
            if done is not None and readable:
                if mine is not None:   # someone finished first: this upload is no longer needed
                    self._discard(store, mine)
                return done
            if mine is not None and int(mine["length"]) != length:
                raise SyncError("invalid_request", f"Upload-Length {length} differs from the {mine['length']} bytes "
                                "this upload started with.", {"upload_length": int(mine["length"])})
            have = self._held(mine) if mine is not None else 0
            if mine is not None and have == length:
                return self._finish(store, mine)   # every byte here, never checked (see recover)
            if offset != have:
                raise SyncError("offset_mismatch", f"The server holds {have} bytes of this blob; "
                                f"resume from there.", {"upload_offset": have}, headers={"Upload-Offset": str(have)})
            if offset + len(chunk) > length:
                raise SyncError("invalid_request", "The chunk runs past Upload-Length.")
            if mine is None:
                pending = store.blob_pending_bytes(uid)
                if pending + length > self.max_pending:
                    raise SyncError("too_large", f"You already have {pending} bytes in unfinished uploads, and at most "
                                    f"{self.max_pending} may be waiting at once: finish those uploads before "
                                    f"starting another (unfinished ones are deleted after a few days).",
                                    {"max_pending_bytes": self.max_pending, "pending_bytes": pending})
                with store.transaction():
                    store.blob_upload_start(sha, uid, length, f"{sha}.{secrets.token_hex(8)}", iso(utcnow()))
                mine = store.blob_upload(sha, uid)
                assert mine is not None
            with open(self.partial_path(mine["partial"]), "ab") as fh:
                fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
            new_offset = offset + len(chunk)
            if new_offset < length:
                return BlobState(new_offset, length, False)
            return self._finish(store, mine)

    def _discard(self, store: SQLiteStore, upload: dict[str, Any]) -> None:
        p = self.partial_path(upload["partial"])
        if os.path.exists(p):
            os.remove(p)
        with store.transaction():
            store.blob_upload_forget(upload["sha256"], upload["user_id"])

    def _finish(self, store: SQLiteStore, upload: dict[str, Any]) -> BlobState:
        """Check the hash of an upload that holds all its bytes: keep the bytes and make its
        uploader a holder (their citations proven), or discard the upload."""
        sha, length = upload["sha256"], int(upload["length"])
        p = self.partial_path(upload["partial"])
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 16), b""):
                h.update(block)
        if h.hexdigest() != sha:
            self._discard(store, upload)
            raise SyncError("hash_mismatch", "The uploaded bytes do not hash to the blob's name; "
                            "the partial upload was discarded. Upload it again from the start.")
        final = self.final_path(sha)
        if os.path.exists(final):   # the same bytes, uploaded by someone else first
            os.remove(p)
        else:
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.replace(p, final)
            _fsync_dir(os.path.dirname(final))
        with store.transaction():
            store.blob_uploaded(sha, upload["user_id"], length, iso(utcnow()))
        return BlobState(length, length, True)

    def adopt(self, store: SQLiteStore, data: bytes, user_ids: Iterable[str], at: str | None = None) -> str:
        """Keep bytes that did not come through PATCH (the demo town's signatures) as if each of
        ``user_ids`` had uploaded them: complete, held by them, their citations proven."""
        sha = hashlib.sha256(data).hexdigest()
        final = self.final_path(sha)
        if not os.path.exists(final):
            os.makedirs(os.path.dirname(final), exist_ok=True)
            with open(final, "wb") as fh:
                fh.write(data)
        with store.transaction():
            for uid in user_ids:
                store.blob_uploaded(sha, uid, len(data), at or iso(utcnow()))
        return sha

    def recover(self, store: SQLiteStore) -> int:
        """At start-up, finish the uploads whose last chunk was written but not yet checked when
        the server stopped (killed between the two). Without this HEAD would report every byte
        held, the phone would count the photo as uploaded, and it would never become readable.
        Returns how many were finished (a hash mismatch is discarded: the phone starts again)."""
        finished = 0
        with store.write_lock:
            for upload in store.blob_uploads_unfinished():
                p = self.partial_path(upload["partial"])
                if not os.path.exists(p) or os.path.getsize(p) < int(upload["length"]):
                    continue
                try:
                    self._finish(store, upload)
                    finished += 1
                except SyncError:
                    pass
        return finished

    def expire_uploads(self, store: SQLiteStore, before: datetime) -> tuple[int, int, int]:
        """Delete the unfinished uploads untouched since ``before`` (no chunk since, by the partial
        file's time), and stray partial files no upload names. Returns (uploads, bytes freed,
        stray files). A phone that comes back for one starts it again from offset 0."""
        uploads = freed = strays = 0
        cutoff = before.timestamp()
        with store.write_lock:
            for upload in store.blob_uploads_unfinished():
                p = self.partial_path(upload["partial"])
                touched = datetime.fromisoformat(upload["started_at"]).timestamp()
                if os.path.exists(p):
                    touched = max(touched, os.path.getmtime(p))
                if touched >= cutoff:
                    continue
                freed += self._held(upload)
                self._discard(store, upload)
                uploads += 1
            named = {u["partial"] for u in store.blob_uploads_unfinished()}
            folder = os.path.join(self.root, "partial")
            for name in sorted(os.listdir(folder)):
                p = os.path.join(folder, name)
                if _PARTIAL_RE.match(name) and name not in named and os.path.isfile(p) and os.path.getmtime(p) < cutoff:
                    os.remove(p)
                    strays += 1
        return uploads, freed, strays

    def may_read(self, store: SQLiteStore, actor: Actor, sha: str) -> bool:
        """Its holders (who uploaded every byte), and users in whose scope a live record cites it
        with a proven citation."""
        if store.blob_holds(sha, actor.user_id):
            return True
        return cited_for(store, user_keys(actor, engine.area_tree(store)), sha)

    def open_for(self, store: SQLiteStore, actor: Actor, sha: str) -> str:
        """The path of a complete blob the actor may read, else ``not_found`` (never a hint it exists)."""
        check_sha(sha)
        path = self.final_path(sha)
        readable = self.may_read(store, actor, sha)
        if not os.path.exists(path) or not readable:
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
