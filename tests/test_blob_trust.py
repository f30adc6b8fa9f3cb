"""Who may read, cite, resume and park blobs (issue 12, finding 5 of the December 2026 review).

The attacker knows a SHA-256 (of a signature, of an ID-card photo of another village) but not the
bytes. A hash is a name, not a key: citing it in a record of one's own, asking for it (HEAD) or
"uploading" it (PATCH) must give that attacker neither the bytes nor the fact that the server holds
them. Bytes are the proof: whoever uploads every byte of a blob may read it, and their citations
count. Unfinished uploads belong to their uploader, count against a per-user quota and are deleted
by ``gridbook gc`` when abandoned.
"""

from __future__ import annotations

import contextlib
import os
from datetime import timedelta
from typing import Any, Callable

import httpx
import pytest

from . import backend
from .blobstores import Backend, BlobApi as Api, api, blob_backend, moto_s3, serve  # noqa: F401
from .conftest import new_id
from .test_api import API, assert_error, town_template  # noqa: F401
from .test_blobs_api import JPEG, head, patch, sha, upload, url

MiB = 1024 * 1024
ID_CARD = b"\xff\xd8\xff\xe0 id card of a resident of another village " + os.urandom(20000)


def get(api: Api, who: str, digest: str) -> httpx.Response:
    return api.client.get(url(digest), headers=api.auth(who))


def readable(api: Api, who: str, digest: str, data: bytes) -> bool:
    r = get(api, who, digest)
    if r.status_code == 200:
        assert r.content == data
        return True
    assert_error(r, 404, "not_found")
    return False


def victim_blob(api: Api, data: bytes = ID_CARD) -> str:
    """worker3 (李家坑村) photographs a resident's ID card on a visit: uploaded, cited, complete."""
    digest = upload(api, "w3", data)
    hid, _ = api.household("w3", grid="g3")
    [r] = api.push_ok("w3", api.town.mut("visits", new_id(), {"household_id": hid, "visited_at": api.town.at(),
                                                              "narrative": "核对身份证", "photos": [digest]}))
    assert r["status"] == "applied", r
    return digest


# Every way a mutation can cite a hash: each blob_ref field of each collection, on create and update.
def _attachment(api: Api, who: str, digest: str) -> list[dict[str, Any]]:
    hid, _ = api.household(who)
    return [api.town.mut("attachments", new_id(), {"record_collection": "households", "record_id": hid,
                                                    "sha256": digest, "kind": "photo", "mime": "image/jpeg"})]


def _visit(api: Api, who: str, digest: str) -> list[dict[str, Any]]:
    hid, _ = api.household(who)
    return [api.town.mut("visits", new_id(), {"household_id": hid, "visited_at": api.town.at(), "photos": [digest]})]


def _matter_create(api: Api, who: str, digest: str) -> list[dict[str, Any]]:
    hid, _ = api.household(who)
    return [api.town.mut("matters", new_id(), {"household_id": hid, "title": "屋顶漏雨", "photos": [digest]})]


def _matter_update(api: Api, who: str, digest: str) -> list[dict[str, Any]]:
    hid, _ = api.household(who)
    mid = new_id()
    [r] = api.push_ok(who, api.town.mut("matters", mid, {"household_id": hid, "title": "屋顶漏雨"}))
    return [api.town.mut("matters", mid, {"photos": [digest]}, base=r["version"])]


def _event(api: Api, who: str, digest: str) -> list[dict[str, Any]]:
    hid, _ = api.household(who)
    mid = new_id()
    [r] = api.push_ok(who, api.town.mut("matters", mid, {"household_id": hid, "title": "屋顶漏雨"}))
    return [api.town.mut("matter_events", new_id(), {"matter_id": mid, "kind": "note", "note": "补充材料",
                                                     "attachments": [digest]})]


CITATIONS: dict[str, Callable[[Api, str, str], list[dict[str, Any]]]] = {
    "attachments.sha256": _attachment, "visits.photos": _visit, "matters.photos (create)": _matter_create,
    "matters.photos (update)": _matter_update, "matter_events.attachments": _event}


