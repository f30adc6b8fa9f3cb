"""Blobs over HTTP (protocol §7): resumable, hash-checked, chunked uploads and scoped downloads,
with the bytes in the local blob directory and in an S3 bucket (tests/blobstores.py)."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import httpx
import pytest

from .blobstores import BlobApi as Api, api, blob_backend, moto_s3  # noqa: F401
from .conftest import new_id
from .test_api import API, assert_error, assert_security_headers, town_template  # noqa: F401

OCTETS = "application/offset+octet-stream"
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 1200  # ~300 KB that sniff as a JPEG


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def url(digest: str) -> str:
    return f"{API}/blobs/{digest}"


def patch(api: Api, who: str, digest: str, chunk: bytes, offset: int, length: int,
          content_type: str = OCTETS, **headers: str) -> httpx.Response:
    h = {**api.auth(who), "Content-Type": content_type, "Upload-Offset": str(offset), "Upload-Length": str(length),
         **headers}
    return api.client.patch(url(digest), content=chunk, headers=h)


def upload(api: Api, who: str, data: bytes, chunk: int = 100 * 1024) -> str:
    digest = sha(data)
    for start in range(0, len(data), chunk):
        r = patch(api, who, digest, data[start:start + chunk], start, len(data))
        assert r.status_code == 204, r.text
        assert int(r.headers["upload-offset"]) == min(start + chunk, len(data))
    return digest


def head(api: Api, who: str, digest: str) -> httpx.Response:
    return api.client.head(url(digest), headers=api.auth(who))


def files_under(root: Any) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def test_head_of_an_unknown_blob_is_not_found(api: Api) -> None:
    r = head(api, "w1", sha(b"never uploaded"))
    assert r.status_code == 404 and r.content == b""
    assert r.headers["content-type"].startswith("application/json")
    assert_error(api.client.get(url(sha(b"never uploaded")), headers=api.auth("w1")), 404, "not_found")


def test_chunked_upload_resumes_from_the_offset_the_server_holds(api: Api) -> None:
    data = JPEG
    digest = sha(data)
    third = len(data) // 3
    r = patch(api, "w1", digest, data[:third], 0, len(data))
    assert r.status_code == 204 and r.content == b""
    assert r.headers["upload-offset"] == str(third)
    # The connection dropped; the phone asks where to resume.
    h = head(api, "w1", digest)
    assert h.status_code == 200
    assert h.headers["upload-offset"] == str(third) and h.headers["upload-length"] == str(len(data))
    assert h.headers.get("cache-control") == "no-store"
    r = patch(api, "w1", digest, data[third:2 * third], third, len(data))
    assert r.status_code == 204 and r.headers["upload-offset"] == str(2 * third)
    r = patch(api, "w1", digest, data[2 * third:], 2 * third, len(data))
    assert r.status_code == 204 and r.headers["upload-offset"] == str(len(data))
    assert r.headers["upload-length"] == str(len(data))
    h = head(api, "w1", digest)
    assert h.status_code == 200 and h.headers["upload-offset"] == h.headers["upload-length"] == str(len(data))
    assert api.counts()["blobs"] == 1


def test_wrong_offset_is_offset_mismatch_with_the_right_offset(api: Api) -> None:
    data = JPEG
    digest = sha(data)
    assert patch(api, "w1", digest, data[:1000], 0, len(data)).status_code == 204
    for wrong in (0, 500, 2000, len(data)):
        r = patch(api, "w1", digest, data[wrong:wrong + 1000], wrong, len(data))
        err = assert_error(r, 409, "offset_mismatch")
        assert r.headers["upload-offset"] == "1000"
        assert "1000" in err["message"]
    assert head(api, "w1", digest).headers["upload-offset"] == "1000"
    # A first chunk that does not start at 0 is refused the same way.
    other = sha(b"other")
    r = patch(api, "w1", other, b"her", 2, 5)
    assert_error(r, 409, "offset_mismatch")
    assert r.headers["upload-offset"] == "0"
    assert head(api, "w1", other).status_code == 404


def test_wrong_bytes_are_hash_mismatch_and_the_partial_upload_is_discarded(api: Api) -> None:
    data = JPEG
    digest = sha(data)
    half = len(data) // 2
    assert patch(api, "w1", digest, data[:half], 0, len(data)).status_code == 204
    tampered = bytearray(data[half:])
    tampered[-1] ^= 0xFF
    before = api.counts()
    assert_error(patch(api, "w1", digest, bytes(tampered), half, len(data)), 422, "hash_mismatch")
    assert head(api, "w1", digest).status_code == 404
    assert api.counts()["blobs"] == before["blobs"] - 1
    assert api.stored() == []
    assert_error(api.client.get(url(digest), headers=api.auth("w1")), 404, "not_found")
    # Starting again from zero with the right bytes works.
    assert upload(api, "w1", data) == digest
    assert api.client.get(url(digest), headers=api.auth("w1")).content == data


def test_single_chunk_with_wrong_bytes_is_hash_mismatch(api: Api) -> None:
    digest = sha(b"what the phone meant to send")
    assert_error(patch(api, "w1", digest, b"something else entirely", 0, 23), 422, "hash_mismatch")
    assert head(api, "w1", digest).status_code == 404


def test_blob_over_10_mib_is_too_large(api: Api) -> None:
    digest = sha(b"big")
    before = api.counts()
    err = assert_error(patch(api, "w1", digest, b"x" * 1024, 0, 10 * 1024 * 1024 + 1), 413, "too_large")
    assert err["details"]["max_bytes"] == 10 * 1024 * 1024
    assert head(api, "w1", digest).status_code == 404
    assert api.counts() == before
    # Exactly 10 MiB is allowed to start.
    assert patch(api, "w1", digest, b"x" * 1024, 0, 10 * 1024 * 1024).status_code == 204


def test_chunk_over_1_mib_is_too_large(api: Api) -> None:
    data = os.urandom(1024 * 1024 + 1)
    digest = sha(data)
    before = api.counts()
    err = assert_error(patch(api, "w1", digest, data, 0, len(data)), 413, "too_large")
    assert "1048576" in err["message"]
    assert head(api, "w1", digest).status_code == 404
    assert api.counts() == before
    # 1 MiB chunks are fine.
    assert upload(api, "w1", data, chunk=1024 * 1024) == digest
    assert head(api, "w1", digest).headers["upload-offset"] == str(len(data))


def test_uploading_a_complete_blob_again_is_a_cheap_no_op(api: Api) -> None:
    """For its uploader and for users who may read it; anyone else is answered as for an unknown
    blob (tests/test_blob_trust.py)."""
    data = JPEG
    digest = upload(api, "w1", data)
    hid, _ = api.household("w1")
    [res] = api.push_ok("w1", api.town.mut("visits", new_id(), {"household_id": hid, "visited_at": api.town.at(),
                                                                "photos": [digest]}))
    assert res["status"] == "applied", res
    before = api.counts()
    for who, offset in (("w1", 0), ("w2", 0), ("staff", 100 * 1024)):
        r = patch(api, who, digest, data[offset:offset + 1000], offset, len(data))
        assert r.status_code == 204, r.text
        assert r.headers["upload-offset"] == r.headers["upload-length"] == str(len(data))
    assert api.counts() == before
    assert api.partials() == []
    assert api.client.get(url(digest), headers=api.auth("w1")).content == data


def test_inconsistent_patch_headers_are_invalid_request(api: Api) -> None:
    data = JPEG
    digest = sha(data)
    assert patch(api, "w1", digest, data[:1000], 0, len(data)).status_code == 204
    cases = [
        patch(api, "w1", digest, data[1000:2000], 1000, len(data) + 1),   # Upload-Length changed
        patch(api, "w1", digest, data[1000:], 1000, 1500),                 # runs past Upload-Length
        patch(api, "w1", digest, data[1000:2000], 1000, len(data), content_type="application/octet-stream"),
        api.client.patch(url(digest), content=data[1000:2000], headers={**api.auth("w1"), "Content-Type": OCTETS,
                                                                           "Upload-Offset": "1000"}),
        api.client.patch(url(digest), content=data[1000:2000], headers={**api.auth("w1"), "Content-Type": OCTETS,
                                                                           "Upload-Length": str(len(data))}),
        patch(api, "w1", digest, data[1000:2000], "-5", len(data)),  # type: ignore[arg-type]
        patch(api, "w1", digest, data[1000:2000], "1e3", len(data)),  # type: ignore[arg-type]
        patch(api, "w1", digest, data[1000:2000], 1000, "many"),  # type: ignore[arg-type]
    ]
    for r in cases:
        assert_error(r, 400, "invalid_request")
    assert head(api, "w1", digest).headers["upload-offset"] == "1000"


BAD_NAMES = ["A" * 64, "AB" * 32, "ab" * 31, "ab" * 33, "g" * 64, "ab" * 31 + "a ", "..", "%2E%2E",
             "..%2F..%2Fetc%2Fpasswd", "..%2F..%2Fsecret.txt", "%2Fetc%2Fpasswd", "..%5C..%5Csecret.txt",
             ("ab" * 32)[:63] + "%00", "ab" * 32 + ".json"]


@pytest.mark.parametrize("method", ["HEAD", "PATCH", "GET"])
def test_a_blob_name_that_is_not_a_sha256_never_reaches_the_disk(api: Api, method: str) -> None:
    # Every name in one test (one app per method and storage, not per name: the S3 runs would
    # spend most of their time starting apps).
    (api.tmp / "secret.txt").write_text("TOP SECRET")
    headers = {**api.auth("w1"), "Content-Type": OCTETS, "Upload-Offset": "0", "Upload-Length": "3"}
    before, stored = files_under(api.tmp), api.stored()
    for name in BAD_NAMES:
        r = api.client.request(method, f"{API}/blobs/{name}", headers=headers,
                               content=b"abc" if method == "PATCH" else None)
        assert r.status_code in (400, 404), (name, r.status_code, r.text)
        if method != "HEAD":
            code = "invalid_request" if r.status_code == 400 else "not_found"
            assert_error(r, r.status_code, code)
        assert b"SECRET" not in r.content and b"root:" not in r.content, name
        assert files_under(api.tmp) == before and api.stored() == stored, name
        # A name without a slash is refused by the handler itself, before any path is made from it
        # (a bare ".." is resolved away by the client's URL handling, so routing answers 404 there).
        if "%2F" not in name and "%5C" not in name and name != ".." and method != "HEAD":
            assert r.status_code == 400, name


def test_get_by_the_uploader_and_by_users_in_whose_scope_a_record_refers_to_it(api: Api) -> None:
    data = JPEG
    digest = upload(api, "w1", data)
    r = api.client.get(url(digest), headers=api.auth("w1"))
    assert r.status_code == 200 and r.content == data  # the uploader
    assert r.headers["content-type"].startswith("image/jpeg")
    assert_security_headers(r)
    for who in ("w2", "w3", "staff", "agent"):  # nobody refers to it yet
        assert_error(api.client.get(url(digest), headers=api.auth(who)), 404, "not_found")

    hid, _ = api.household("w1")
    visit = new_id()
    [res] = api.push_ok("w1", api.town.mut("visits", visit, {"household_id": hid, "visited_at": api.town.at(),
                                                             "narrative": "屋顶漏雨", "photos": [digest]}))
    assert res["status"] == "applied", res
    for who in ("w1", "w2", "staff", "admin"):
        r = api.client.get(url(digest), headers=api.auth(who))
        assert r.status_code == 200 and r.content == data, who
    for who in ("w3", "agent"):  # another village; an agent with no matter of this household delegated
        err = assert_error(api.client.get(url(digest), headers=api.auth(who)), 404, "not_found")
        assert digest not in err["message"]
    # HEAD tells upload progress to the uploader and to readers only: no way around GET's scope check.
    assert head(api, "w3", digest).status_code == 404
    assert_error(api.client.get(url(digest)), 401, "unauthorized")


def test_a_blob_referred_to_by_a_record_before_it_arrives(api: Api) -> None:
    """A record may sync before its blobs: the reference is kept and the bytes are readable once complete."""
    data = b"%PDF-1.4 scanned form " + os.urandom(5000)
    digest = sha(data)
    hid, _ = api.household("w1")
    matter = new_id()
    [res] = api.push_ok("w1", api.town.mut("matters", matter, {"household_id": hid, "title": "低保申请",
                                                               "photos": [digest]}))
    assert res["status"] == "applied"
    assert_error(api.client.get(url(digest), headers=api.auth("w2")), 404, "not_found")
    upload(api, "w1", data, chunk=2000)
    r = api.client.get(url(digest), headers=api.auth("w2"))
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-type"].startswith("application/pdf")


def test_an_incomplete_blob_is_not_served_even_to_its_uploader(api: Api) -> None:
    data = JPEG
    digest = sha(data)
    assert patch(api, "w1", digest, data[:1000], 0, len(data)).status_code == 204
    assert_error(api.client.get(url(digest), headers=api.auth("w1")), 404, "not_found")


@pytest.mark.parametrize("value", ["²", "¹²", "1_0", "+1", "0x10", "1.0", "9" * 16, " ", ""])
def test_upload_headers_must_be_plain_decimal(api: Api, value: str) -> None:
    digest = sha(b"abc")
    for offset, length in ((value, "3"), ("0", value)):
        r = api.client.patch(url(digest), content=b"abc", headers={
            **api.auth("w1"), "Content-Type": OCTETS, "Upload-Offset": offset.encode("latin-1"),
            "Upload-Length": length.encode("latin-1")})
        err = assert_error(r, 400, "invalid_request")
        assert "Upload-" in err["message"]
    assert head(api, "w1", digest).status_code == 404
