"""The command line as a user meets it, in text mode (issue 9 items 1, 3 and 8).

Every command and subcommand of docs/cli.md runs in-process on one small
synthetic city with standard output captured (not a terminal), exits 0 and
prints something sensible; every listed person is explained in text. The
city is built once for the module.
"""
from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

import pytest
import typer

from fdnet import cli
from fdnet.explain_cli import component_rows, evidence_items, explain_person, headline, list_lines
from fdnet.tables import read_csv_table

ROOT = Path(__file__).resolve().parents[2]
LISTS = ("call_in", "custom_notifications", "service_referrals")


def _main(capsys, *argv):
    rc = cli.main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    w = tmp_path_factory.mktemp("cli_text")
    saved = {k: os.environ.get(k) for k in ("FDNET_AUDIT_DB", "XDG_DATA_HOME", "FDNET_USER")}
    os.environ["FDNET_AUDIT_DB"] = f"sqlite:///{w / 'audit.sqlite'}"
    os.environ["XDG_DATA_HOME"] = str(w / "xdg")
    os.environ["FDNET_USER"] = "tester"
    assert cli.main(["synth", "--out", str(w / "city"), "--people", "1500", "--seed", "4"]) == 0
    assert cli.main(["run", str(w / "city"), "--out", str(w / "run"), "-q"]) == 0
    yield w
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _listed(run: Path) -> list[str]:
    seen: list[str] = []
    for name in LISTS:
        for pid in read_csv_table(run / f"{name}.csv")["person_id"]:
            if pid not in seen:
                seen.append(pid)
    return seen


def _shooting(city: Path) -> str:
    inc = {r["incident_id"] for r in csv.DictReader(open(city / "incidents.csv", encoding="utf-8"))
           if r.get("gun", "").lower() in ("true", "1", "yes")}
    vic = [r["incident_id"] for r in csv.DictReader(open(city / "involvements.csv", encoding="utf-8"))
           if r["role"] == "victim" and r["incident_id"] in inc]
    assert vic, "the synthetic city has no shooting"
    return vic[-1]


# --- item 1: every listed person explained in text ----------------------------------------------------------

def test_explain_every_listed_person_in_text(env, capsys):
    run = env / "run"
    people = _listed(run)
    assert len(people) > 20
    for pid in people:
        rc, out, err = _main(capsys, "explain", run, pid)
        assert rc == 0, (pid, err)
        assert out.startswith(f"{pid} — run as of ")
        info = explain_person(run, pid)
        for c in info["explanation"]["components"]:       # every component of the explanation is shown
            assert re.search(rf"^{c['name']}\t", out, re.M), (pid, c["name"])
        for name in LISTS:
            assert (f"ON {name} (" in out) == info["lists"][name]["on_list"], (pid, name)
        assert "internal error" not in err and "Traceback" not in err


def test_explain_headline_names_the_score_each_list_ranks_by(env, capsys):
    run = env / "run"
    pid = read_csv_table(run / "call_in.csv")["person_id"].iloc[0]
    rc, out, _ = _main(capsys, "explain", run, pid)
    assert rc == 0
    head = out.splitlines()[:6]
    assert any(line.startswith("enforcement score ") and "call_in and custom_notifications rank by" in line
               for line in head)
    assert any("service_referrals rank by" in line for line in head)
    assert any("no list ranks by it" in line for line in head)           # the total is for reference only
    assert any(line.startswith("estimated probability of shooting or being shot within 120 days: ")
               for line in head)
    assert not re.search(r"\brisk score\b", out)
    on = next(line for line in out.splitlines() if line.startswith("  ON call_in"))
    assert "enforcement score" in on and "group 1 in invitation order" in on


def test_explain_unknown_and_unlisted_people(env, capsys):
    run = env / "run"
    rc, out, _ = _main(capsys, "explain", run, "NOBODY-0")
    assert rc == 0 and "Not in the network" in out
    scores = read_csv_table(run / "scores.csv")
    listed = set(_listed(run))
    pid = next(p for p in scores["person_id"] if p not in listed)
    rc, out, _ = _main(capsys, "explain", run, pid)
    assert rc == 0 and out.count("not on ") == 3 and "score components" not in out