def _shape(result: dict[str, Any]) -> dict[str, Any]:
    """A push result without what differs between any two mutations (mid, id, version)."""
    return {k: v for k, v in result.items() if k not in ("mid", "id", "version")}


@pytest.mark.parametrize("cite", CITATIONS.values(), ids=list(CITATIONS))
def test_citing_someone_elses_hash_gives_no_read_access(api: Api, cite: Callable[..., Any]) -> None:
    digest = victim_blob(api)
    assert not readable(api, "w1", digest, ID_CARD)
    # worker1 (杖锡村) knows the hash and cites it in a record of their own grid.
    [known] = api.push_ok("w1", *cite(api, "w1", digest))
    # The push answers exactly as for a hash the server has never seen: no hint that it exists.
    [unknown] = api.push_ok("w1", *cite(api, "w1", sha(os.urandom(32))))
    assert _shape(known) == _shape(unknown), (known, unknown)
    # Neither the attacker nor their colleagues (who see the record) may read the bytes.
    for who in ("w1", "w2"):
        assert not readable(api, who, digest, ID_CARD), who
        assert head(api, who, digest).status_code == 404
    # The victim's own scope still reads them.
    for who in ("w3", "staff", "admin"):
        assert readable(api, who, digest, ID_CARD), who


def test_a_citation_made_before_the_upload_counts_only_if_its_author_uploads_the_bytes(api: Api) -> None:
    """A record may precede its blob; a hash cited before anyone uploaded it is bound to the citing
    user: the bytes someone else uploads later do not become readable through it."""
    digest = sha(ID_CARD)
    [r] = api.push_ok("w1", *_matter_create(api, "w1", digest))   # the attacker lies in wait
    assert r["status"] == "applied"
    victim_blob(api)                                                # the victim uploads and cites
    for who in ("w1", "w2"):
        assert not readable(api, who, digest, ID_CARD), who
    assert readable(api, "w3", digest, ID_CARD)


def test_an_outsider_holding_the_same_bytes_proves_it_by_uploading_them(api: Api) -> None:
    """Two users may really hold the same bytes (the same scanned form): the second one cites the
    hash, uploads every byte as if the blob were new, and from then on their citation counts."""
    digest = victim_blob(api)
    [r] = api.push_ok("w1", *_matter_create(api, "w1", digest))    # the record first, as phones do
    assert r["status"] == "applied"
    assert not readable(api, "w2", digest, ID_CARD)
    chunk = 5000
    first = patch(api, "w1", digest, ID_CARD[:chunk], 0, len(ID_CARD))
    assert first.status_code == 204 and first.headers["upload-offset"] == str(chunk)  # not "already complete"
    assert head(api, "w1", digest).headers["upload-offset"] == str(chunk)
    assert not readable(api, "w2", digest, ID_CARD)                 # a partial upload proves nothing
    for start in range(chunk, len(ID_CARD), chunk):
        r2 = patch(api, "w1", digest, ID_CARD[start:start + chunk], start, len(ID_CARD))
        assert r2.status_code == 204, r2.text
    assert r2.headers["upload-offset"] == r2.headers["upload-length"] == str(len(ID_CARD))
    for who in ("w1", "w2", "w3"):
        assert readable(api, who, digest, ID_CARD), who
    assert api.stored() == [f"{digest[:2]}/{digest}"]   # one copy, no partial left


def test_citing_a_blob_one_may_read_keeps_counting_when_the_first_record_goes(api: Api) -> None:
    """Rule (b): a user who may read a blob may cite it; the citation then stands on its own."""
    data = JPEG
    digest = upload(api, "w1", data)
    hid, _ = api.household("w1")
    matter = new_id()
    [m] = api.push_ok("w1", api.town.mut("matters", matter, {"household_id": hid, "title": "危房", "photos": [digest]}))
    assert readable(api, "w2", digest, data)
    [v] = api.push_ok("w2", api.town.mut("visits", new_id(), {"household_id": hid, "visited_at": api.town.at(),
                                                              "photos": [digest]}))
    assert v["status"] == "applied"
    [d] = api.push_ok("admin", api.town.mut("matters", matter, op="delete", base=m["version"]))
    assert d["status"] == "applied"
    for who in ("w2", "staff"):
        assert readable(api, who, digest, data), who


