"""Blobs (protocol §7, docs/protocol.md §10): resumable, hash-checked uploads in chunks, stored by
SHA-256, and who may read, cite and resume them.

Bytes live in a byte storage (``BlobBytes``): the blob directory on the server's disk
(``LocalBytes``, the default) or an S3-compatible bucket (``sync.blobs_s3.S3Bytes``) that several
servers share. Complete blobs are stored under their hash. An upload's state is in the database:
its offset (``blob_uploads.received``) and its chunks (``blob_chunks``), each counted only once
stored durably. So a crash between storing a chunk and answering loses nothing (the phone asks,
HEAD, and resumes from there), and the next chunk may reach any server sharing the database.

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

import contextlib
import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Protocol, Sequence

from . import engine
from .errors import SyncError
from .schema import SHA256_RE
from .scope import Actor, user_keys, visible
from .storage import Store
from .store import iso, utcnow

MAX_BLOB = 10 * 1024 * 1024
MAX_CHUNK = 1024 * 1024
MAX_PENDING = 64 * 1024 * 1024
# Partial files are named by the server: the blob's hash (uploads begun before migration 0002),
# or the hash and a random suffix.
_PARTIAL_RE = re.compile(r"^[0-9a-f]{64}(\.[0-9a-f]{16})?$")
_EMPTY = hashlib.sha256(b"").hexdigest()


@dataclass
class BlobState:
    offset: int
    length: int | None
    complete: bool


def is_upload_name(name: str) -> bool:
    """Whether ``name`` is one the server gives an upload's bytes (``blob_uploads.partial``)."""
    return bool(_PARTIAL_RE.match(name))


def check_sha(sha: str) -> str:
    if not isinstance(sha, str) or not SHA256_RE.match(sha):
        raise SyncError("invalid_request", "The blob name must be a SHA-256: 64 lowercase hex characters.",
                        {"parameter": "sha256"})
    return sha


# -- citations ------------------------------------------------------------------------------------