def test_evidence_renderer_never_fails_on_an_unknown_or_malformed_kind():
    ev = {"incidents": [{"incident_id": "I1", "date": "2025-01-01", "roles": ["suspect"]}],
          "a_kind_added_later": {"x": [1, 2], "y": None}, "paths": "not a list of paths",
          "co_offenders": [{"no": "fields"}], "contributions": [7], "model": 3}
    items = evidence_items(ev)
    assert items[0] == "I1 2025-01-01 (suspect)"
    assert any(i.startswith("a_kind_added_later: ") for i in items)
    assert any(i.startswith("paths: ") for i in items)
    assert evidence_items(None) == [] and evidence_items("odd") == ["evidence: odd"]
    info = {"person_id": "P", "as_of": "2025-01-01", "scores": {"group": "", "score": "3", "probability_shooting": "0.01",
                                                                 "enforcement_score": "2", "service_score": "1"},
            "lists": {"call_in": {"on_list": False, "why_not": "x"}},
            "explanation": {"components": [{"name": "new_thing", "value": 1, "points": 2, "evidence": ev}, "junk"]}}
    assert headline(info)[0] == "P — run as of 2025-01-01" and list_lines(info) == ["  not on call_in: x"]
    rows = component_rows(info, max_items=2)
    assert rows[0][:3] == ["new_thing", "1", "2"] and rows[0][4].endswith("… 4 more (--json)")


# --- item 3/8: plain tables, notes, lists that say what they rank by ----------------------------------------

def test_tables_are_plain_and_unwrapped_when_stdout_is_not_a_terminal(env, capsys):
    rc, out, err = _main(capsys, "run", env / "city", "--out", env / "run_tables")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].startswith("fdnet run as of ")
    assert lines[1] == "what\tcount"
    end = next(i for i, line in enumerate(lines) if line.startswith("service_referrals.csv\t"))
    assert all(len(line.split("\t")) == 2 for line in lines[1:end + 1]) and not any(c in out for c in "┏━│└")
    assert "custom_notifications.csv\t" in out
    pid = read_csv_table(env / "run" / "custom_notifications.csv")["person_id"].iloc[0]
    rc, out, _ = _main(capsys, "explain", env / "run", pid)
    reasons = next(line for line in out.splitlines() if line.startswith("  ON custom_notifications"))
    assert len(reasons) > 120 and reasons.endswith(".")                # one line, never wrapped