def test_a_colleague_editing_the_photos_leaves_each_photo_to_whoever_cited_it(api: Api) -> None:
    """A citation keeps its author when someone else edits the record: worker1's photo, not yet
    uploaded when worker2 adds one of their own, counts as soon as worker1 uploads it."""
    mine, theirs = JPEG, b"\xff\xd8\xff\xe0 worker2's photo " + os.urandom(3000)
    hid, _ = api.household("w1")
    matter = new_id()
    [m] = api.push_ok("w1", api.town.mut("matters", matter, {"household_id": hid, "title": "危房",
                                                             "photos": [sha(mine)]}))
    [u] = api.push_ok("w2", api.town.mut("matters", matter, {"photos": [sha(mine), sha(theirs)]}, base=m["version"]))
    assert u["status"] == "applied", u
    for data, uploader, other in ((mine, "w1", "w2"), (theirs, "w2", "w1")):
        assert not readable(api, other, sha(data), data)
        upload(api, uploader, data, chunk=1000)
        for who in (other, "staff"):
            assert readable(api, who, sha(data), data), (who, uploader)


def _compare(a: httpx.Response, b: httpx.Response) -> None:
    assert (a.status_code, a.content) == (b.status_code, b.content), (a.status_code, a.text, b.status_code, b.text)
    assert dict(a.headers) == dict(b.headers)


def test_head_and_patch_answer_an_outsider_exactly_as_for_an_unknown_blob(api: Api) -> None:
    finished = victim_blob(api)
    partial_data = os.urandom(300_000)
    partial = sha(partial_data)
    assert patch(api, "w3", partial, partial_data[:100_000], 0, len(partial_data)).status_code == 204
    unknown = sha(os.urandom(32))
    for digest in (finished, partial):
        _compare(head(api, "w1", digest), head(api, "w1", unknown))
        # a wrong offset: the offset of an upload of nothing, never the owner's
        _compare(patch(api, "w1", digest, b"x" * 10, 7, 1000), patch(api, "w1", unknown, b"x" * 10, 7, 1000))
        assert_error(patch(api, "w1", digest, b"x" * 10, 7, 1000), 409, "offset_mismatch")
    # a first chunk: the start of an upload of the caller's own, whatever else the server holds
    for digest in (finished, partial):
        fresh = sha(os.urandom(32))
        _compare(patch(api, "w1", digest, b"x" * 10, 0, 1000), patch(api, "w1", fresh, b"x" * 10, 0, 1000))
        _compare(head(api, "w1", digest), head(api, "w1", fresh))
        assert head(api, "w1", digest).headers["upload-offset"] == "10"
    # The owners' uploads are untouched.
    assert head(api, "w3", partial).headers["upload-offset"] == "100000"
    assert head(api, "w3", finished).headers["upload-offset"] == str(len(ID_CARD))
    assert readable(api, "w3", finished, ID_CARD) and not readable(api, "w1", finished, ID_CARD)


def test_a_reader_may_patch_a_complete_blob_as_a_cheap_no_op(api: Api) -> None:
    digest = victim_blob(api)
    for who in ("w3", "staff"):   # its uploader, and a user in whose scope a record cites it
        r = patch(api, who, digest, ID_CARD[:10], 0, len(ID_CARD))
        assert r.status_code == 204 and r.headers["upload-offset"] == r.headers["upload-length"] == str(len(ID_CARD))
        assert head(api, who, digest).headers["upload-offset"] == str(len(ID_CARD))


