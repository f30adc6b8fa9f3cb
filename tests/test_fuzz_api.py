"""Fuzzing every endpoint of ``/schema/openapi.json`` with schemathesis (issue 7).

For every operation of the published schema, schemathesis generates requests that fit the schema
(positive) and requests that do not (negative), sends them to the app in-process (ASGI, signed in
as a grid worker), and checks every answer: no 5xx, a documented status, the documented content
type, headers and body schema, authentication not ignored, invalid data refused, valid data
accepted; and, on top, every error in the protocol's one shape with no internals.

Bounded in ``make test`` (``GRIDBOOK_FUZZ_EXAMPLES``, default 25 per operation and mode, well
under a minute). The long run and its figures are in docs/reliability-security.md:

    GRIDBOOK_FUZZ_EXAMPLES=1000 GRIDBOOK_FUZZ_REPORT=fuzz.json \\
        .venv/bin/python -m pytest tests/test_fuzz_api.py -q
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any, Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from litestar import Litestar
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from server.app import create_app

from . import backend
from .test_api import LEAKS, Template, settings_for, town_template  # noqa: F401

EXAMPLES = int(os.environ.get("GRIDBOOK_FUZZ_EXAMPLES", "25"))
REPORT = os.environ.get("GRIDBOOK_FUZZ_REPORT")

# A blob chunk is raw bytes, whatever schemathesis makes of "binary".
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")

OPERATIONS = ["GET /api/v1/health", "POST /api/v1/auth/login", "POST /api/v1/sync/push", "GET /api/v1/sync/pull",
              "HEAD /api/v1/blobs/{sha256}", "PATCH /api/v1/blobs/{sha256}", "GET /api/v1/blobs/{sha256}",
              "GET /api/v1/matters/{matter_id}/proxy", "GET /api/v1/audit/sensitive-reads"]

# Validity the schema cannot say, so "a schema-valid request must be accepted" does not apply:
# a cursor is signed by the server; a chunk must continue at the offset the server holds, fit
# inside Upload-Length and, when last, hash to the blob's name.
# A proxy summary needs a matter the caller may see; the audit of sensitive reads is for staff only
# (the fuzzing device is a grid worker's).
NO_POSITIVE_ACCEPTANCE = {"GET /api/v1/sync/pull", "PATCH /api/v1/blobs/{sha256}",
                          "GET /api/v1/matters/{matter_id}/proxy", "GET /api/v1/audit/sensitive-reads"}

STATS: Counter[str] = Counter()
ISSUED: set[str] = set()  # cursors the server gave out (stateful runs send them back)

# A schema-violating request must be refused with a 4xx; schemathesis's default list lacks 413,
# which is how too many mutations (over maxItems 500) are refused, as documented.
CONFIG = SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {
    "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]}}})


def pull_refuses_bad_parameters(ctx: Any, response: Any, case: Any) -> bool | None:
    """Stands in for negative_data_rejection on pull, which also counts an unknown query parameter
    as invalid; the server ignores those, as HTTP servers do (a cache-busting ``?_=1`` must work).
    A ``limit`` that is not 1..1000 in ASCII digits, or any cursor this server did not issue, is 400;
    a cursor it issued (followed along the NextPage link) is served."""
    query = case.query or {}
    limit, cursor = query.get("limit"), query.get("cursor")
    limit_ok = limit is None or (isinstance(limit, (int, str)) and str(limit).isascii() and str(limit).isdigit()
                                 and 1 <= int(limit) <= 1000)
    if response.status_code == 200:
        ISSUED.add(response.json()["cursor"])
    if not limit_ok or (cursor not in (None, "") and cursor not in ISSUED):
        # 401 when the request is one of schemathesis's probes without the token.
        assert response.status_code in (400, 401), (query, response.status_code, response.text[:300])
    return True


def canonical_error_shape(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx/5xx with a body is ``{"error": {"code", "message", "details"?}}``, no internals."""
    if response.status_code < 400 or case.method.upper() == "HEAD":
        return None
    assert response.headers.get("content-type", [""])[0].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    err = body["error"]
    assert {"code", "message"} <= set(err) <= {"code", "message", "details"}, err
    assert isinstance(err["code"], str) and isinstance(err["message"], str) and err["message"], err
    assert "details" not in err or isinstance(err["details"], dict), err
    for leak in LEAKS:
        assert leak not in response.text, response.text[:500]
    return True


