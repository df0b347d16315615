"""Retention: records older than the policy's limit take no part in a run.

Federal rules for criminal-intelligence systems (28 CFR 23.20(h)) limit
retention to five years unless the information is re-validated; the audits
of Chicago's gang database and CalGang found entries kept indefinitely. fdnet
applies the policy's ``retention_days`` (default 1826, five years) counted
back from the run's as-of date:

- incidents dated before the cut-off are purged with all their involvements;
- group-audit rows and group relations dated before it are purged (undated
  rows are kept: they cannot be aged, and the manifest says how many there are).

Purged rows are counted per table in the manifest (``rows.purged_retention``)
and are never used; ``fdnet retention report DATA`` lists them so the records
system can delete them at source.

>>> import pandas as pd
>>> from fdnet.records.validate import Records
>>> inc = pd.DataFrame({"incident_id": ["I1", "I2"], "day": [100, 3000], "line": [2, 3]})
>>> inv = pd.DataFrame({"incident_id": ["I1", "I2"], "person_id": ["A", "B"], "role": ["suspect", "victim"], "line": [2, 3]})
>>> rec = Records(incidents=inc, involvements=inv, persons=None, groups=None, group_relations=None,
...               as_of="1978-03-21", as_of_day=3000, inputs={"incidents": {"rows": {}}, "involvements": {"rows": {}}},
...               rejected=pd.DataFrame(), notes=[])
>>> rec = apply_retention(rec, 1826)
>>> rec.incidents["incident_id"].tolist(), rec.inputs["incidents"]["rows"]["purged_retention"]
(['I2'], 1)
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from .validate import Records, day_to_iso, load_records


def _days(dates) -> np.ndarray:
    """ISO dates (``YYYY-MM-DD``, possibly with a time; empty for none) -> days since 1970, NaT-safe.

    >>> _days(pd.Series(["2024-01-01", "", "0001-01-01T10:00"])).tolist()[:2]
    [19723, -9223372036854775808]
    """
    d = pd.Series(dates, dtype=object).fillna("").astype(str).str[:10].to_numpy(dtype=object)
    return np.asarray(d, dtype="datetime64[D]").astype(np.int64)


def _dated(df: pd.DataFrame | None, cutoff: int) -> np.ndarray:
    """Rows of a groups/relations/interventions table dated before ``cutoff`` (undated rows are kept)."""
    if df is None or "date" not in df or not len(df):
        return np.zeros(0 if df is None else len(df), bool)
    days = _days(df["date"])
    return (days != np.iinfo(np.int64).min) & (days < cutoff)


def purge_masks(rec: Records, retention_days: int) -> dict[str, np.ndarray]:
    """Boolean masks of the rows of each table that are past retention."""
    cutoff = rec.as_of_day - retention_days
    inc_old = rec.incidents["day"].to_numpy() < cutoff
    old_ids = set(rec.incidents["incident_id"].to_numpy()[inc_old].tolist())
    return {
        "incidents": inc_old,
        "involvements": rec.involvements["incident_id"].isin(old_ids).to_numpy(),
        "groups": _dated(rec.groups, cutoff),
        "group_relations": _dated(rec.group_relations, cutoff),
        # intervention records name people: kept no longer than the records they act on
        "interventions": _dated(rec.interventions, cutoff),
    }


def apply_retention(rec: Records, retention_days: int) -> Records:
    """The records without the rows past retention; counts go into ``rec.inputs``."""
    masks = purge_masks(rec, retention_days)
    changes = {}
    for name, m in masks.items():
        df = getattr(rec, name)
        if df is None:
            continue
        key = name
        if key not in rec.inputs and "long_export" in rec.inputs and name in ("incidents", "involvements"):
            key = "long_export"
        if key in rec.inputs and not (key == "long_export" and name == "incidents"):
            # the long export has one row per involvement: count those
            rec.inputs[key].setdefault("rows", {})["purged_retention"] = int(m.sum())
        if m.any():
            changes[name] = df[~m].reset_index(drop=True)
    notes = list(rec.notes)
    if any(m.any() for m in masks.values()):
        notes.append(f"retention: rows dated before {day_to_iso(rec.as_of_day - retention_days)} "
                     f"({retention_days} days before as_of) were purged: "
                     + ", ".join(f"{k} {int(m.sum())}" for k, m in masks.items() if m.any()))
    return dataclasses.replace(rec, notes=notes, **changes)


def retention_report(data_dir: str | Path, *, as_of: str | None = None, retention_days: int = 1826,
                     mapping_path: str | Path | None = None) -> tuple[pd.DataFrame, str]:
    """Rows due for purge on ``as_of`` (default: today): table, line, key, date, days past the limit."""
    import datetime as _dt
    as_of = as_of or _dt.date.today().isoformat()
    rec = load_records(data_dir, as_of=as_of, mapping_path=mapping_path)
    masks = purge_masks(rec, retention_days)
    cutoff = rec.as_of_day - retention_days
    rows = []
    files = {k: Path(v["path"]).name for k, v in rec.inputs.items() if "path" in v}
    for name, key_cols in (("incidents", ["incident_id"]), ("involvements", ["incident_id", "person_id", "role"]),
                           ("groups", ["person_id", "group"]), ("group_relations", ["group_a", "group_b"]),
                           ("interventions", ["person_id", "kind"])):
        df = getattr(rec, name)
        if df is None:
            continue
        sub = df[masks[name]]
        if name == "incidents":
            dates = sub["day"].to_numpy()
        elif name == "involvements":
            dd = rec.incidents.set_index("incident_id")["day"]
            dates = dd.reindex(sub["incident_id"]).to_numpy()
        else:
            dates = _days(sub["date"])
        rows.append(pd.DataFrame({
            "table": name,
            "file": files.get(name, files.get("long_export", "")),
            "line": sub["line"].to_numpy() if "line" in sub else -1,
            "key": sub[key_cols[0]].astype(str).str.cat([sub[c].astype(str) for c in key_cols[1:]], sep=" / ")
                   .to_numpy(dtype=object) if key_cols[1:] else sub[key_cols[0]].astype(str).to_numpy(dtype=object),
            "date": [day_to_iso(int(d)) for d in dates],
            "days_past_limit": (cutoff - dates.astype(np.int64)).astype(np.int64),
        }))
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["table", "file", "line", "key", "date", "days_past_limit"])
    return out.sort_values(["table", "date", "key"], kind="stable").reset_index(drop=True), day_to_iso(cutoff)