def test_two_users_uploading_the_same_bytes_each_resume_their_own_upload(api: Api) -> None:
    data = os.urandom(250_000)
    digest = sha(data)
    assert patch(api, "w1", digest, data[:100_000], 0, len(data)).status_code == 204
    r = patch(api, "w3", digest, data[:40_000], 0, len(data))     # never worker1's offset
    assert r.status_code == 204 and r.headers["upload-offset"] == "40000"
    assert head(api, "w1", digest).headers["upload-offset"] == "100000"
    assert head(api, "w3", digest).headers["upload-offset"] == "40000"
    err = assert_error(patch(api, "w3", digest, data[100_000:110_000], 100_000, len(data)), 409, "offset_mismatch")
    assert err["details"]["upload_offset"] == 40000
    assert patch(api, "w1", digest, data[100_000:], 100_000, len(data)).status_code == 204   # worker1 finishes first
    assert readable(api, "w1", digest, data) and not readable(api, "w3", digest, data)
    assert head(api, "w3", digest).headers["upload-offset"] == "40000"
    r = patch(api, "w3", digest, data[40_000:], 40_000, len(data))
    assert r.status_code == 204 and r.headers["upload-offset"] == str(len(data))
    assert readable(api, "w3", digest, data)
    assert api.stored() == [f"{digest[:2]}/{digest}"]


def test_a_partial_upload_with_wrong_bytes_is_discarded_for_its_uploader_only(api: Api) -> None:
    data = os.urandom(50_000)
    digest = sha(data)
    assert patch(api, "w1", digest, data[:20_000], 0, len(data)).status_code == 204
    assert patch(api, "w3", digest, data[:10_000], 0, len(data)).status_code == 204
    bad = bytes(b ^ 0xFF for b in data[10_000:])
    assert_error(patch(api, "w3", digest, bad, 10_000, len(data)), 422, "hash_mismatch")
    assert head(api, "w3", digest).status_code == 404
    assert head(api, "w1", digest).headers["upload-offset"] == "20000"
    assert patch(api, "w1", digest, data[20_000:], 20_000, len(data)).status_code == 204
    assert readable(api, "w1", digest, data)


# -- the quota on unfinished uploads -----------------------------------------------------------------

def test_unfinished_uploads_have_a_per_user_quota(api: Api) -> None:
    """The review's attack: 20 uploads announced as 10 MiB, 1 KiB sent of each. At most 64 MiB of
    announced bytes may wait per user; the rest are refused with a clear too_large."""
    big = os.urandom(10 * MiB)   # the first one is real, so that it can be finished
    announced = [sha(big)] + [sha(os.urandom(32)) for _ in range(19)]
    answers = [patch(api, "w1", d, (big if i == 0 else b"y" * 1024)[:1024], 0, 10 * MiB)
               for i, d in enumerate(announced)]
    assert [a.status_code for a in answers] == [204] * 6 + [413] * 14
    err = assert_error(answers[6], 413, "too_large")
    assert err["details"] == {"max_pending_bytes": 64 * MiB, "pending_bytes": 60 * MiB}
    assert "unfinished" in err["message"] and str(64 * MiB) in err["message"]
    assert head(api, "w1", announced[6]).status_code == 404          # nothing of a refused upload is kept
    assert len(api.partials()) == 6
    # The quota is per user: worker2 uploads as usual.
    assert upload(api, "w2", JPEG) == sha(JPEG)
    # Resuming an upload already started is never refused.
    assert patch(api, "w1", announced[1], b"y" * 1024, 1024, 10 * MiB).status_code == 204
    # A finished upload no longer counts.
    for start in range(1024, len(big), MiB):
        assert patch(api, "w1", announced[0], big[start:start + MiB], start, len(big)).status_code == 204
    assert patch(api, "w1", announced[6], b"y" * 1024, 0, 10 * MiB).status_code == 204


def test_the_quota_is_a_setting(town_template: Any, tmp_path: Any, blob_backend: Backend) -> None:
    with serve(town_template, blob_backend, tmp_path, max_pending_upload_bytes=2000) as small:
        assert patch(small, "w1", sha(b"a"), b"x" * 10, 0, 1500).status_code == 204
        err = assert_error(patch(small, "w1", sha(b"b"), b"x" * 10, 0, 501), 413, "too_large")
        assert err["details"]["max_pending_bytes"] == 2000
        assert patch(small, "w1", sha(b"c"), b"x" * 10, 0, 500).status_code == 204


# -- gc: abandoned uploads are deleted ---------------------------------------------------------------

