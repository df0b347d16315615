"""The workspace's pages and JSON API (fdnet.workspace.app) through Starlette's TestClient: every role against
every list, sign-in and sessions, CSRF, a two-person clearance, outreach outcomes, the auditor's pseudonyms and
trail, the dissemination log, hostile IDs, and altered run folders."""
from __future__ import annotations

import csv
import io
import json
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from wshelpers import HOSTILE_CN, HOSTILE_SR, PASSWORD, ROLES, sign_in
from fdnet.audit.log import AuditLog
from fdnet.runfolder import LIST_NAMES
from fdnet.workspace.access import LISTS_OF_ROLE, OUTREACH_COLUMNS

ENFORCEMENT_COLUMNS = ("score", "group", "reasons", "legal_risk", "exposure_1", "exposure_2")


def _log(app) -> AuditLog:
    return app.state.ws.log


# ---------------------------------------------------------------------------- sign-in and sessions

def test_without_a_session_pages_redirect_and_the_api_answers_401(ws):
    c = TestClient(ws, base_url="http://127.0.0.1")
    for path in ("/", "/runs/r2", "/runs/r2/lists/call_in", "/audit", "/admin/users"):
        r = c.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path
    for path in ("/api/session", "/api/runs", "/api/runs/r2/lists/call_in", "/api/openapi.json",
                 "/api/audit/entries", "/api/nonexistent"):
        assert c.get(path).status_code == 401, path
    r = c.post("/api/runs/r2/reviews", json={"list": "call_in", "person_id": "x", "decision": "approve",
                                             "reason": "r"})
    assert r.status_code == 401


