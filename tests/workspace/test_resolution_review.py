"""The workspace's clerical review of entity resolution (fdnet.workspace.resolution): the uncertain pairs side by
side with their waterfall, must-link / cannot-link decisions by analysts only (session, CSRF, audited), written to
the data folder's decisions table, and applied by the next run."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from wshelpers import PASSWORD, ROLES, sign_in

ON = {"resolution": {"enabled": True}}


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    from fdnet.synth import generate_city, write_city
    from fdnet.synth.resolution import add_identities
    root = tmp_path_factory.mktemp("wsres")
    data = root / "data"
    write_city(add_identities(generate_city(1500, seed=7), duplicates=0.2, seed=3), data)
    return data


@pytest.fixture()
def app(city, tmp_path):
    """An app over one resolution run made from a private copy of the data folder (decisions are written there)."""
    from fdnet.run import run
    from fdnet.workspace.app import create_app
    data = tmp_path / "data"
    shutil.copytree(city, data)
    runs = tmp_path / "runs"
    runs.mkdir()
    run(data, as_of="2025-12-31", policy=ON).write(runs / "r1")
    a = create_app(runs, str(tmp_path / "audit.sqlite"), today=lambda: "2026-01-15", sleep=lambda s: None)
    for role in ROLES:
        a.state.ws.accounts.add(role + "1", role, PASSWORD, by="test")
    a.state.data = data
    a.state.runs = runs
    return a


def _pairs(app) -> pd.DataFrame:
    return pd.read_csv(app.state.runs / "r1" / "resolution_review.csv", dtype=str, keep_default_na=False)


def test_analysts_see_both_records_and_the_waterfall_auditors_read_without_names(app):
    pairs = _pairs(app)
    assert len(pairs) > 0
    top = pairs.iloc[0]
    c, _ = sign_in(app, "analyst1")
    assert "/runs/r1/resolution" in c.get("/runs/r1").text
    r = c.get("/runs/r1/resolution")
    assert r.status_code == 200
    html = r.text
    assert f"{top['person_a']} — {top['person_b']}" in html
    for f in ("first_name", "last_name", "birth_date"):
        for v in (top[f"{f}_a"], top[f"{f}_b"]):
            assert f"<td>{v}</td>" in html
    assert "Match-weight waterfall" in html and "prior" in html
    assert html.count('name="csrf_token"') >= 1 and 'value="must_link"' in html
    releases = [e for e in app.state.ws.log.entries(kind="release") if "resolution" in e.payload.get("what", "")]
    assert releases and top["person_a"] in releases[-1].payload["person_ids"]

    a, _ = sign_in(app, "auditor1")
    r = a.get("/runs/r1/resolution")
    assert r.status_code == 200
    assert top["person_a"] not in r.text and top["last_name_a"] not in r.text.lower().replace("last name", "")
    assert 'value="must_link"' not in r.text and "Match-weight waterfall" in r.text
    # a run made without entity resolution has nothing to review
    from fdnet.run import run
    run(app.state.data, as_of="2025-12-31").write(app.state.runs / "plain")
    assert c.get("/runs/plain/resolution").status_code == 404
    assert "/runs/plain/resolution" not in c.get("/runs/plain").text
    for role in ("prosecutor", "supervisor", "outreach"):
        x, _ = sign_in(app, role + "1")
        assert x.get("/runs/r1/resolution").status_code == 403, role


def test_a_decision_needs_an_analyst_the_csrf_token_and_a_same_site_origin(app):
    top = _pairs(app).iloc[0]
    form = {"person_a": top["person_a"], "person_b": top["person_b"], "decision": "must_link", "reason": "same DOB"}
    c, token = sign_in(app, "analyst1")
    assert c.post("/runs/r1/resolution", data=form, follow_redirects=False).status_code == 403
    assert c.post("/runs/r1/resolution", data={**form, "csrf_token": token}, follow_redirects=False,
                  headers={"Origin": "http://evil.example"}).status_code == 403
    au, au_token = sign_in(app, "auditor1")
    assert au.post("/runs/r1/resolution", data={**form, "csrf_token": au_token},
                   follow_redirects=False).status_code == 403
    assert c.post("/runs/r1/resolution", data={**form, "decision": "merge", "csrf_token": token},
                  follow_redirects=False).status_code == 400
    assert not app.state.ws.log.entries(kind="resolution")
    assert not (app.state.data / "resolution_decisions.csv").exists()


def test_decisions_are_audited_written_to_the_data_folder_and_applied_on_the_next_run(app):
    from fdnet.run import run
    pairs = _pairs(app)
    assert len(pairs) >= 2
    must, cannot = pairs.iloc[0], pairs.iloc[1]
    c, token = sign_in(app, "analyst1")
    for row, d, why in ((must, "must_link", "=HYPERLINK(\"x\") same booking photo"), (cannot, "cannot_link", "twins")):
        r = c.post("/runs/r1/resolution", follow_redirects=False,
                   data={"person_a": row["person_b"], "person_b": row["person_a"], "decision": d, "reason": why,
                         "csrf_token": token})
        assert r.status_code == 303 and r.headers["location"] == "/runs/r1/resolution?recorded=1"
    # the same pair again: refused, nothing added
    again = c.post("/runs/r1/resolution", follow_redirects=False,
                   data={"person_a": must["person_a"], "person_b": must["person_b"], "decision": "cannot_link",
                         "reason": "changed my mind", "csrf_token": token})
    assert again.status_code == 409
    # a pair that is not an uncertain pair of the run
    stranger = c.post("/runs/r1/resolution", follow_redirects=False,
                      data={"person_a": must["person_a"], "person_b": cannot["person_b"], "decision": "must_link",
                            "reason": "x", "csrf_token": token})
    assert stranger.status_code == 404

    entries = app.state.ws.log.entries(kind="resolution")
    assert [(e.payload["person_id_a"], e.payload["person_id_b"], e.payload["decision"], e.user) for e in entries] \
        == [(must["person_a"], must["person_b"], "must_link", "analyst1"),
            (cannot["person_a"], cannot["person_b"], "cannot_link", "analyst1")]
    assert app.state.ws.log.verify().ok

    dec = pd.read_csv(app.state.data / "resolution_decisions.csv", dtype=str, keep_default_na=False)
    assert dec[["person_id_a", "person_id_b", "decision", "reviewer", "date"]].values.tolist() == [
        [must["person_a"], must["person_b"], "must_link", "analyst1", "2026-01-15"],
        [cannot["person_a"], cannot["person_b"], "cannot_link", "analyst1", "2026-01-15"]]
    assert dec["reason"].iloc[0].startswith("'=")          # neutralised for spreadsheets
    page = c.get("/runs/r1/resolution?recorded=1").text
    assert "Decision recorded" in page and page.count("Decided:") == 2

    nxt = run(app.state.data, as_of="2025-12-31", policy=ON)
    res = nxt.resolution.table.set_index("person_id")
    assert res.at[must["person_a"], "entity_id"] == res.at[must["person_b"], "entity_id"]
    assert "must_link" in set(res.loc[[must["person_a"], must["person_b"]], "joined_by"])
    assert res.at[cannot["person_a"], "entity_id"] != res.at[cannot["person_b"], "entity_id"]
    left = set(zip(nxt.resolution.review["person_a"], nxt.resolution.review["person_b"]))
    assert (must["person_a"], must["person_b"]) not in left and (cannot["person_a"], cannot["person_b"]) not in left
    assert nxt.manifest["resolution"]["decisions"]["must_link"] == 1