def record_citations(store: Store, user_id: str, keys: Iterable[str], coll: str, rid: str,
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


def holds_or_reads(store: Store, user_id: str, keys: frozenset[str], sha: str) -> bool:
    """Whether the user uploaded every byte of the blob, or may read it through a record in ``keys``."""
    return store.blob_holds(sha, user_id) or cited_for(store, keys, sha)


def cited_for(store: Store, keys: frozenset[str], sha: str) -> bool:
    """Whether a live record visible under ``keys`` cites the blob with a proven citation."""
    by_coll: dict[str, list[str]] = {}
    for coll, rid in store.blob_proven_referrers(sha):
        by_coll.setdefault(coll, []).append(rid)
    for coll, ids in by_coll.items():
        for rec in store.get_many(coll, ids).values():
            if not rec.deleted and visible(keys, rec.keys):
                return True
    return False


# -- where the bytes live -------------------------------------------------------------------------

class StorageError(Exception):
    """The byte storage could not do what was asked (an S3 service unreachable, refusing, …).
    Nothing the database says has changed: the phone's next request tries again."""


@dataclass
class Chunk:
    """One chunk of an upload, as the database keeps it: where it starts, its length, and the name
    the byte storage gave it (``BlobBytes.put_chunk``)."""

    start: int
    length: int
    name: str


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...
    def close(self) -> None: ...


@dataclass
class StoredBlob:
    """A complete blob opened for reading: its length, when it was stored, and its bytes as a stream."""

    length: int
    modified: float   # a POSIX timestamp
    body: Readable

    def blocks(self, size: int = 1 << 16) -> Iterator[bytes]:
        """The (rest of the) bytes in blocks of at most ``size``; the stream is closed at the end."""
        try:
            while block := self.body.read(size):
                yield block
        finally:
            self.body.close()


class BlobBytes(Protocol):
    """Where the bytes of blobs live: complete blobs under their hash, and the chunks of unfinished
    uploads under the upload's name (``blob_uploads.partial``).

    It keeps bytes only. Who uploads what, and how many bytes each upload holds, is the database's
    (``blob_uploads.received``, ``blob_chunks``): a chunk counts once the database says so, never
    because the storage holds it, so that any server sharing the database and the storage can take
    an upload's next chunk. Names reaching it are the server's own (a hash checked by ``check_sha``,
    an upload name made by ``BlobStore``), never a client's string.
    """

    def put_chunk(self, upload: str, start: int, data: bytes) -> str:
        """Store ``data`` durably as the bytes of ``upload`` from ``start`` on (whatever an interrupted
        earlier write left from there is superseded) and return the chunk's name."""
        ...

    def finish(self, upload: str, chunks: Sequence[Chunk], sha: str, length: int) -> bool:
        """Stream the upload's ``length`` bytes (its ``chunks`` in order), hashing them. When they hash
        to ``sha``, make sure the complete blob ``sha`` exists and return True; otherwise make
        nothing and return False. The upload's bytes stay until ``drop_upload``, so that a finish
        cut short can be done again, by any server."""
        ...

    def drop_upload(self, upload: str) -> None:
        """Delete whatever is stored for the upload (nothing there is no error)."""
        ...

    def length(self, sha: str) -> int | None:
        """The length of the complete blob, or None when there is none."""
        ...

    def open(self, sha: str) -> StoredBlob | None:
        """The complete blob for reading, as a stream, or None when there is none."""
        ...

    def put(self, sha: str, data: bytes) -> None:
        """Store a complete blob whole: bytes that did not come through uploads (the demo's signatures)."""
        ...

    def stale_uploads(self, before: datetime) -> list[str]:
        """The names of uploads with bytes stored, none written since ``before`` (for the sweep of
        stray uploads no database row names)."""
        ...

    def legacy_partial(self, upload: str) -> tuple[int, float] | None:
        """For an upload begun before migration 0003 (when the local directory held them all and the
        partial file's size was the offset): the bytes its partial holds and when it was last
        written, or None."""
        ...


class LocalBytes:
    """The blob directory on this server's disk (the default)::

        <root>/ab/abcdef…            complete blobs, under the first two hex characters of their hash
        <root>/partial/abcdef….0f1e…  one file per unfinished upload, each chunk written where it starts

    Every chunk is flushed to disk (fsync) before the database counts it; a complete blob is
    written from the bytes hashed into a file of its own under ``partial/``, fsynced and renamed
    into place, its directory fsynced. Only servers that share this directory (one server,
    usually) can take each other's chunks; several servers share an S3 bucket instead
    (``sync.blobs_s3``).
    """

    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(os.path.join(root, "partial"), exist_ok=True)

    def final_path(self, sha: str) -> str:
        return os.path.join(self.root, check_sha(sha)[:2], sha)

    def partial_path(self, name: str) -> str:
        if not is_upload_name(name):
            raise ValueError(f"not a partial upload's file name: {name!r}")
        return os.path.join(self.root, "partial", name)

    def put_chunk(self, upload: str, start: int, data: bytes) -> str:
        p = self.partial_path(upload)
        created = not os.path.exists(p)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            at = start
            while view:
                n = os.pwrite(fd, view, at)
                view, at = view[n:], at + n
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_dir(os.path.dirname(p))
        return upload

    def finish(self, upload: str, chunks: Sequence[Chunk], sha: str, length: int) -> bool:
        if length == 0:   # an empty blob: no chunk was ever written, so there is no partial file
            if sha != _EMPTY:
                return False
            if self.length(sha) is None:
                self.put(sha, b"")
            return True
        # The complete blob is a new file written from the very bytes that were hashed, never the
        # partial file itself (renamed or linked): a request that lost a race for a chunk may still
        # write into the partial, and the blob under a hash must stay the bytes of that hash.
        # Chunks are written where they start and never cut anything off: bytes a crash left past
        # the counted offset are overwritten by the chunks that follow (every chunk ends within
        # Upload-Length). The partial stays until the database says the upload is finished.
        final = self.final_path(sha)
        copy = None if os.path.exists(final) else self.partial_path(f"{sha}.{secrets.token_hex(8)}")
        h = hashlib.sha256()
        size = 0
        try:
            with open(self.partial_path(upload), "rb") as src, \
                    (open(copy, "wb") if copy else contextlib.nullcontext()) as out:
                for block in iter(lambda: src.read(1 << 16), b""):
                    h.update(block)
                    size += len(block)
                    if out is not None:
                        out.write(block)
                if out is not None:
                    out.flush()
                    os.fsync(out.fileno())
            if size != length or h.hexdigest() != sha:
                return False
            if copy is not None:
                os.makedirs(os.path.dirname(final), exist_ok=True)
                os.replace(copy, final)
                copy = None
                _fsync_dir(os.path.dirname(final))
            return True
        except FileNotFoundError:
            return False
        finally:
            if copy is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(copy)

    def drop_upload(self, upload: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.partial_path(upload))

    def length(self, sha: str) -> int | None:
        try:
            return os.path.getsize(self.final_path(sha))
        except FileNotFoundError:
            return None

    def open(self, sha: str) -> StoredBlob | None:
        try:
            fh = open(self.final_path(sha), "rb")
        except FileNotFoundError:
            return None
        st = os.fstat(fh.fileno())
        return StoredBlob(st.st_size, st.st_mtime, fh)

    def put(self, sha: str, data: bytes) -> None:
        final = self.final_path(sha)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        tmp = self.partial_path(f"{sha}.{secrets.token_hex(8)}")   # a crash leaves a stray that gc sweeps
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        _fsync_dir(os.path.dirname(final))

    def stale_uploads(self, before: datetime) -> list[str]:
        folder = os.path.join(self.root, "partial")
        cutoff = before.timestamp()
        out = []
        for name in sorted(os.listdir(folder)):
            p = os.path.join(folder, name)
            if is_upload_name(name) and os.path.isfile(p) and os.path.getmtime(p) < cutoff:
                out.append(name)
        return out

    def legacy_partial(self, upload: str) -> tuple[int, float] | None:
        try:
            st = os.stat(self.partial_path(upload))
        except FileNotFoundError:
            return None
        return st.st_size, st.st_mtime


# -- uploads, downloads and the rules ---------------------------------------------------------------

class BlobStore:
    """The blob rules (uploads bound to their uploader, the quota, expiry, who may read) over a byte
    storage (``BlobBytes``: the local directory, or an S3-compatible bucket). Every upload's state
    is in the database, so the rules are the same whichever storage holds the bytes."""

    def __init__(self, storage: BlobBytes | str, max_blob: int = MAX_BLOB, max_chunk: int = MAX_CHUNK,
                 max_pending: int = MAX_PENDING) -> None:
        self.bytes: BlobBytes = LocalBytes(storage) if isinstance(storage, str) else storage
        self.max_blob = max_blob
        self.max_chunk = max_chunk
        self.max_pending = max_pending

    def _complete(self, sha: str) -> BlobState | None:
        length = self.bytes.length(sha)
        if length is None:
            return None
        return BlobState(length, length, True)

    def state_for(self, store: Store, actor: Actor, sha: str) -> BlobState | None:
        """What HEAD tells this user: a complete blob they may read, else their own upload, else
        nothing (as for a blob the server has never seen)."""
        check_sha(sha)
        # Whether the blob exists is asked only of those who may read it: for everyone else the
        # work, like the answer, is the same whatever the server holds.
        done = self._complete(sha) if self.may_read(store, actor, sha) else None
        if done is not None:
            return done
        mine = store.blob_upload(sha, actor.user_id)
        if mine is None:
            return None
        return BlobState(_received(mine), int(mine["length"]), False)

    def patch(self, store: Store, actor: Actor, sha: str, offset: int, length: int, chunk: bytes) -> BlobState:
        """Store one chunk at ``offset`` of the user's own upload; on the last byte, check the hash
        and keep or discard. A complete blob the user may read is a cheap no-op."""
        check_sha(sha)
        if length > self.max_blob:
            raise SyncError("too_large", f"A blob may be at most {self.max_blob} bytes.", {"max_bytes": self.max_blob})
        if len(chunk) > self.max_chunk:
            raise SyncError("too_large", f"A chunk may be at most {self.max_chunk} bytes.", {"max_chunk": self.max_chunk})
        if length < 0 or offset < 0:
            raise SyncError("invalid_request", "Upload-Offset and Upload-Length must be non-negative integers.")
        uid = actor.user_id
        # The database decides, not a lock of this server's: a chunk counts only if the upload (the
        # same one) still holds exactly ``offset`` bytes when it is recorded, whichever server
        # stored it. The writer's lock guards only its connection; bytes move outside it, so that
        # a slow storage never holds up pushes.
        with store.write_lock:
            mine = store.blob_upload(sha, uid)
            readable = self.may_read(store, actor, sha)
        done = self._complete(sha) if readable else None
        if done is not None:
            if mine is not None:   # someone finished first: this upload is no longer needed
                self._discard(store, mine)
            return done
        if mine is not None and int(mine["length"]) != length:
            raise SyncError("invalid_request", f"Upload-Length {length} differs from the {mine['length']} bytes "
                            "this upload started with.", {"upload_length": int(mine["length"])})
        have = _received(mine) if mine is not None else 0
        if mine is not None and have == length:
            return self._finish(store, mine)   # every byte here, never checked (see recover)
        if offset != have:
            raise _offset_mismatch(have)
        if offset + len(chunk) > length:
            raise SyncError("invalid_request", "The chunk runs past Upload-Length.")
        if mine is None:
            mine = self._start(store, sha, uid, length)
            if _received(mine) != offset:   # the same user's other request started it and went on
                raise _offset_mismatch(_received(mine))
        if chunk:
            name = self.bytes.put_chunk(mine["partial"], offset, chunk)
            with store.transaction():
                counted = store.blob_chunk_received(sha, uid, mine["partial"], offset, len(chunk), name,
                                                    iso(utcnow()))
                now = None if counted else store.blob_upload(sha, uid)
            if not counted:   # another server took this offset first, or the upload ended meanwhile
                raise _offset_mismatch(_received(now) if now is not None else 0)
        new_offset = offset + len(chunk)
        if new_offset < length:
            return BlobState(new_offset, length, False)
        return self._finish(store, {**mine, "received": new_offset})

    def _start(self, store: Store, sha: str, uid: str, length: int) -> dict[str, Any]:
        """The user's new upload of ``sha``, within their quota of unfinished bytes (or the one a
        request of theirs started meanwhile)."""
        with store.transaction():
            pending = store.blob_pending_bytes(uid)
            if pending + length > self.max_pending:
                raise SyncError("too_large", f"You already have {pending} bytes in unfinished uploads, and at most "
                                f"{self.max_pending} may be waiting at once: finish those uploads before "
                                f"starting another (unfinished ones are deleted after a few days).",
                                {"max_pending_bytes": self.max_pending, "pending_bytes": pending})
            store.blob_upload_start(sha, uid, length, f"{sha}.{secrets.token_hex(8)}", iso(utcnow()))
            mine = store.blob_upload(sha, uid)
        assert mine is not None
        return mine

    def _discard(self, store: Store, upload: dict[str, Any]) -> None:
        with store.transaction():
            store.blob_upload_forget(upload["sha256"], upload["user_id"], upload["partial"])
        self._drop(upload["partial"])

    def _drop(self, upload: str) -> None:
        """Delete an upload's bytes once the database no longer names it. Should that fail, they are
        strays that ``expire_uploads`` sweeps later: the answer already given stands."""
        try:
            self.bytes.drop_upload(upload)
        except (OSError, StorageError):
            pass

    def _finish(self, store: Store, upload: dict[str, Any]) -> BlobState:
        """Check the hash of an upload that holds all its bytes: keep the bytes and make its
        uploader a holder (their citations proven), or discard the upload.

        The complete blob is made first, the database says so next, the upload's bytes go last: a
        finish cut short anywhere is done again by the next PATCH or start-up (``recover``), on
        whichever server."""
        sha, uid, length = upload["sha256"], upload["user_id"], int(upload["length"])
        with store.write_lock:
            chunks = [Chunk(*c) for c in store.blob_chunks(sha, uid)]
        if not self.bytes.finish(upload["partial"], chunks, sha, length):
            with store.write_lock:   # a request of theirs (a retry) finished it meanwhile: not a mismatch
                done = store.blob_upload(sha, uid) is None and store.blob_holds(sha, uid)
            if done:
                return BlobState(length, length, True)
            self._discard(store, upload)
            raise SyncError("hash_mismatch", "The uploaded bytes do not hash to the blob's name; "
                            "the partial upload was discarded. Upload it again from the start.")
        with store.transaction():
            store.blob_uploaded(sha, uid, length, iso(utcnow()))
        self._drop(upload["partial"])
        return BlobState(length, length, True)

    def adopt(self, store: Store, data: bytes, user_ids: Iterable[str], at: str | None = None) -> str:
        """Keep bytes that did not come through PATCH (the demo town's signatures) as if each of
        ``user_ids`` had uploaded them: complete, held by them, their citations proven."""
        sha = hashlib.sha256(data).hexdigest()
        if self.bytes.length(sha) is None:
            self.bytes.put(sha, data)
        with store.transaction():
            for uid in user_ids:
                store.blob_uploaded(sha, uid, len(data), at or iso(utcnow()))
        return sha

    def recover(self, store: Store) -> int:
        """At start-up, finish the uploads that hold every byte but were not yet checked when a
        server stopped (killed between the two, on this server or another). Without this HEAD would
        report every byte held, the phone would count the photo as uploaded, and it would never
        become readable. Uploads begun before migration 0003 get their offset from their partial
        file first. Returns how many were finished (a hash mismatch is discarded: the phone starts
        again)."""
        finished = 0
        with store.write_lock:
            uploads = store.blob_uploads_unfinished()
        for upload in uploads:
            if upload["received"] is None:
                held, touched = self.bytes.legacy_partial(upload["partial"]) or (0, 0.0)
                upload["received"] = held
                upload["touched_at"] = max(upload["started_at"], iso(datetime.fromtimestamp(touched, timezone.utc)))
                with store.transaction():
                    store.blob_upload_received(upload["sha256"], upload["user_id"], held, upload["touched_at"])
            if _received(upload) < int(upload["length"]):
                continue
            try:
                self._finish(store, upload)
                finished += 1
            except SyncError:
                pass   # a hash mismatch: discarded, the phone starts again
            except StorageError:
                pass   # the storage not answering now: the upload's next PATCH finishes it
        return finished

    def expire_uploads(self, store: Store, before: datetime) -> tuple[int, int, int]:
        """Delete the unfinished uploads that got no chunk since ``before``, and stray uploads (bytes
        stored that no upload names, as old: a server stopped between storing and recording).
        Returns (uploads, bytes freed, strays). A phone that comes back for one starts it again
        from offset 0."""
        uploads = freed = strays = 0
        cutoff = iso(before)
        expired: set[str] = set()
        stale = self.bytes.stale_uploads(before)   # listed first: an upload named later is newer
        with store.write_lock:
            unfinished = store.blob_uploads_unfinished()
        for upload in unfinished:
            if (upload["touched_at"] or upload["started_at"]) >= cutoff:
                continue
            with store.transaction():   # only if no chunk came meanwhile, through any server
                gone = store.blob_upload_forget(upload["sha256"], upload["user_id"], upload["partial"],
                                                untouched_before=cutoff)
            if gone:
                self._drop(upload["partial"])
                freed += _received(upload)
                uploads += 1
                expired.add(upload["partial"])
        with store.write_lock:
            named = expired | {u["partial"] for u in store.blob_uploads_unfinished()}
        for name in stale:
            if name not in named:
                self.bytes.drop_upload(name)
                strays += 1
        return uploads, freed, strays

    def may_read(self, store: Store, actor: Actor, sha: str) -> bool:
        """Its holders (who uploaded every byte), and users in whose scope a live record cites it
        with a proven citation."""
        if store.blob_holds(sha, actor.user_id):
            return True
        return cited_for(store, user_keys(actor, engine.area_tree(store)), sha)

    def open_for(self, store: Store, actor: Actor, sha: str) -> StoredBlob:
        """A complete blob the actor may read, open for streaming; else ``not_found`` (never a hint
        that it exists). The caller reads it to the end or closes it."""
        check_sha(sha)
        blob = self.bytes.open(sha) if self.may_read(store, actor, sha) else None
        if blob is None:
            raise SyncError("not_found", "No such blob, or not one you may see.")
        return blob


def _received(upload: dict[str, Any]) -> int:
    return int(upload["received"] or 0)


def _offset_mismatch(have: int) -> SyncError:
    return SyncError("offset_mismatch", f"The server holds {have} bytes of this blob; resume from there.",
                     {"upload_offset": have}, headers={"Upload-Offset": str(have)})


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