def test_sign_in_sets_a_strict_http_only_cookie_and_is_logged(ws):
    c = TestClient(ws, base_url="http://127.0.0.1")
    r = c.post("/login", data={"username": "analyst1", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    s = c.get("/api/session").json()
    assert s["user"] == "analyst1" and s["role"] == "analyst" and len(s["csrf_token"]) >= 32
    kinds = [e.kind for e in _log(ws).entries()]
    assert "signin" in kinds
    c.post("/logout", follow_redirects=False)
    assert c.get("/api/session").status_code == 401


def test_a_failed_sign_in_is_refused_logged_and_never_records_the_password(ws):
    c = TestClient(ws, base_url="http://127.0.0.1")
    r = c.post("/login", data={"username": "analyst1", "password": "Tr0ub4dor&3-guess"}, follow_redirects=False)
    assert r.status_code == 401 and "not accepted" in r.text
    r = c.post("/login", data={"username": "nobody", "password": "Tr0ub4dor&3-guess"}, follow_redirects=False)
    assert r.status_code == 401
    failed = _log(ws).entries(kind="signin_failed")
    assert len(failed) == 2
    assert all("Tr0ub4dor" not in json.dumps(e.payload) for e in failed)
    assert c.get("/api/session").status_code == 401


def test_next_after_sign_in_never_leaves_the_site(ws):
    c = TestClient(ws, base_url="http://127.0.0.1")
    for bad in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        r = c.post("/login", data={"username": "analyst1", "password": PASSWORD, "next": bad},
                   follow_redirects=False)
        assert r.headers["location"] == "/", bad


def test_a_disabled_user_loses_the_session(ws):
    c, _ = sign_in(ws, "prosecutor2")
    ws.state.ws.accounts.disable("prosecutor2", by="test")
    assert c.get("/api/session").status_code == 401


# ---------------------------------------------------------------------------- every role against every list

@pytest.mark.parametrize("role", ROLES)
def test_each_role_sees_only_its_lists(ws, role):
    c, _ = sign_in(ws, role + "1")
    runs = c.get("/api/runs").json()["runs"]
    if role == "admin":
        assert runs == []
    else:
        assert {r["run_id"] for r in runs} == {"r1", "r2"}
        assert all(r["lists"] == list(LISTS_OF_ROLE[role]) for r in runs)
    for name in LIST_NAMES:
        r = c.get(f"/api/runs/r2/lists/{name}")
        page = c.get(f"/runs/r2/lists/{name}", follow_redirects=False)
        if name in LISTS_OF_ROLE[role]:
            assert r.status_code == 200, (role, name)
            assert page.status_code == 200, (role, name)
            rows = r.json()["rows"]
            assert rows, (role, name)
            if role == "outreach":
                assert set(rows[0]) <= set(OUTREACH_COLUMNS)
                assert not set(rows[0]) & set(ENFORCEMENT_COLUMNS)
                assert "score" not in page.text.lower().split("<footer>")[0].replace("no score", "")
        else:
            assert r.status_code == 403, (role, name)
            assert page.status_code == 403, (role, name)


def test_outreach_never_sees_a_person_page_or_enforcement_data(ws):
    c, _ = sign_in(ws, "outreach1")
    rows = c.get("/api/runs/r2/lists/service_referrals").json()["rows"]
    pid = rows[0]["person_id"]
    assert c.get(f"/runs/r2/person?id={quote(pid, safe='')}").status_code == 403
    page = c.get("/runs/r2/lists/service_referrals").text
    for word in ("legal", "Legal", "call-in", "Custom-notification"):
        assert word not in page
    assert c.get("/runs/r2").status_code == 200
    assert "Call-in" not in c.get("/runs/r2").text


def test_a_list_row_answer_is_a_logged_release(ws):
    c, _ = sign_in(ws, "supervisor1")
    rows = c.get("/api/runs/r2/lists/call_in").json()["rows"]
    rel = _log(ws).disseminations()
    assert rel, "a release entry was written"
    last = rel[-1].payload
    assert last["what"].endswith("/lists/call_in")
    assert sorted(last["person_ids"]) == sorted(r["person_id"] for r in rows)
    assert last["purpose"] and last["role"] == "supervisor"


# ---------------------------------------------------------------------------- reviews

def _cn_person(app) -> str:
    run = app.state.ws.catalog.get("r2")
    return run.list_table("custom_notifications")["person_id"].iloc[0]


def test_writes_without_the_session_token_are_refused(ws):
    c, token = sign_in(ws, "prosecutor1")
    body = {"list": "custom_notifications", "person_id": _cn_person(ws), "decision": "approve",
            "reason": "evidence read and confirmed"}
    assert c.post("/api/runs/r2/reviews", json=body).status_code == 403
    assert c.post("/api/runs/r2/reviews", json=body, headers={"X-CSRF-Token": "forged"}).status_code == 403
    other, other_token = sign_in(ws, "prosecutor2")
    assert c.post("/api/runs/r2/reviews", json=body, headers={"X-CSRF-Token": other_token}).status_code == 403
    form = {"list": "custom_notifications", "person_id": _cn_person(ws), "decision": "approve", "reason": "x y z"}
    assert c.post("/runs/r2/review", data=form, follow_redirects=False).status_code == 403
    assert c.post("/runs/r2/review", data=dict(form, csrf_token="nope"), follow_redirects=False).status_code == 403
    cross = c.post("/api/runs/r2/reviews", json=body,
                   headers={"X-CSRF-Token": token, "Origin": "http://evil.example"})
    assert cross.status_code == 403
    assert _log(ws).entries(kind="review") == []


def test_two_person_clearance_of_a_custom_notification(ws):
    pid = _cn_person(ws)
    pros, pt = sign_in(ws, "prosecutor1")
    body = {"list": "custom_notifications", "person_id": pid, "decision": "approve",
            "reason": "record and ties confirmed against the case files", "reason_code": "evidence_confirmed"}
    r = pros.post("/api/runs/r2/reviews", json=body, headers={"X-CSRF-Token": pt})
    assert r.status_code == 201, r.text
    entry = r.json()
    assert entry["kind"] == "review" and entry["payload"]["person_id"] == pid and len(entry["entry_hash"]) == 64
    row = next(x for x in pros.get("/api/runs/r2/lists/custom_notifications").json()["rows"] if x["person_id"] == pid)
    assert row["review"]["state"] == "partly_approved" and row["review"]["needed"] == ["supervisor"]
    # the same prosecutor approving again does not count twice
    assert pros.post("/api/runs/r2/reviews", json=body, headers={"X-CSRF-Token": pt}).status_code == 201
    row = next(x for x in pros.get("/api/runs/r2/lists/custom_notifications").json()["rows"] if x["person_id"] == pid)
    assert row["review"]["state"] == "partly_approved"
    sup, st = sign_in(ws, "supervisor1")
    assert sup.post("/api/runs/r2/reviews", json=dict(body, reason="second approval after reading the evidence"),
                    headers={"X-CSRF-Token": st}).status_code == 201
    row = next(x for x in sup.get("/api/runs/r2/lists/custom_notifications").json()["rows"] if x["person_id"] == pid)
    assert row["review"]["state"] == "cleared"
    assert {a["role"] for a in row["review"]["approvals"]} == {"prosecutor", "supervisor"}
    assert _log(ws).verify().ok


def test_roles_that_do_not_review_a_list_are_refused(ws):
    pid = _cn_person(ws)
    for user, lst in (("prosecutor1", "call_in"), ("analyst1", "custom_notifications"),
                      ("auditor1", "custom_notifications"), ("outreach1", "service_referrals"),
                      ("supervisor1", "service_referrals"), ("admin1", "custom_notifications")):
        c, t = sign_in(ws, user)
        r = c.post("/api/runs/r2/reviews", json={"list": lst, "person_id": pid, "decision": "approve",
                                                 "reason": "should be refused"}, headers={"X-CSRF-Token": t})
        assert r.status_code == 403, (user, lst, r.text)
    assert _log(ws).entries(kind="review") == []


def test_a_review_of_someone_not_on_the_list_is_refused_with_a_message(ws):
    c, t = sign_in(ws, "prosecutor1")
    r = c.post("/api/runs/r2/reviews", json={"list": "custom_notifications", "person_id": "NOT-LISTED",
                                             "decision": "decline", "reason": "x"}, headers={"X-CSRF-Token": t})
    assert r.status_code == 404 and "not on custom_notifications" in r.json()["detail"]
    r = c.post("/api/runs/nope/reviews", json={"list": "custom_notifications", "person_id": "x",
                                               "decision": "decline", "reason": "x"}, headers={"X-CSRF-Token": t})
    assert r.status_code == 404
    r = c.post("/api/runs/r2/reviews", json={"list": "custom_notifications", "person_id": _cn_person(ws),
                                             "decision": "approve", "reason": "x", "reason_code": "victim_only"},
               headers={"X-CSRF-Token": t})
    assert r.status_code == 400 and "reason_code" in r.json()["detail"]


def test_the_review_form_records_and_shows_the_decision(ws):
    pid = _cn_person(ws)
    c, t = sign_in(ws, "supervisor1")
    page = c.get(f"/runs/r2/person?id={quote(pid, safe='')}")
    assert page.status_code == 200 and "Legal-risk summary" in page.text
    r = c.post("/runs/r2/review", data={"csrf_token": t, "list": "custom_notifications", "person_id": pid,
                                        "decision": "defer", "reason": "waiting for the case file",
                                        "reason_code": "need_more_information"}, follow_redirects=False)
    assert r.status_code == 303
    page = c.get(r.headers["location"])
    assert "waiting for the case file" in page.text and "deferred" in page.text


def test_a_decline_in_an_earlier_run_carries_forward(ws):
    app = ws
    r1 = app.state.ws.catalog.get("r1")
    r2 = app.state.ws.catalog.get("r2")
    both = set(r1.list_table("custom_notifications")["person_id"]) & set(r2.list_table("custom_notifications")["person_id"])
    assert both, "the fixture's two runs share custom-notification candidates"
    pid = sorted(both)[0]
    c, t = sign_in(app, "prosecutor1")
    assert c.post("/api/runs/r1/reviews", json={"list": "custom_notifications", "person_id": pid,
                                                "decision": "decline", "reason": "identity in doubt",
                                                "reason_code": "identity_doubt"},
                  headers={"X-CSRF-Token": t}).status_code == 201
    row = next(x for x in c.get("/api/runs/r2/lists/custom_notifications").json()["rows"] if x["person_id"] == pid)
    assert row["review"]["state"] == "declined" and row["review"]["carried_from"] == "r1"


def test_changes_split_new_candidates_from_carried_over(ws):
    c, _ = sign_in(ws, "supervisor1")
    page = c.get("/runs/r2/lists/call_in").text
    assert "New this cycle" in page and "Carried over" in page


# ---------------------------------------------------------------------------- outreach

def test_outreach_records_an_outcome_read_back_as_an_intervention(ws):
    c, t = sign_in(ws, "outreach1")
    rows = c.get("/api/runs/r2/lists/service_referrals").json()["rows"]
    pid = rows[0]["person_id"]
    r = c.post("/api/runs/r2/outreach", json={"person_id": pid, "kind": "services_accepted", "date": "2026-01-10",
                                              "service": "mentoring", "notes": "met at the hospital"},
               headers={"X-CSRF-Token": t})
    assert r.status_code == 201, r.text
    r = c.post("/runs/r2/outreach", data={"csrf_token": t, "person_id": pid, "kind": "outreach_contacted",
                                          "date": "2026-01-09", "service": "", "notes": ""}, follow_redirects=False)
    assert r.status_code == 303
    iv = _log(ws).interventions()
    assert list(iv.columns)[:7] == ["person_id", "kind", "date", "source", "list", "run_id", "notes"]
    assert set(iv["kind"]) == {"services_accepted", "outreach_contacted"} and set(iv["run_id"]) == {"r2"}
    assert c.post("/api/runs/r2/outreach", json={"person_id": pid, "kind": "outreach_contacted",
                                                 "date": "2026-01-09"}).status_code == 403
    p, pt = sign_in(ws, "prosecutor1")
    assert p.post("/api/runs/r2/outreach", json={"person_id": pid, "kind": "outreach_contacted", "date": "2026-01-09"},
                  headers={"X-CSRF-Token": pt}).status_code == 403


# ---------------------------------------------------------------------------- the auditor

def test_the_auditor_sees_pseudonyms_the_trail_and_the_dissemination_log(ws):
    pid = _cn_person(ws)
    pros, pt = sign_in(ws, "prosecutor1")
    assert pros.get("/api/runs/r2/lists/custom_notifications").status_code == 200
    pros.post("/api/runs/r2/reviews", json={"list": "custom_notifications", "person_id": pid, "decision": "approve",
                                            "reason": "confirmed"}, headers={"X-CSRF-Token": pt})
    a, at = sign_in(ws, "auditor1")
    data = a.get("/api/runs/r2/lists/custom_notifications").json()
    assert data["pseudonymised"] is True
    shown = [r["person_id"] for r in data["rows"]]
    assert pid not in shown and all(s.startswith("P") and len(s) > 8 for s in shown)
    page = a.get(f"/runs/r2/person?id={quote(shown[0], safe='')}")
    assert page.status_code == 200 and pid not in page.text
    trail = a.get("/audit")
    assert trail.status_code == 200 and "hash chain is intact" in trail.text and pid not in trail.text
    entries = a.get("/api/audit/entries").json()
    assert {"signin", "review", "release"} <= {e["kind"] for e in entries}
    assert pid not in json.dumps(entries)
    d = a.get("/audit/disseminations.csv")
    assert d.status_code == 200 and d.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(d.text)))
    assert rows and {"prosecutor1", "auditor1"} <= {r["user"] for r in rows}
    assert a.post("/api/runs/r2/reviews", json={"list": "custom_notifications", "person_id": pid,
                                                "decision": "approve", "reason": "x"},
                  headers={"X-CSRF-Token": at}).status_code == 403
    status = a.get("/audit/runs")
    assert status.status_code == 200 and status.text.count("not recorded in this audit log") == 2
    _log(ws).record_run(ws.state.ws.catalog.get("r2").path)
    status = a.get("/audit/runs").text
    assert status.count("not recorded in this audit log") == 1 and '<span class="ok">verified</span>' in status
    for other in ("analyst1", "prosecutor1", "outreach1", "admin1"):
        c, _ = sign_in(ws, other)
        assert c.get("/audit").status_code == 403 and c.get("/api/audit/entries").status_code == 403


