"""Fixtures for the workspace tests: a folder of two runs of a small synthetic city (the second made with
``--previous``), in which the top custom-notification candidate and a service referral carry hostile
IDs, and an app over it with one user of each role (plus a second prosecutor and supervisor)."""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wshelpers import HOSTILE_CN, HOSTILE_SR, PASSWORD, ROLES  # noqa: E402


def _rename(folder, mapping: dict[str, str]) -> None:
    for name in ("involvements.csv", "persons.csv", "groups.csv"):
        p = folder / name
        if not p.exists():
            continue
        df = pd.read_csv(p, dtype=str, keep_default_na=False)
        df["person_id"] = df["person_id"].replace(mapping)
        df.to_csv(p, index=False)


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory):
    from fdnet.run import run
    from fdnet.synth import generate_city, write_city
    root = tmp_path_factory.mktemp("ws")
    data = root / "data"
    write_city(generate_city(n_people=1500, seed=7), data)
    probe = run(data, as_of="2025-12-31")
    cn = probe.lists["custom_notifications"]["person_id"].iloc[0]
    sr = next(p for p in probe.lists["service_referrals"]["person_id"] if p != cn)
    _rename(data, {cn: HOSTILE_CN, sr: HOSTILE_SR})
    runs = root / "runs"
    runs.mkdir()
    run(data, as_of="2025-06-30").write(runs / "r1")
    run(data, as_of="2025-12-31", previous_run=runs / "r1").write(runs / "r2")
    return runs


@pytest.fixture()
def ws(runs_dir, tmp_path):
    """(app, accounts) over the runs with a fresh audit database and a user of each role."""
    from fdnet.workspace.app import create_app
    app = create_app(runs_dir, str(tmp_path / "audit.sqlite"), today=lambda: "2026-01-15", sleep=lambda s: None)
    acc = app.state.ws.accounts
    for role in ROLES:
        acc.add(role + "1", role, PASSWORD, by="test")
    acc.add("supervisor2", "supervisor", PASSWORD, by="test")
    acc.add("prosecutor2", "prosecutor", PASSWORD, by="test")
    return app

