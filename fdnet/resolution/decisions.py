"""The clerical-review decisions, an input table kept in the data folder and applied on every run.

``resolution_decisions.csv`` (or ``.parquet``; the name is the policy's ``resolution.decisions_file``):
person_id_a, person_id_b, decision (``must_link`` or ``cannot_link``), and optionally reviewer, date,
reason. It is read like the other inputs (hashed and counted in the manifest), and a bad row is bad input
(exit 2 naming its line): a decision is a person's judgement, so it is applied exactly or not at all.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "resolution_decisions.csv").write_text(
...     "person_id_a,person_id_b,decision,reviewer,date,reason\\nQ1,P1,must_link,ana,2025-01-02,same DOB\\n")
>>> dec, entry = read_decisions(d, "resolution_decisions")
>>> dec[["person_id_a", "person_id_b", "decision"]].values.tolist(), entry["rows"]
([['P1', 'Q1', 'must_link']], {'read': 1, 'used': 1, 'rejected': 0})
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..records.schema import NULL_MARKERS, clip

DECISIONS = ("must_link", "cannot_link")
COLUMNS = ("person_id_a", "person_id_b", "decision", "reviewer", "date", "reason")


def find(data_dir: Path, name: str) -> Path | None:
    for ext in ("csv", "parquet"):
        for p in sorted(Path(data_dir).glob("*")):
            if p.name.lower() == f"{name.lower()}.{ext}":
                return p
    return None


def read_decisions(data_dir: str | Path, name: str) -> tuple[pd.DataFrame, dict | None]:
    """The decisions (person_id_a < person_id_b, decision, reviewer, date, reason, line), and the manifest
    entry; an empty table and None when there is no such file."""
    from ..records.read import read_table
    empty = pd.DataFrame({c: pd.Series([], dtype=object) for c in COLUMNS + ("line",)})
    path = find(Path(data_dir), name)
    if path is None:
        return empty, None
    t = read_table(path, name)
    if t.bad_rows:
        line, reason, _ = t.bad_rows[0]
        raise InputError(reason, file=path.name, line=line)
    missing = [c for c in COLUMNS[:3] if c not in t.df.columns]
    if missing:
        raise InputError(f"is missing required column {missing[0]} (decisions need person_id_a, person_id_b, "
                         "decision)", file=path.name, line=1, column=missing[0])
    df = pd.DataFrame({c: (t.df[c].astype(object).fillna("").astype(str).str.strip().to_numpy(dtype=object)
                           if c in t.df.columns else np.full(len(t.df), "", dtype=object)) for c in COLUMNS})
    df["decision"] = df["decision"].str.lower().to_numpy(dtype=object)
    lines = np.asarray(t.lines, dtype=np.int64)
    for c in ("person_id_a", "person_id_b"):
        bad = (df[c] == "") | df[c].str.lower().isin(NULL_MARKERS)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"{c} is empty", file=path.name, line=int(lines[i]), column=c)
    bad = ~df["decision"].isin(DECISIONS)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"decision {clip(t.df['decision'].iloc[i])} is not must_link or cannot_link",
                         file=path.name, line=int(lines[i]), column="decision")
    same = (df["person_id_a"] == df["person_id_b"]).to_numpy()
    if same.any():
        i = int(np.flatnonzero(same)[0])
        raise InputError("person_id_a and person_id_b are the same record", file=path.name,
                         line=int(lines[i]), column="person_id_b")
    a, b = df["person_id_a"].to_numpy(dtype=object), df["person_id_b"].to_numpy(dtype=object)
    df["person_id_a"], df["person_id_b"] = np.where(a < b, a, b), np.where(a < b, b, a)
    df["line"] = lines
    both = df.groupby(["person_id_a", "person_id_b"], sort=True)["decision"].nunique()
    if (both > 1).any():
        pa_, pb_ = both[both > 1].index[0]
        ln = df.loc[(df["person_id_a"] == pa_) & (df["person_id_b"] == pb_), "line"].tolist()
        raise InputError(f"{clip(pa_)} and {clip(pb_)} are given both must_link and cannot_link (lines "
                         f"{', '.join(map(str, ln))}); keep one", file=path.name, line=int(ln[-1]))
    # a pair decided twice the same way: the first line kept (all are counted as used)
    df = df.sort_values(["person_id_a", "person_id_b", "line"], kind="stable") \
        .drop_duplicates(["person_id_a", "person_id_b"]).reset_index(drop=True)
    entry = {"path": str(path.resolve()), "sha256": t.sha256,
             "rows": {"read": int(t.n_read), "used": int(t.n_read), "rejected": 0}}
    return df, entry