# ---------------------------------------------------------------------------- hostile IDs, headers, altered runs

def test_hostile_ids_stay_inert_in_every_page(ws):
    for user in ("analyst1", "prosecutor1", "supervisor1", "outreach1", "auditor1"):
        c, _ = sign_in(ws, user)
        pages = [c.get("/"), c.get("/runs/r2")]
        for name in LISTS_OF_ROLE[user[:-1]]:
            pages.append(c.get(f"/runs/r2/lists/{name}"))
        if user != "outreach1" and user != "auditor1":
            run = ws.state.ws.catalog.get("r2")
            for pid in (HOSTILE_CN, HOSTILE_SR):
                if any(n in LISTS_OF_ROLE[user[:-1]] for n in run.listed().get(pid, [])):
                    pages.append(c.get(f"/runs/r2/person?id={quote(pid, safe='')}"))
                    assert pages[-1].status_code == 200, (user, pid)
        for p in pages:
            assert p.status_code == 200, (user, p.url)
            assert "<script>window.__xss" not in p.text and "<img src=x" not in p.text, (user, p.url)
            assert "Content-Security-Policy" in p.headers and "'unsafe-inline'" not in p.headers["Content-Security-Policy"]
    c, _ = sign_in(ws, "analyst1")
    page = c.get("/runs/r2/lists/custom_notifications").text
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in page