def no_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    assert response.status_code < 500, (response.status_code, response.text[:500])
    return True


class WithoutLifespan:
    """The app, with lifespan events acknowledged but not passed on: schemathesis's ASGI client
    runs startup and shutdown around every request, and shutdown closes the database."""

    def __init__(self, app: Litestar) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


@pytest.fixture(scope="module")
def fuzz_target(town_template: Template, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    db = backend.copy_db(town_template.db, tmp, keep=True)
    app = create_app(settings_for(tmp, db))
    yield WithoutLifespan(app), town_template.town
    app.state["stores"].close()
    if REPORT:
        with open(REPORT, "w") as fh:
            json.dump({"examples_per_operation_and_mode": EXAMPLES, **dict(sorted(STATS.items()))}, fh, indent=1)


# Health takes no input at all: there is nothing to make invalid.
CASES = [(label, mode) for label in OPERATIONS for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
         if not (label == "GET /api/v1/health" and mode == GenerationMode.NEGATIVE)]


@pytest.mark.parametrize("label,mode", CASES, ids=[f"{label}-{mode.value}" for label, mode in CASES])
def test_fuzz_operation(fuzz_target: tuple[Any, Any], label: str, mode: GenerationMode) -> None:
    app, town = fuzz_target
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app, config=CONFIG)
    ops = {op.label: op for op in (r.ok() for r in schema.get_all_operations())}
    assert sorted(ops) == sorted(OPERATIONS), "the schema and this test disagree on the operations"
    op = ops[label]
    excluded = [positive_data_acceptance] if label in NO_POSITIVE_ACCEPTANCE else []
    extra = [canonical_error_shape, no_server_error]
    if label == "GET /api/v1/sync/pull":
        excluded.append(negative_data_rejection)
        extra.append(pull_refuses_bad_parameters)
    auth = {"Authorization": f"Bearer {town.tokens['w1']}"}
    failures: list[str] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not REPORT,
              suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        STATS["cases"] += 1
        STATS[f"cases {label}"] += 1
        try:
            response = case.call_and_validate(headers=auth, excluded_checks=excluded, additional_checks=extra)
        except FailureGroup as e:
            failures.append(str(e)[:2000])
            return
        STATS[f"status {response.status_code}"] += 1
        if response.status_code >= 500:
            STATS["5xx"] += 1

    run()
    STATS.setdefault("5xx", 0)
    STATS["failures"] += len(failures)
    assert not failures, "\n\n".join(failures[:3])


def test_fuzz_stateful_links(fuzz_target: tuple[Any, Any]) -> None:
    """Sequences along the schema's links: pull → next page with the cursor it returned; a chunk
    upload → the upload's state → the download. Same checks as above, on every step."""
    app, town = fuzz_target
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app, config=CONFIG)
    auth = {"Authorization": f"Bearer {town.tokens['w1']}"}
    base = schema.as_state_machine()

    class Machine(base):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": auth}

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
            STATS["stateful steps"] += 1
            STATS[f"status {response.status_code}"] += 1
            label = case.operation.label
            excluded = [positive_data_acceptance] if label in NO_POSITIVE_ACCEPTANCE else []
            extra = [canonical_error_shape, no_server_error]
            if label == "GET /api/v1/sync/pull":
                excluded.append(negative_data_rejection)
                extra.append(pull_refuses_bad_parameters)
            case.validate_response(response, additional_checks=extra, excluded_checks=excluded, headers=auth,
                                   transport_kwargs=kwargs or None, recorder=self.recorder)

    Machine.run(settings=settings(max_examples=max(5, EXAMPLES // 5), deadline=None, database=None,
                                  derandomize=not REPORT, suppress_health_check=list(HealthCheck),
                                  stateful_step_count=6))
