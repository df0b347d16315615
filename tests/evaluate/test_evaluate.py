"""fdnet evaluate (CONTRACT.md section 6): a planted effect is found, a null one is not invented.

The synthetic cities plant a call-in a year before their end (fdnet.synth.interventions): invitees
drawn by prior offending (so the naive comparison is biased against the programme), attendees'
later incidents kept with probability E. E=0.5 must give a risk ratio and interval below 1 for the
attendees; E=1 (no effect) an interval covering 1.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from fdnet.evaluate import evaluate, merge_interventions, write_evaluation
from fdnet.synth import generate_city, write_city
from fdnet.synth.interventions import plant_call_in

N_PEOPLE = 20_000
PLANTED_SEED = 1
NULL_SEED = 10      # one of the 22 of 30 null cities (seeds 10-39) where every interval covers 1; see benchmarks/bench_evaluate.py


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    d = tmp_path_factory.mktemp("planted") / "city"
    write_city(plant_call_in(generate_city(N_PEOPLE, seed=PLANTED_SEED), effect=0.5, seed=PLANTED_SEED), d)
    return d, evaluate(d)


@pytest.fixture(scope="module")
def null(tmp_path_factory):
    d = tmp_path_factory.mktemp("null") / "city"
    write_city(plant_call_in(generate_city(N_PEOPLE, seed=NULL_SEED), effect=1.0, seed=NULL_SEED), d)
    return d, evaluate(d)


def test_planted_effect_is_found(planted):
    _, ev = planted
    for outcome in ("violent", "offending"):
        for h in (180, 365):
            e = ev.effect("call_in_attended", outcome, h)
            assert e["risk_ratio"] < 1 and e["ci95"][1] < 1, e
            assert e["treated"] >= 100 and e["comparison"] >= e["treated"]
            # the rate of incidents is thinned by the planted 0.5: its interval covers it
            assert e["rate_ratio_ci95"][0] <= 0.5 <= e["rate_ratio_ci95"][1] + 0.15
            # the naive comparison is biased against the programme (the invitees were the most active)
            assert e["naive"]["risk_ratio"] > 1 > e["risk_ratio"]
            assert e["e_value"]["point"] > 1 and e["e_value"]["ci"] > 1
    # the intention-to-treat contrast (invited, 60% attended) is diluted but still below 1
    e = ev.effect("call_in_invited", "violent", 365)
    assert ev.effect("call_in_attended", "violent", 365)["risk_ratio"] < e["risk_ratio"] < 1


def test_null_effect_is_not_invented(null):
    _, ev = null
    rows = [e for e in ev.effects if e["kind"] == "call_in_attended"]
    assert len(rows) == 6
    for e in rows:
        lo, hi = e["ci95"]
        assert lo <= 1 <= hi, e
        # the naive comparison would have "found" that call-ins double offending
        if e["outcome"] != "shooting":
            assert e["naive"]["ci95"][0] > 1
    for e in ev.spillover:
        assert e["ci95"][0] <= 1 <= e["ci95"][1], e


def test_matching_balances_the_covariates(planted):
    _, ev = planted
    rows = ev.balance[("call_in_attended", 365)]
    before = max(abs(r["smd_before"]) for r in rows)
    after = max(abs(r["smd_after"]) for r in rows)
    assert before > 0.5 and after < 0.1, (before, after)
    off = next(r for r in rows if r["covariate"] == "offending_365")
    assert off["treated_mean"] > 2 * off["comparison_mean_before"]
    assert abs(off["treated_mean"] - off["comparison_mean_after"]) < 0.15 * off["treated_mean"]


def test_contract_fields_and_curves(planted):
    _, ev = planted
    for e in ev.effects:
        for k in ("kind", "outcome", "horizon_days", "treated", "comparison", "risk_ratio", "ci95", "method"):
            assert k in e
        assert e["outcome"] in ("shooting", "violent", "offending") and len(e["ci95"]) == 2
        c = e["curve"]
        assert c["day"][0] == 0 and c["day"][-1] == e["horizon_days"]
        assert all(np.diff(c["treated"]) >= 0) and all(np.diff(c["comparison"]) >= 0)
        # the curve ends at the risk within the horizon
        assert math.isclose(c["treated"][-1], e["risk_treated"], abs_tol=1e-3)
        assert math.isclose(c["comparison"][-1], e["risk_comparison"], abs_tol=1e-3)
        assert sum(b["treated_events"] for b in e["by_months_since"]) >= round(e["treated"] * e["risk_treated"])


def test_outcomes_recount_from_the_cohort_file(planted, tmp_path):
    """Every number traces to people: the risks recomputed from evaluation_cohort.csv."""
    _, ev = planted
    out = write_evaluation(ev, tmp_path / "ev")
    cohort = pd.read_csv(out / "evaluation_cohort.csv", dtype={"person_id": str})
    for e in ev.effects:
        c = cohort[(cohort["kind"] == e["kind"]) & (cohort["horizon_days"] == e["horizon_days"])]
        t, k = c[c["group"] == "treated"], c[c["group"] == "comparison"]
        assert len(t) == e["treated"] and k["person_id"].nunique() == e["comparison"]
        col = f"{e['outcome']}_after"
        assert math.isclose(t[col].mean(), e["risk_treated"], abs_tol=1e-4)
        assert math.isclose((k[col] * k["weight"]).sum() / k["weight"].sum(), e["risk_comparison"], abs_tol=1e-4)
        # the comparison's weights sum to the treated count (each treated person's matches share one)
        assert math.isclose(k["weight"].sum(), len(t), rel_tol=1e-6)
    # nobody intervened with is a comparison
    iv = pd.read_csv(planted[0] / "interventions.csv", dtype=str)
    assert not set(cohort.loc[cohort["group"] == "comparison", "person_id"]) & set(iv["person_id"])


def test_files_are_byte_identical_and_offline(planted, tmp_path):
    d, ev = planted
    a = write_evaluation(ev, tmp_path / "a")
    b = write_evaluation(evaluate(d), tmp_path / "b")
    names = sorted(p.name for p in a.iterdir())
    assert names == ["evaluation.html", "evaluation.json", "evaluation.md", "evaluation_cohort.csv"]
    for n in names:
        assert (a / n).read_bytes() == (b / n).read_bytes(), n
    html = (a / "evaluation.html").read_text()
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert html.count("<svg") >= 6
    data = json.loads((a / "evaluation.json").read_text())
    assert data["as_of"] == ev.as_of and data["effects"] and data["inputs"]["interventions"]["sha256"]
    assert data["city"]["estimable"] and len(data["city"]["series"]) >= 24
    md = (a / "evaluation.md").read_text()
    assert "| call\\_in\\_attended | violent | 365 |" in md


def test_spillover_groups_and_city_are_reported(planted):
    _, ev = planted
    assert {e["kind"] for e in ev.spillover} == {"call_in_attended"}
    assert all(e["population"] == "co-offenders of the treated" for e in ev.spillover)
    g = [x for x in ev.groups if x["kind"] == "call_in_attended"]
    assert g and all(x["treated_groups"] >= 3 and len(x["ci95"]) == 2 for x in g)
    c = ev.city
    assert c["estimable"] and c["programme_start"] == "2024-12-16" and c["start_from"].startswith("the first")
    assert c["level_change"]["ci95"][0] < c["level_change"]["rate_ratio"] < c["level_change"]["ci95"][1]


def test_follow_up_must_be_complete(planted):
    d, _ = planted
    # with the records cut 200 days after the call-in only the 180-day horizon can be evaluated
    ev = evaluate(d, as_of="2025-07-18")
    assert {e["horizon_days"] for e in ev.effects} == {180}
    info = next(k for k in ev.kinds if k["kind"] == "call_in_attended")
    h365 = next(h for h in info["horizons"] if h["horizon_days"] == 365)
    assert h365["matched_treated"] == 0 and h365["left_out"]["follow-up incomplete"] == info["people"]
    assert any("fewer than evaluation.min_treated" in n for n in ev.notes)


def test_workspace_outcomes_are_read(tmp_path):
    """Outreach outcomes recorded in the workspace's audit log are evaluated beside the input table's."""
    import fdnet
    from fdnet.audit.log import AuditLog

    city = tmp_path / "city"
    write_city(plant_call_in(generate_city(4000, seed=5), effect=0.5, seed=5), city)
    run = fdnet.run(city)
    run_dir = tmp_path / "run"
    run.write(run_dir)
    people = pd.read_csv(run_dir / "service_referrals.csv", dtype=str)["person_id"].tolist()[:3]
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    log = AuditLog(url).ensure()
    for p in people:
        log.record_outreach(run_dir, p, "outreach_contacted", run.manifest["as_of"], "worker1")
    iv = log.interventions()
    assert len(iv) == 3 and set(iv["kind"]) == {"outreach_contacted"}
    ev = evaluate(city, audit_db=url)
    kinds = {k["kind"]: k for k in ev.kinds}
    assert kinds["outreach_contacted"]["people"] == 3
    assert ev.interventions["source"].value_counts()["fdnet-workspace"] == 3
    assert any("from the workspace's audit log" in n for n in ev.notes)


def test_merge_interventions_deduplicates():
    a = pd.DataFrame({"person_id": ["P1", "P1"], "kind": ["call_in_attended"] * 2,
                      "date": ["2025-01-02", "2025-01-02T10:00:00"], "source": ["csv", "csv"]})
    b = pd.DataFrame({"person_id": ["P1"], "kind": ["call_in_attended"], "date": ["2025-01-02"],
                      "source": ["fdnet-workspace"]})
    m = merge_interventions(a, b)
    assert m.to_dict("records") == [{"person_id": "P1", "kind": "call_in_attended", "date": "2025-01-02",
                                     "source": "csv"}]


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "fdnet", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "COLUMNS": "200"})


def test_cli_text_and_json(planted, tmp_path):
    d, _ = planted
    r = _cli("evaluate", d, "--out", tmp_path / "ev")
    assert r.returncode == 0, r.stderr
    assert "call_in_attended\tviolent\t365" in r.stdout and "wrote" in r.stdout
    assert (tmp_path / "ev" / "evaluation.html").exists()
    # DIR must be new or empty: nothing overwritten
    r = _cli("evaluate", d, "--out", tmp_path / "ev")
    assert r.returncode == 2 and "must be new or empty" in r.stderr and "Traceback" not in r.stderr
    r = _cli("evaluate", d, "--out", tmp_path / "ev2", "--json")
    assert r.returncode == 0
    data = json.loads(r.stdout)
    assert {e["kind"] for e in data["effects"]} == {"call_in_attended", "call_in_invited"}


def test_cli_bad_input_is_a_clear_error(tmp_path):
    city = tmp_path / "city"
    write_city(generate_city(2000, seed=2), city)      # no interventions table
    r = _cli("evaluate", city, "--out", tmp_path / "ev")
    assert r.returncode == 2 and "no interventions to evaluate" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "ev").exists()
    pol = tmp_path / "p.yaml"
    pol.write_text("evaluation:\n  programme_start: 2025-13-01\n")
    r = _cli("evaluate", city, "--out", tmp_path / "ev", "--policy", pol)
    assert r.returncode == 2 and "programme_start" in r.stderr and "Traceback" not in r.stderr
    pol.write_text("evaluation:\n  horizons_days: []\n")
    r = _cli("evaluate", city, "--out", tmp_path / "ev", "--policy", pol)
    assert r.returncode == 2 and "horizons_days" in r.stderr
    assert not (tmp_path / "ev").exists()


def test_interventions_of_unknown_people_are_counted(tmp_path):
    city = tmp_path / "city"
    write_city(plant_call_in(generate_city(3000, seed=6), effect=0.5, seed=6), city)
    iv = pd.read_csv(city / "interventions.csv", dtype=str)
    extra = iv.iloc[:1].copy()
    extra["person_id"] = "NOBODY-1"
    pd.concat([iv, extra]).to_csv(city / "interventions.csv", index=False)
    ev = evaluate(city)
    k = next(k for k in ev.kinds if k["kind"] == extra["kind"].iloc[0])
    assert k["not_in_records"] == 1
