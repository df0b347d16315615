"""schemathesis against the workspace's JSON API (``/api/openapi.json``), through the ASGI app.

The schema is read from the app itself by a signed-in session (it answers 401 without one). Every operation
is then called with generated requests, signed in as a prosecutor (a role that writes) with the session's CSRF
token in ``X-CSRF-Token``, and as an auditor (who reads the audit trail); each answer must not be a 5xx, must
use a status code the schema documents, the documented content type, and a body that validates against the
documented response schema. A few hand-made requests that must succeed (a review of a listed candidate, an
outreach outcome) are checked the same way, since random IDs rarely name a listed person. Bounded by
``MAX_EXAMPLES`` per operation (the whole module runs in well under a minute).
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from wshelpers import sign_in
from fdnet.workspace.app import COOKIE

MAX_EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _signed_in(app, user: str) -> dict[str, str]:
    c, token = sign_in(app, user)
    return {"Cookie": f"{COOKIE}={c.cookies.get(COOKIE)}", "X-CSRF-Token": token}


@pytest.fixture()
def api(ws):
    """The schema as a signed-in user reads it, bound to the app, and the headers of two sessions."""
    c, _ = sign_in(ws, "analyst1")
    spec = c.get("/api/openapi.json")
    assert spec.status_code == 200
    schema = schemathesis.openapi.from_dict(spec.json())
    schema.app = ws
    return schema, {"prosecutor": _signed_in(ws, "prosecutor1"), "auditor": _signed_in(ws, "auditor1")}


def test_the_schema_needs_a_session(ws):
    from fastapi.testclient import TestClient
    assert TestClient(ws).get("/api/openapi.json").status_code == 401


def _fuzz(schema, headers: dict[str, str], mode: str = "positive") -> list[str]:
    """Run every operation of ``schema`` on generated requests with ``headers``; the operations run.

    ``mode``: ``positive`` (requests the schema allows) or ``negative`` (requests it does not).
    """
    from hypothesis import given
    from hypothesis.errors import Unsatisfiable
    from schemathesis.generation.modes import GenerationMode
    ran = []
    for result in schema.get_all_operations():
        op = result.ok()

        @given(case=op.as_strategy(GenerationMode(mode)))
        @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            case.call_and_validate(headers=headers, checks=CHECKS)
        try:
            check()
        except Unsatisfiable:
            # an operation whose every input is a free string (or that has none) has no invalid request
            if mode != "negative":
                raise
            continue
        ran.append(op.label)
    return ran


@pytest.mark.parametrize("role", ["prosecutor", "auditor"])
def test_generated_requests_get_documented_answers(api, role):
    """No 5xx; a documented status, content type and body for whatever schemathesis sends, as a prosecutor
    (who writes reviews) and as an auditor (who reads the trail and may write nothing)."""
    schema, sessions = api
    ran = _fuzz(schema, sessions[role])
    assert {"GET /api/session", "GET /api/runs", "GET /api/runs/{run_id}/lists/{list_name}",
            "POST /api/runs/{run_id}/reviews"} <= set(ran)


def test_invalid_requests_get_documented_errors(api):
    """Requests the schema does not allow (wrong types, missing fields, bad enums) are answered with a
    documented 4xx whose body is the documented error shape, never a 5xx."""
    schema, sessions = api
    ran = _fuzz(schema, sessions["prosecutor"], mode="negative")
    assert {"POST /api/runs/{run_id}/reviews", "POST /api/runs/{run_id}/outreach", "GET /api/audit/entries"} <= set(ran)


def test_valid_writes_conform_to_the_schema(ws, api):
    schema, sessions = api
    run = ws.state.ws.catalog.get("r2")
    cn = run.list_table("custom_notifications")["person_id"].iloc[0]
    sr = run.list_table("service_referrals")["person_id"].iloc[0]
    review = schema["/api/runs/{run_id}/reviews"]["POST"].Case(
        path_parameters={"run_id": "r2"},
        body={"list": "custom_notifications", "person_id": cn, "decision": "defer", "reason": "file requested",
              "reason_code": "need_more_information"})
    r = review.call_and_validate(headers=sessions["prosecutor"], checks=CHECKS)
    assert r.status_code == 201 and r.json()["payload"]["person_id"] == cn
    outreach_headers = _signed_in(ws, "outreach1")
    outcome = schema["/api/runs/{run_id}/outreach"]["POST"].Case(
        path_parameters={"run_id": "r2"},
        body={"person_id": sr, "kind": "outreach_contacted", "date": "2026-01-10"})
    assert outcome.call_and_validate(headers=outreach_headers, checks=CHECKS).status_code == 201
    listing = schema["/api/runs/{run_id}/lists/{list_name}"]["GET"].Case(
        path_parameters={"run_id": "r2", "list_name": "custom_notifications"})
    rows = listing.call_and_validate(headers=sessions["prosecutor"], checks=CHECKS).json()["rows"]
    assert next(x for x in rows if x["person_id"] == cn)["review"]["state"] == "deferred"
    trail = schema["/api/audit/entries"]["GET"].Case(query={"kind": "review"})
    entries = trail.call_and_validate(headers=sessions["auditor"], checks=CHECKS).json()
    assert [e["kind"] for e in entries] == ["review"]
    assert ws.state.ws.log.verify().ok
