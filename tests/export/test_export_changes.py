"""A pseudonymised export of a run made with --previous carries changes.csv with every person ID replaced."""
from __future__ import annotations

import pandas as pd

from fdnet.export.core import export_run
from fdnet.export.pseudonym import new_key
from fdnet.run import run
from fdnet.synth import generate_city, write_city


def test_pseudonymised_export_carries_changes(tmp_path):
    data = tmp_path / "data"
    write_city(generate_city(n_people=900, seed=3), data)
    run(data, as_of="2025-06-30").write(tmp_path / "r1")
    run(data, as_of="2025-12-31", previous_run=tmp_path / "r1").write(tmp_path / "r2")
    key = tmp_path / "k.key"
    new_key(key)
    export_run(tmp_path / "r2", tmp_path / "exp", formats=("csv",), key_path=key)
    real = pd.read_csv(tmp_path / "r2" / "changes.csv", dtype=str, keep_default_na=False)
    got = pd.read_csv(tmp_path / "exp" / "changes.csv", dtype=str, keep_default_na=False)
    assert len(real) == len(got) > 0
    assert not set(real["person_id"]) & set(got["person_id"])
    text = (tmp_path / "exp" / "changes.csv").read_text()
    assert not any(pid in text for pid in real["person_id"])
    assert sorted(real["change"]) == sorted(got["change"])