def test_security_headers_forbid_framing_and_inline_script(ws):
    c, _ = sign_in(ws, "analyst1")
    h = c.get("/").headers
    assert "frame-ancestors 'none'" in h["content-security-policy"]
    assert "script-src 'self'" in h["content-security-policy"]
    assert h["x-frame-options"] == "DENY" and h["x-content-type-options"] == "nosniff"
    assert h["cache-control"] == "no-store"


def test_an_altered_run_folder_is_listed_but_not_served(ws, runs_dir, tmp_path):
    import shutil
    from fdnet.workspace.app import create_app
    runs = tmp_path / "runs"
    shutil.copytree(runs_dir / "r2", runs / "r2")
    p = runs / "r2" / "call_in.csv"
    p.write_bytes(p.read_bytes().replace(b"\n2,", b"\n1,", 1))
    app = create_app(runs, str(tmp_path / "a.sqlite"), sleep=lambda s: None)
    app.state.ws.accounts.add("ana", "analyst", PASSWORD, by="test")
    c, _ = sign_in(app, "ana")
    runs_json = c.get("/api/runs").json()["runs"]
    assert runs_json == [{"run_id": "r2", "as_of": runs_json[0]["as_of"], "ok": False, "lists": []}]
    assert c.get("/api/runs/r2/lists/call_in").status_code == 409
    assert "altered" in c.get("/").text