def _age(api: Api, digest: str, who: str, days: float) -> None:
    """Make worker ``who``'s upload of ``digest`` look untouched for ``days`` days: begun, and its
    last chunk stored, that long ago (the database keeps both, whichever storage holds the bytes)."""
    from sync.store import iso, utcnow

    with contextlib.closing(backend.connect(api.db)) as c:
        when = iso(utcnow() - timedelta(days=days))
        cur = c.execute("UPDATE blob_uploads SET started_at = ?, touched_at = ? WHERE sha256 = ? AND user_id = ?",
                        (when, when, digest, api.user_id(who)))
        assert cur.rowcount == 1
        c.commit()


def _gc(api: Api, monkeypatch: pytest.MonkeyPatch) -> int:
    """``gridbook gc`` on the test's database and blob storage (S3's settings from the environment)."""
    from server import cli

    for name, value in api.backend.env.items():
        monkeypatch.setenv(name, value)
    return cli.main(["gc", "--db", api.db, "--blob-dir", str(api.tmp / "blobs")])


def test_gc_deletes_unfinished_uploads_untouched_for_longer_than_the_limit(
        api: Api, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    old, fresh = os.urandom(30_000), os.urandom(30_000)
    assert patch(api, "w1", sha(old), old[:10_000], 0, len(old)).status_code == 204
    assert patch(api, "w3", sha(old), old[:5_000], 0, len(old)).status_code == 204
    assert patch(api, "w1", sha(fresh), fresh[:10_000], 0, len(fresh)).status_code == 204
    done = upload(api, "w1", JPEG)
    _age(api, sha(old), "w1", 8)
    _age(api, sha(old), "w3", 6)
    _age(api, sha(fresh), "w1", 8)
    assert patch(api, "w1", sha(fresh), fresh[10_000:12_000], 10_000, len(fresh)).status_code == 204  # a chunk now
    assert _gc(api, monkeypatch) == 0
    out = capsys.readouterr().out
    assert "deleted 1 unfinished upload (10000 bytes) untouched for more than 7 days" in out, out
    assert head(api, "w1", sha(old)).status_code == 404
    assert head(api, "w3", sha(old)).headers["upload-offset"] == "5000"
    assert head(api, "w1", sha(fresh)).headers["upload-offset"] == "12000"
    assert readable(api, "w1", done, JPEG)
    assert len(api.partials()) == 2
    # The next upload of the expired one starts again from zero.
    assert_error(patch(api, "w1", sha(old), old[10_000:20_000], 10_000, len(old)), 409, "offset_mismatch")
    assert upload(api, "w1", old) == sha(old)


def test_gc_takes_the_limit_from_the_settings(api: Api, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(20_000)
    assert patch(api, "w1", sha(data), data[:1000], 0, len(data)).status_code == 204
    _age(api, sha(data), "w1", 2)
    assert _gc(api, monkeypatch) == 0
    assert "deleted 0 unfinished uploads" in capsys.readouterr().out
    monkeypatch.setenv("GRIDBOOK_UPLOAD_EXPIRY_DAYS", "1")
    assert _gc(api, monkeypatch) == 0
    assert "deleted 1 unfinished upload (1000 bytes) untouched for more than 1 day" in capsys.readouterr().out
    assert head(api, "w1", sha(data)).status_code == 404
    assert api.stored() == []


# -- blobs stored before this release ----------------------------------------------------------------

def test_blobs_stored_before_the_migration_keep_their_uploader_and_citations(tmp_path: Any) -> None:
    """Uploads begun before the migrations resume for their uploader only, from what their partial
    file holds (0003 moved offsets into the database); citations written before them keep granting
    what they granted. Blobs were only ever local then."""
    from litestar.testing import TestClient

    from server.app import create_app
    from sync import store as store_module
    from .conftest import build_town
    from .test_api import settings_for

    db = backend.new_db(tmp_path)
    s = backend.open_store(db)
    real = store_module.MIGRATIONS
    # as before migration 0002 for the blobs; the accounts the town is built with are today's (their
    # one-time password flag, 0005, is what creating a user writes)
    store_module.MIGRATIONS = [m for m in real if m[0][:4] in ("0001", "0005")]   # type: ignore[attr-defined]
    try:
        s.migrate()
    finally:
        store_module.MIGRATIONS = real     # type: ignore[attr-defined]
    town = build_town(s)
    done, half = os.urandom(4000), os.urandom(4000)
    w1 = town.actors["w1"].user_id
    s.conn.execute("INSERT INTO blobs VALUES (?, ?, 1, ?, '2026-11-01T00:00:00+00:00', '2026-11-01T00:00:00+00:00')",
                   (sha(done), len(done), w1))
    s.conn.execute("INSERT INTO blobs VALUES (?, ?, 0, ?, '2026-11-01T00:00:00+00:00', NULL)", (sha(half), len(half), w1))
    blobs = tmp_path / "blobs"
    (blobs / sha(done)[:2]).mkdir(parents=True)
    (blobs / sha(done)[:2] / sha(done)).write_bytes(done)
    (blobs / "partial").mkdir()
    (blobs / "partial" / sha(half)).write_bytes(half[:1000])
    # A visit of worker2's citing the complete blob, as the old server stored it.
    hid, visit = new_id(), new_id()
    r = town.push("w2", town.mut("households", hid, {"grid_id": town.ids["g1"], "address": "上岙1号",
                                                     "head_name": "王阿公"}),
                  town.mut("visits", visit, {"household_id": hid, "visited_at": town.at()}))
    assert [x.status for x in r] == ["applied", "applied"]
    if backend.POSTGRES:
        s.conn.execute("UPDATE visits SET data = jsonb_set(data::jsonb, '{photos}', jsonb_build_array(?::text))::text "
                       "WHERE id = ?", (sha(done), visit))
    else:
        s.conn.execute("UPDATE visits SET data = json_set(data, '$.photos', json_array(?)) WHERE id = ?",
                       (sha(done), visit))
    s.conn.execute("INSERT INTO blob_refs VALUES (?, 'visits', ?)", (sha(done), visit))
    s.close()
    with TestClient(create_app(settings_for(tmp_path, db))) as client:
        a = Api(client, client.app, town, db, tmp_path, Backend("local", blobs, {}))
        for who in ("w1", "w2", "staff"):     # the uploader, and through the visit
            assert readable(a, who, sha(done), done), who
        assert not readable(a, "w3", sha(done), done)
        assert head(a, "w1", sha(half)).headers["upload-offset"] == "1000"
        assert head(a, "w3", sha(half)).status_code == 404
        assert patch(a, "w3", sha(half), half[:10], 10, len(half)).headers["upload-offset"] == "0"
        assert patch(a, "w1", sha(half), half[1000:], 1000, len(half)).status_code == 204
        assert readable(a, "w1", sha(half), half)


def test_the_proxy_summary_tells_no_more_about_a_signature_than_get(api: Api) -> None:
    """The state of a delegation's signature (received / uploading) is what its citation proves,
    not whether the server holds some bytes under that hash."""
    digest = victim_blob(api)
    hid, _ = api.household("w1")
    res, matter = new_id(), new_id()
    results = api.push_ok("w1", api.town.mut("residents", res, {"household_id": hid, "name": "王阿婆"}),
                          api.town.mut("matters", matter, {"household_id": hid, "resident_id": res, "title": "代办低保",
                                                           "handling_mode": "proxy", "assignee_id": api.user_id("agent")}))
    assert [r["status"] for r in results] == ["applied", "applied"], results
    unknown = sha(os.urandom(32))
    for signature in (digest, unknown):
        [r] = api.push_ok("agent", api.town.mut("matter_events", new_id(), {
            "matter_id": matter, "kind": "delegation", "for_resident_id": res, "for_user_id": api.user_id("agent"),
            "data": {"until": "2027-12-31", "signature": signature}, "attachments": [signature]}))
        assert r["status"] == "applied", r

    def states() -> dict[str, str]:
        r = api.client.get(f"{API}/matters/{matter}/proxy", headers=api.auth("agent"))
        assert r.status_code == 200, r.text
        return {d["signature"]["sha256"]: d["signature"]["state"] for d in r.json()["delegations"]}

    assert states() == {digest: "uploading", unknown: "uploading"}
    upload(api, "agent", ID_CARD)     # the agent really has the bytes: now they count
    assert states() == {digest: "received", unknown: "uploading"}