def test_run_prints_notes_and_warns_about_lists_without_gun_data(env, capsys, tmp_path):
    city = tmp_path / "nogun"
    city.mkdir()
    for name in ("involvements.csv", "persons.csv", "groups.csv", "group_relations.csv"):
        (city / name).write_bytes((env / "city" / name).read_bytes())
    with open(env / "city" / "incidents.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    keep = [k for k in rows[0] if k not in ("gun", "violent", "offense", "nibrs_code")]
    with open(city / "incidents.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, keep, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    rc, out, err = _main(capsys, "run", city, "--out", tmp_path / "run", "-q")
    assert rc == 0 and out == ""
    assert "note: incidents has no 'gun' column: no incident counts as a shooting" in err
    n = len(read_csv_table(tmp_path / "run" / "custom_notifications.csv"))
    assert n > 0
    assert f"WARNING: {n} custom notifications were produced from data with no gun and violence" in err


def test_every_list_says_which_score_it_ranks_by(env):
    run = env / "run"
    scores = read_csv_table(run / "scores.csv").set_index("person_id")
    for name, col in (("call_in", "enforcement_score"), ("custom_notifications", "enforcement_score"),
                      ("service_referrals", "service_score")):
        df = read_csv_table(run / f"{name}.csv")
        assert len(df)
        assert (df["ranked_by"] != "").all() and col in df["ranked_by"].iloc[0]
        assert (df["score"].astype(float).to_numpy() == scores.loc[df["person_id"], col].astype(float).to_numpy()).all()
    cn = read_csv_table(run / "custom_notifications.csv")
    assert "probability_shooting" in cn.columns and "risk" not in cn.columns


def test_call_in_rank_is_invitation_order_with_group_rank_and_rank_in_group(env):
    ci = read_csv_table(env / "run" / "call_in.csv")
    assert list(ci["rank"].astype(int)) == list(range(1, len(ci) + 1))
    gr = ci["group_rank"].astype(int).to_numpy()
    assert (gr[1:] >= gr[:-1]).all() and gr[0] == 1                    # groups in their priority order
    for _, g in ci.groupby("group_rank"):
        assert list(g["rank_in_group"].astype(int)) == list(range(1, len(g) + 1))
        s = g["score"].astype(float).to_numpy()
        assert (s[1:] <= s[:-1]).all()                                  # by enforcement score inside a group
    groups = read_csv_table(env / "run" / "call_in_groups.csv")
    assert list(ci.drop_duplicates("group")["group"]) == list(groups["group"])


def test_reasons_and_meanings_carry_no_raw_policy_keys(env):
    key = re.compile(r"\b(features|analytics|lists|guardrails|calibration)\.[a-z_]+")
    for name in LISTS:
        for r in read_csv_table(env / "run" / f"{name}.csv")["reasons"]:
            assert not key.search(r), r
    for line in open(env / "run" / "explanations.jsonl", encoding="utf-8"):
        for c in json.loads(line)["components"]:
            assert not key.search(c["meaning"]) and "missing_points" not in c["meaning"], c["meaning"]


def test_policy_check_prints_the_hash_the_report_shows(env, capsys):
    from fdnet.report.html import policy_hash
    manifest = json.loads((env / "run" / "manifest.json").read_text(encoding="utf-8"))
    h = policy_hash(manifest["policy"])
    assert h in (env / "run" / "report.html").read_text(encoding="utf-8")
    rc, out, _ = _main(capsys, "policy", "init", env / "p.yaml")
    assert rc == 0
    rc, out, err = _main(capsys, "policy", "check", env / "p.yaml")
    assert rc == 0
    assert json.loads(out)["window_days"] == manifest["policy"]["window_days"]     # stdout stays pure JSON
    assert f"policy hash {h}" in err


# --- every command of docs/cli.md --------------------------------------------------------------------------

def _app_commands() -> set[str]:
    group = typer.main.get_command(cli.app)
    names = set()
    for name, cmd in group.commands.items():
        subs = getattr(cmd, "commands", None)
        if subs:
            names |= {f"{name} {s}" for s in subs}
        else:
            names.add(name)
    return names


def test_docs_synopsis_lists_every_command():
    doc = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    synopsis = doc.split("```text", 1)[1].split("```", 1)[0]
    lines = [line.strip() for line in synopsis.splitlines()]
    missing = [c for c in sorted(_app_commands())
               if not any(line == f"fdnet {c}" or line.startswith(f"fdnet {c} ") for line in lines)]
    assert not missing, f"docs/cli.md synopsis lacks {missing}"


def test_every_documented_command_runs_in_text_mode(env, capsys, tmp_path, monkeypatch):
    run, city = env / "run", env / "city"
    pid = read_csv_table(run / "custom_notifications.csv")["person_id"].iloc[0]
    shot = _shooting(city)
    steps = {
        "version": (["version"], r"^\d+\.\d+"),
        "synth": (["synth", "--out", tmp_path / "c2", "--people", "300", "--seed", "1"], r"wrote [\d,]+ incidents"),
        "demo": (["demo", "--out", tmp_path / "demo", "--people", "600", "--seed", "2"], r"call_in\.csv\t"),
        "run": (["run", city, "--out", tmp_path / "r2"], r"people in the network\t"),
        "explain": (["explain", run, pid], r"score components"),
        "verify": (["verify", run], r"call_in\.csv"),
        "policy init": (["policy", "init", tmp_path / "pol.yaml"], r"wrote "),
        "policy check": (["policy", "check", tmp_path / "pol.yaml"], r'"window_days"'),
        "calibrate": (["calibrate", city, "--out", tmp_path / "cal", "--origins", "2", "--target", "offending"], r"best single feature"),
        "backtest": (["backtest", city, "--out", tmp_path / "bt", "--origins", "1", "--target", "offending"], r"best single feature"),
        "notify": (["notify", run, "--incident", shot, "--data", city], r"ranked by tier"),
        "retention report": (["retention", "report", city], r"retention \d+ days"),
        "audit record-run": (["audit", "record-run", run], r"."),
        "review": (["review", run, pid, "--decision", "defer", "--reason", "text-mode test"], r"."),
        "audit log": (["audit", "log"], r"."),
        "audit verify": (["audit", "verify"], r"."),
        "audit reviews": (["audit", "reviews", run], r"."),
        "audit disseminations": (["audit", "disseminations"], r"no releases|dissemination log"),
        "audit migrate": (["audit", "migrate"], r"up to date|migrated"),
        "export": (["export", run, "--out", tmp_path / "exports"], r"."),
        "audit keygen": (["audit", "keygen", tmp_path / "sign.key"], r"."),
        "evaluate": (["evaluate", tmp_path / "cev", "--out", tmp_path / "ev"], r"^call_in_attended\tviolent\t365\t"),
        "users add": (["users", "add", "ana", "--role", "prosecutor"], r"added ana \(prosecutor\)"),
        "users list": (["users", "list"], r"^ana\tprosecutor\tactive"),
        "users disable": (["users", "disable", "ana"], r"disabled"),
        "users enable": (["users", "enable", "ana"], r"is now active"),
        "users password": (["users", "password", "ana"], r"."),
    }
    # `fdnet serve` runs until stopped: tests/workspace/test_serve_cli.py starts it as a process
    assert set(steps) >= _app_commands() - {"serve"}, \
        f"commands not exercised: {sorted(_app_commands() - set(steps) - {'serve'})}"
    import io
    # a city with a planted call-in, for `fdnet evaluate`
    assert cli.main(["synth", "--out", str(tmp_path / "cev"), "--people", "4000", "--seed", "3",
                     "--call-in-effect", "0.5"]) == 0
    for name, (argv, expect) in steps.items():
        if name in ("users add", "users password"):      # the password comes on standard input
            monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password for ana\n"))
        rc, out, err = _main(capsys, *argv)
        assert rc == 0, (name, err[-500:])
        assert re.search(expect, out, re.M), (name, out[:500])
        assert "Traceback" not in err and "internal error" not in err, name


def test_why_not_on_the_call_in_names_the_group_choice_not_a_score_cut_off(env):
    """The call-in is chosen by group, then by reach inside the group: a person scoring above the lowest
    invitee must be told why (their group was not invited, or its seats went to better-connected members)."""
    run = env / "run"
    groups = read_csv_table(run / "call_in_groups.csv")
    invited = set(read_csv_table(run / "call_in.csv")["person_id"])
    scores = read_csv_table(run / "scores.csv")
    eligible = scores[(scores["enforcement_eligible"] == "true") & (scores["group"] != "") &
                      ~scores["person_id"].isin(invited)]
    seen = set()
    for r in eligible.itertuples():
        why = explain_person(run, r.person_id)["lists"]["call_in"]["why_not"]
        if float(r.enforcement_score) < 20:          # the default call_in min_score
            continue
        assert "cut-off" not in why, why
        if r.group in set(groups["group"]):
            assert why.startswith(f"group {r.group} is invited, but its ") and "expected reach" in why
            seen.add("invited group")
        else:
            assert why.startswith(f"group {r.group} was not among the {len(groups)} groups invited")
            seen.add("other group")
    assert seen == {"invited group", "other group"}