def test_openapi_documents_the_contract_api(ws):
    c, _ = sign_in(ws, "analyst1")
    spec = c.get("/api/openapi.json").json()
    paths = spec["paths"]
    for p in ("/api/session", "/api/runs", "/api/runs/{run_id}/lists/{list_name}", "/api/runs/{run_id}/reviews"):
        assert p in paths
    assert not any(not p.startswith("/api/") for p in paths)


def test_admin_manages_users_through_the_page(ws):
    c, t = sign_in(ws, "admin1")
    assert c.get("/admin/users").status_code == 200
    r = c.post("/admin/users", data={"csrf_token": t, "action": "add", "name": "newpros", "role": "prosecutor",
                                     "password": "a long enough password"}, follow_redirects=False)
    assert r.status_code == 303
    assert ws.state.ws.accounts.get("newpros").role == "prosecutor"
    assert c.post("/admin/users", data={"action": "disable", "name": "newpros"}).status_code == 403
    c2, _ = sign_in(ws, "analyst1")
    assert c2.get("/admin/users").status_code == 403


def test_blind_review_hides_the_score_until_the_evidence_is_read(runs_dir, tmp_path):
    from fdnet.policy import Policy
    from fdnet.run import run
    from fdnet.workspace.app import create_app
    runs = tmp_path / "runs"
    policy = Policy.model_validate({"review": {"blind": True}})
    run(runs_dir.parent / "data", as_of="2025-12-31", policy=policy).write(runs / "b1")
    app = create_app(runs, str(tmp_path / "a.sqlite"), sleep=lambda s: None)
    for name, role in (("pros", "prosecutor"), ("ana", "analyst")):
        app.state.ws.accounts.add(name, role, PASSWORD, by="test")
    c, _ = sign_in(app, "pros")
    entry = app.state.ws.catalog.get("b1")
    pid = entry.list_table("custom_notifications")["person_id"].iloc[1]
    score = entry.row("custom_notifications", pid)["score"]
    listing = c.get("/runs/b1/lists/custom_notifications").text
    assert "<th>score</th>" not in listing
    page = c.get(f"/runs/b1/person?id={quote(pid, safe='')}").text
    assert "Blind review" in page and f"score <strong>{score}</strong>" not in page and "<th>Points</th>" not in page
    page = c.get(f"/runs/b1/person?id={quote(pid, safe='')}&reveal=1").text
    assert "Blind review" not in page and f"score <strong>{score}</strong>" in page and "<th>Points</th>" in page
    reveals = [e for e in app.state.ws.log.disseminations() if e.payload["what"].startswith("score revealed")]
    assert len(reveals) == 1 and reveals[0].payload["person_ids"] == [pid] and reveals[0].user == "pros"
    # the analyst is not a reviewer: never blind
    a, _ = sign_in(app, "ana")
    assert "Blind review" not in a.get(f"/runs/b1/person?id={quote(pid, safe='')}").text


