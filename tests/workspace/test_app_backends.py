"""The workspace on both audit backends (SQLite and a throwaway PostgreSQL cluster): users, sign-in, a two-person
clearance and an outreach outcome, with the chain verified afterwards."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "audit"))
from pgcluster import db_url, pg_server  # noqa: E402,F401  (fixtures)
from wshelpers import PASSWORD, sign_in  # noqa: E402

from fdnet.audit.log import AuditLog  # noqa: E402
from fdnet.workspace.app import create_app  # noqa: E402


def test_clearance_and_outreach_on_each_backend(runs_dir, db_url):
    app = create_app(runs_dir, db_url, sleep=lambda s: None)
    for name, role in (("pros", "prosecutor"), ("sup", "supervisor"), ("out", "outreach")):
        app.state.ws.accounts.add(name, role, PASSWORD, by="test")
    run = app.state.ws.catalog.get("r2")
    pid = run.list_table("custom_notifications")["person_id"].iloc[2]
    body = {"list": "custom_notifications", "person_id": pid, "decision": "approve", "reason": "file read"}
    for user in ("pros", "sup"):
        c, t = sign_in(app, user)
        assert c.post("/api/runs/r2/reviews", json=body, headers={"X-CSRF-Token": t}).status_code == 201
    row = next(r for r in c.get("/api/runs/r2/lists/custom_notifications").json()["rows"] if r["person_id"] == pid)
    assert row["review"]["state"] == "cleared"
    o, ot = sign_in(app, "out")
    sr = o.get("/api/runs/r2/lists/service_referrals").json()["rows"][0]["person_id"]
    assert o.post("/api/runs/r2/outreach", json={"person_id": sr, "kind": "outreach_contacted", "date": "2026-01-05"},
                  headers={"X-CSRF-Token": ot}).status_code == 201
    log = AuditLog(db_url)
    rep = log.verify()
    assert rep.ok, rep.problems
    kinds = [e.kind for e in log.entries()]
    assert kinds.count("review") == 2 and kinds.count("outreach") == 1 and kinds.count("signin") == 3
    assert "release" in kinds and "user" in kinds
