"""`fdnet verify` against a forger who can edit the run folder (issue 9, item 5).

Every forgery of the issue must fail (exit 1) or, where the re-run is made impossible, at least
not pass (exit 3); the two anchors (a keyed signature, the audit log) turn those into exit 1.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from helpers import write_folder

from fdnet.cli import main


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """One small run (signed, recorded in an audit log) to copy for each forgery."""
    root = tmp_path_factory.mktemp("forgery")
    data = write_folder(root / "data")
    key = root / "keys" / "run.key"
    key.parent.mkdir()
    assert main(["audit", "keygen", str(key)]) == 0
    db = root / "audit.sqlite"
    run = root / "run"
    assert main(["run", str(data), "--out", str(run), "-q", "--sign-key", str(key), "--audit-db", str(db)]) == 0
    return {"root": root, "data": data, "run": run, "key": key, "db": db}


@pytest.fixture
def env(made, tmp_path, monkeypatch):
    """A fresh copy of the run folder per test (its manifest still names the module's data folder)."""
    import shutil
    monkeypatch.delenv("FDNET_AUDIT_DB", raising=False)
    run = tmp_path / "run"
    shutil.copytree(made["run"], run)
    return {**made, "run": run, "copy_of": made["run"]}


def manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


def rewrite(run: Path, m: dict) -> None:
    (run / "manifest.json").write_text(json.dumps(m, indent=2, ensure_ascii=False) + "\n")


def verify(run, *args, capsys=None) -> tuple[int, str]:
    rc = main(["verify", str(run), *map(str, args)])
    text = ""
    if capsys is not None:
        c = capsys.readouterr()
        text = c.out + c.err
    return rc, text


def relink(env):
    return manifest(env["run"])


def test_genuine_run_passes_with_both_anchors(made, capsys):
    rc, text = verify(made["run"], "--key", made["key"], "--audit-db", made["db"], capsys=capsys)
    assert rc == 0, text
    assert "signature valid" in text and "recorded in" in text and "re-run: identical" in text


def test_edited_list_with_hash_updated_and_input_hash_altered(env, capsys):
    """The issue's forgery: it used to exit 0 (the altered input hash skipped the re-run)."""
    run = env["run"]
    m = relink(env)
    p = run / "custom_notifications.csv"
    lines = p.read_text().splitlines()
    p.write_text("\n".join(lines[:1] + lines[2:]) + "\n")        # drop the first person
    m["outputs"]["custom_notifications.csv"] = {"sha256": sha(p.read_bytes()), "bytes": len(p.read_bytes())}
    m["summary"]["lists"]["custom_notifications"] -= 1
    m["inputs"]["involvements"]["sha256"] = "0" * 64                # so the re-run is skipped
    rewrite(run, m)
    rc, text = verify(run, capsys=capsys)
    assert rc == 1, text
    # the report still shows the old list: re-rendering it catches the edit although the re-run is skipped
    assert "differs from the report rendered from this manifest" in text and "changed since the run" in text
    # either anchor makes it a plain failure
    assert verify(run, "--key", env["key"])[0] == 1
    rc, text = verify(run, "--key", env["key"], capsys=capsys)
    assert "not the manifest that was signed" in text
    rc, text = verify(run, "--audit-db", env["db"], capsys=capsys)
    assert rc == 1 and "no run with this manifest" in text


def test_re_rendered_report_too_still_fails_exit_3_without_anchor_1_with(env, capsys):
    """A forger who re-renders report.html with fdnet: no internal check is left, the re-run is
    impossible (input hash altered): exit 3, never 0; the anchors make it exit 1."""
    from fdnet.report.html import render_report
    from fdnet.tables import csv_bytes, read_csv_table
    run = env["run"]
    m = relink(env)
    p = run / "call_in.csv"
    df = read_csv_table(p.read_bytes())
    df = df.iloc[1:].reset_index(drop=True)
    p.write_bytes(csv_bytes(df))
    m["summary"]["lists"]["call_in"] = len(df)
    m["inputs"]["incidents"]["sha256"] = "f" * 64
    files = {n: (run / n).read_bytes() for n in m["outputs"] if n != "report.html"}
    report = render_report(files, {k: v for k, v in m.items() if k != "outputs"}).encode()
    (run / "report.html").write_bytes(report)
    for n in m["outputs"]:
        b = (run / n).read_bytes()
        m["outputs"][n] = {"sha256": sha(b), "bytes": len(b)}
    rewrite(run, m)
    rc, text = verify(run, capsys=capsys)
    assert rc == 3, text
    assert "NOT re-run" in text and "changed since the run" in text
    assert verify(run, "--key", env["key"])[0] == 1
    assert verify(run, "--audit-db", env["db"])[0] == 1
    os.environ["FDNET_AUDIT_DB"] = str(env["db"])     # the environment variable names the log too
    try:
        assert verify(run)[0] == 1
    finally:
        del os.environ["FDNET_AUDIT_DB"]


@pytest.mark.parametrize("edit", [
    ("summary", "persons_in_network", 1),
    ("summary", "shootings_in_window", 99),
    ("notes", None, ["all inputs complete"]),
    ("disparity", None, {"flags": 0}),
    ("inputs", "rows_read", 999),
    ("inputs", "rows_rejected", 5),
    ("policy", "window_days", 30),
])
def test_edits_to_the_manifests_own_fields_fail(env, edit, capsys):
    run = env["run"]
    m = relink(env)
    top, key, value = edit
    if top == "inputs":
        m["inputs"]["incidents"]["rows"]["read" if key == "rows_read" else "rejected"] = value
    elif key is None:
        m[top] = value
    else:
        m[top][key] = value
    rewrite(run, m)
    rc, text = verify(run, capsys=capsys)
    assert rc == 1, text
    rc, text = verify(run, "--no-rerun", capsys=capsys)      # caught without the re-run too
    assert rc == 1, text


def test_an_edit_only_the_rerun_sees_is_named_by_field(env, capsys):
    """A field the report does not show (the contagion fit's iterations): the re-run names it."""
    run = env["run"]
    m = relink(env)
    m["window"]["days"] = m["window"]["days"]
    m["analytics"]["betweenness"]["sources"] = 12345
    rewrite(run, m)
    rc, text = verify(run, capsys=capsys)
    assert rc == 1
    assert "analytics.betweenness.sources" in text


def test_dotdot_names_are_never_read(env, tmp_path, capsys, monkeypatch):
    run = env["run"]
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret\n")
    m = relink(env)
    rel = os.path.relpath(secret, run)
    m["outputs"][rel] = {"sha256": sha(secret.read_bytes()), "bytes": 11}
    m["outputs"]["../../etc/passwd"] = {"sha256": "0" * 64, "bytes": 1}
    m["inputs"]["etc"] = {"path": "/etc/passwd", "sha256": "0" * 64}
    m["inputs"]["persons"]["path"] = str(env["data"] / ".." / ".." / "etc" / "shadow.csv")
    rewrite(run, m)
    opened = []
    real_open = open

    def spy(file, *a, **k):
        opened.append(str(file))
        return real_open(file, *a, **k)
    monkeypatch.setattr("builtins.open", spy)
    rc, text = verify(run, capsys=capsys)
    monkeypatch.undo()
    assert rc == 1
    assert "not a plain file name" in text and "not a known input table" in text
    assert "is not where fdnet reads a persons file from" in text
    assert not [p for p in opened if "secret" in p or "passwd" in p or "shadow" in p]
    assert "top secret" not in text


def test_symlink_fifo_removed_and_unlisted_files(env, capsys):
    run = env["run"]
    relink(env)
    (run / "edges.csv").unlink()
    os.symlink(env["data"] / "incidents.csv", run / "edges.csv")
    os.mkfifo(run / "notes.fifo")
    rc, text = verify(run, "--no-rerun", capsys=capsys)
    assert rc == 1
    assert "symbolic link" in text and "notes.fifo" in text and "absent from the manifest" in text
    # a file removed together with its manifest entry: every run writes it
    m = manifest(run)
    (run / "notes.fifo").unlink()
    (run / "edges.csv").unlink()
    (run / "edges.csv").write_bytes((env["copy_of"] / "edges.csv").read_bytes())
    (run / "disparity.csv").unlink()
    del m["outputs"]["disparity.csv"]
    rewrite(run, m)
    rc, text = verify(run, "--no-rerun", capsys=capsys)
    assert rc == 1 and "every run writes this file" in text


def test_signature_checks(env, tmp_path, capsys):
    run = env["run"]
    m = manifest(run)
    m["notes"] = m["notes"] + ["reviewed"]      # any change to the manifest breaks the signature
    rewrite(run, m)
    rc, text = verify(run, "--key", env["key"], capsys=capsys)
    assert rc == 1 and "not the manifest that was signed" in text
    other = tmp_path / "other.key"
    assert main(["audit", "keygen", str(other)]) == 0
    rc, text = verify(env["copy_of"], "--key", other, capsys=capsys)
    assert rc == 1 and "signed with another key" in text
    (run / "manifest.sig").unlink()
    rc, text = verify(run, "--key", env["key"], "--no-rerun", capsys=capsys)
    assert rc == 1 and "no manifest.sig" in text
    # without --key the signature is reported as not checked, and does not fail by itself
    rc, text = verify(env["copy_of"], "--no-rerun", capsys=capsys)
    assert rc == 0 and "NOT CHECKED" in text


def test_weak_or_misplaced_keys_are_refused(env, tmp_path, capsys):
    weak = tmp_path / "weak.key"
    weak.write_text("correct horse battery staple\n")
    out = tmp_path / "r"
    assert main(["run", str(env["data"]), "--out", str(out), "-q", "--sign-key", str(weak)]) == 2
    assert "not a strong key" in capsys.readouterr().err and not out.exists()
    assert main(["audit", "keygen", str(weak)]) == 2          # never overwrites a key
    assert "exists" in capsys.readouterr().err
    inside = tmp_path / "r2"
    inside.mkdir()
    k = inside / "k"
    k.write_text("ab" * 32)
    # (the folder must be empty to run in: a key inside it is refused either way)
    assert main(["run", str(env["data"]), "--out", str(inside), "-q", "--sign-key", str(k)]) == 2


def test_audit_log_anchor(env, tmp_path, capsys):
    run = env["copy_of"]
    # the genuine folder is recorded
    assert verify(run, "--audit-db", env["db"], "--no-rerun")[0] == 0
    # a log that never saw the run, or does not exist
    other = tmp_path / "other.sqlite"
    rc, text = verify(run, "--audit-db", other, "--no-rerun", capsys=capsys)
    assert rc == 1 and "no audit log" in text
    from fdnet.audit.log import AuditLog
    AuditLog(other).ensure()
    rc, text = verify(run, "--audit-db", other, "--no-rerun", capsys=capsys)
    assert rc == 1 and "no run with this manifest" in text
    # the recorded folder's manifest changed after recording: named as such
    copy = env["run"]
    log = AuditLog(other)
    log.record_run(copy)
    m = manifest(copy)
    m["notes"] = ["edited"]
    rewrite(copy, m)
    rc, text = verify(copy, "--audit-db", other, "--no-rerun", capsys=capsys)
    assert rc == 1 and "changed after the run was recorded" in text


def test_rerun_names_changed_inputs_and_a_genuine_copy_passes(env, capsys):
    rc, text = verify(env["run"], capsys=capsys)
    assert rc == 0, text                       # a copy of a genuine folder is still genuine
    rc, text = verify(env["run"], "--audit-db", env["db"], capsys=capsys)
    assert rc == 0 and "recorded this manifest for the folder" in text


def test_rerun_impossible_is_exit_3_and_json(tmp_path, capsys):
    import shutil
    data = write_folder(tmp_path / "data")
    run = tmp_path / "run"
    assert main(["run", str(data), "--out", str(run), "-q"]) == 0
    shutil.rmtree(data)
    rc, text = verify(run, capsys=capsys)
    assert rc == 3 and "missing" in text
    assert verify(run, "--no-rerun")[0] == 0
    capsys.readouterr()
    assert main(["verify", str(run), "--json"]) == 3
    rep = json.loads(capsys.readouterr().out)
    assert rep["exit_code"] == 3 and rep["rerun_made"] is False


def test_unreadable_manifest_fails(env, capsys):
    (env["run"] / "manifest.json").write_text("{not json")
    rc, text = verify(env["run"], capsys=capsys)
    assert rc == 1 and "not a valid fdnet manifest" in text
    (env["run"] / "manifest.json").unlink()
    rc, text = verify(env["run"], capsys=capsys)
    assert rc == 2 and "not an fdnet run folder" in text and "Traceback" not in text


def test_rerun_on_a_later_day_uses_the_runs_own_day(tmp_path, capsys):
    """A row dated after the day of the run is rejected as dated in the future; verify re-runs with the run's
    own day (manifest run_date), so the same row is rejected again even though that day has now passed."""
    from helpers import INCIDENTS, INVOLVEMENTS

    from fdnet.pipeline import run as run_pipeline
    data = write_folder(tmp_path / "data", incidents=INCIDENTS + "I99,2024-06-20,robbery,120,false,false,true,1\n",
                        involvements=INVOLVEMENTS + "I99,P2,offender\nI99,P3,offender\n")
    out = tmp_path / "run"
    res = run_pipeline(data, out, today="2024-06-10")
    m = manifest(out)
    assert m["run_date"] == "2024-06-10"
    assert m["inputs"]["incidents"]["rows"]["rejected"] >= 1
    assert "dated in the future" in (out / "rejected.csv").read_text()
    assert res.manifest["as_of"] <= "2024-06-10"
    rc, text = verify(out, capsys=capsys)     # today is long after 2024-06-20: the row would be in the window
    assert rc == 0, text
    assert "re-run: identical" in text