def test_bad_query_values_are_clear_400s_not_500s(ws):
    a, _ = sign_in(ws, "auditor1")
    r = a.get("/audit?kind=nonsense")
    assert r.status_code == 400 and "kind" in r.text
    r = a.get("/api/audit/entries?kind=nonsense")
    assert r.status_code == 400 and "kind" in r.json()["detail"]
    assert a.get("/api/audit/entries?limit=abc").status_code == 422


def test_a_form_value_the_model_refuses_is_a_400_not_a_500(ws):
    # an HTML form is not checked by FastAPI: a bad decision, kind or date must be refused by name
    pid = _cn_person(ws)
    c, t = sign_in(ws, "supervisor1")
    r = c.post("/runs/r2/review", data={"csrf_token": t, "list": "custom_notifications", "person_id": pid,
                                        "decision": "obliterate", "reason": "x"}, follow_redirects=False)
    assert r.status_code == 400 and "decision" in r.text
    o, ot = sign_in(ws, "outreach1")
    rid = o.get("/api/runs/r2/lists/service_referrals").json()["rows"][0]["person_id"]
    before = len(_log(ws).interventions())
    for bad in ({"kind": "teleported", "date": "2026-01-09"}, {"kind": "outreach_contacted", "date": "yesterday"}):
        r = o.post("/runs/r2/outreach", data={"csrf_token": ot, "person_id": rid, "service": "", "notes": "", **bad},
                   follow_redirects=False)
        assert r.status_code == 400, (bad, r.status_code)
    assert len(_log(ws).interventions()) == before
