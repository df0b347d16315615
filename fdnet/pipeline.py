"""The main job: records -> graph -> scoring -> lists -> audit/report.

:func:`compute_run` is pure: it reads the input folder and returns every
output file's bytes and the manifest, writing nothing. :func:`write_run` is
the one place that touches the run folder, and does so all-or-nothing:
files are written to a hidden staging folder inside RUN_DIR and moved into
place only when all of them are written; on any failure RUN_DIR is left as
it was found (absent or empty).
"""
from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from . import __version__
from .atomic import write_staged
from .errors import UsageError
from .api import study
from .graph.layers import FLAG_VICTIM
from .lists.build import build_lists
from .records.validate import day_to_iso
from .scoring.explain import Explainer
from .scoring.policy import Policy
from .tables import csv_bytes, read_csv_table  # csv_bytes re-exported: the one CSV writer

LIST_FILES = ("call_in.csv", "custom_notifications.csv", "service_referrals.csv")
STEPS = ("read and validate", "build networks", "network analytics", "features and scores", "lists",
         "explanations", "report")


@dataclass
class RunResult:
    outputs: dict[str, bytes]
    manifest: dict
    summary: dict


def sha256_bytes(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _versions() -> dict:
    import igraph
    import pyarrow
    import scipy
    return {"python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__,
            "pyarrow": pyarrow.__version__, "scipy": scipy.__version__, "igraph": igraph.__version__}


def compute_run(data_dir: str | Path, *, as_of: str | None = None, policy: Policy | dict | None = None,
                mapping_path: str | Path | None = None,
                progress: Callable[[str], None] | None = None,
                previous_groups: pd.DataFrame | None = None) -> RunResult:
    """Run the whole pipeline in memory; see the module docstring.

    ``previous_groups`` (an earlier run's groups.csv) lets detected groups
    keep their names when their membership overlaps.
    """
    step = progress or (lambda name: None)
    st = study(data_dir, as_of=as_of, policy=policy, mapping_path=mapping_path,
               previous_groups=previous_groups, progress=step)
    rec, net, an, scores, policy = st.records, st.network, st.analytics, st.scores, st.policy
    co = net.layers["co_offending"]
    groups = an.groups

    step("lists")
    group_sizes = scores.loc[scores["group"] != "", "group"].value_counts()
    lists = build_lists(scores, policy, rec.as_of_day, group_sizes, co_offending=co, persons=rec.persons,
                        as_of=rec.as_of)
    call_in_groups = lists.pop("call_in_groups")

    step("explanations")
    listed: dict[str, list[str]] = {}
    for name in ("call_in", "custom_notifications", "service_referrals"):
        for pid in lists[name]["person_id"]:
            listed.setdefault(pid, []).append(name)
    explainer = Explainer(net, rec.involvements, scores, policy, sorted(listed), analytics=an,
                          persons=rec.persons, lists=lists)
    expl_lines = [json.dumps(explainer.explain(pid, listed[pid]), ensure_ascii=False, sort_keys=False)
                  for pid in sorted(listed)]

    edges = pd.concat([net.layers[n].edges_frame(net) for n in ("co_offending", "victimization")],
                      ignore_index=True)
    outputs: dict[str, bytes] = {
        "rejected.csv": csv_bytes(rec.rejected),
        "edges.csv": csv_bytes(edges),
        "groups.csv": csv_bytes(groups.table),
        "group_table.csv": csv_bytes(an.group_table),
        "conflicts.csv": csv_bytes(an.conflicts),
        "contagion_events.csv": csv_bytes(an.contagion_events),
        "scores.csv": csv_bytes(scores),
        "call_in.csv": csv_bytes(lists["call_in"]),
        "custom_notifications.csv": csv_bytes(lists["custom_notifications"]),
        "service_referrals.csv": csv_bytes(lists["service_referrals"]),
        "call_in_groups.csv": csv_bytes(call_in_groups),
        "explanations.jsonl": ("\n".join(expl_lines) + ("\n" if expl_lines else "")).encode("utf-8"),
    }
    shootings = net.shooting_incidents()
    summary = {
        "as_of": rec.as_of,
        "window_start": day_to_iso(net.window_start_day),
        "incidents_in_window": int(len(net.incident_ids)),
        "shootings_in_window": int(shootings.sum()),
        "shooting_victims_in_window": int(len(net.shooting_victims())),
        "persons_in_network": int(net.n_persons),
        "co_offending_edges": int(co.n_edges),
        "victimization_edges": int(net.layers["victimization"].n_edges),
        "groups_detected": groups.n_detected,
        "groups_named_from_previous_run": groups.renamed_from_previous,
        "conflicts": int((an.conflicts["relation"] == "conflict").sum()),
        "group_disagreements": int(len(groups.disagreements)),
        "enforcement_eligible": int(scores["enforcement_eligible"].sum()),
        "rows_rejected": int(len(rec.rejected)),
        "lists": {k: int(len(v)) for k, v in lists.items()},
    }
    from .audit.disparity import disparity_summary, disparity_table
    disparity = disparity_table(scores, lists, rec.persons, policy)
    outputs["disparity.csv"] = csv_bytes(disparity)
    summary["shootings_by_month"] = _shootings_by_month(net)
    summary["call_in_groups"] = int(len(call_in_groups))
    summary["call_in_expected_reach"] = round(float(call_in_groups["expected_reach"].sum()), 6) \
        if len(call_in_groups) else 0.0
    summary["disparity_flags"] = int((disparity["flag"].astype(str) != "").sum())
    inputs = dict(rec.inputs)
    if mapping_path or (Path(data_dir) / "mapping.yaml").exists():
        mp = Path(mapping_path) if mapping_path else Path(data_dir) / "mapping.yaml"
        inputs["mapping"] = {"path": str(mp.resolve()), "sha256": sha256_bytes(mp.read_bytes())}
    manifest = {
        "fdnet_version": __version__,
        "as_of": rec.as_of,
        "window": {"start": summary["window_start"], "end": rec.as_of, "days": policy.window_days},
        "data_dir": str(Path(data_dir).resolve()),
        "policy": policy.effective(),
        "inputs": inputs,
        "summary": summary,
        "analytics": {
            "betweenness": an.betweenness_info,
            "contagion": an.contagion.summary() if an.contagion is not None else None,
        },
        "disparity": disparity_summary(disparity),
        "notes": rec.notes,
        "environment": _versions(),
    }
    step("report")
    from .report.html import render_report
    outputs["report.html"] = render_report(dict(outputs), manifest).encode("utf-8")
    manifest["outputs"] = {name: {"sha256": sha256_bytes(b), "bytes": len(b)} for name, b in sorted(outputs.items())}
    return RunResult(outputs, manifest, summary)


def _shootings_by_month(net) -> list[dict]:
    """Shootings and shooting victims per calendar month of the window (for the report's chart)."""
    I = net.incidence
    sh = net.shooting_incidents()
    months = (np.datetime64("1970-01-01", "D") + net.inc_day.astype("timedelta64[D]")).astype("datetime64[M]")
    vic = ((I.flags & FLAG_VICTIM) != 0) & sh[I.inc]
    out = []
    if len(months) == 0:
        return out
    lo, hi = months.min(), months.max()
    m_sh = pd.Series(months[sh]).value_counts()
    m_v = pd.Series(months[I.inc[vic]]).value_counts()
    m = lo
    while m <= hi:
        out.append({"month": str(m), "shootings": int(m_sh.get(m, 0)), "victims": int(m_v.get(m, 0))})
        m = m + np.timedelta64(1, "M")
    return out


def manifest_bytes(manifest: dict) -> bytes:
    return (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def check_run_dir(out_dir: Path) -> None:
    if out_dir.exists():
        if not out_dir.is_dir():
            raise UsageError(f"--out {out_dir} exists and is not a folder; RUN_DIR must be new or empty")
        if any(out_dir.iterdir()):
            raise UsageError(f"--out {out_dir} is not empty; RUN_DIR must be new or empty "
                             "(fdnet never overwrites an earlier run)")


def write_run(result: RunResult, out_dir: str | Path) -> Path:
    """Write all outputs and the manifest into ``out_dir``, all or nothing."""
    files = dict(result.outputs)
    files["manifest.json"] = manifest_bytes(result.manifest)
    return write_files(files, out_dir)


def write_files(files: dict[str, bytes], out_dir: str | Path) -> Path:
    """Write ``files`` (name -> bytes) into the new or empty folder ``out_dir``, all or nothing.

    Names are plain file names: nothing is written outside ``out_dir``.
    """
    out_dir = Path(out_dir)
    check_run_dir(out_dir)
    return write_staged(files, out_dir)


def load_previous_groups(previous_run: str | Path | None) -> tuple[pd.DataFrame | None, dict | None]:
    """An earlier run's groups.csv (for stable group names) and its manifest entry."""
    if previous_run is None:
        return None, None
    p = Path(previous_run) / "groups.csv"
    if not p.is_file() or not (Path(previous_run) / "manifest.json").is_file():
        raise UsageError(f"--previous {previous_run} is not an fdnet run folder (needs manifest.json and groups.csv)")
    data = p.read_bytes()
    df = read_csv_table(data)
    if not {"person_id", "group"} <= set(df.columns):
        raise UsageError(f"{p} lacks person_id/group columns")
    return df, {"path": str(p.resolve()), "sha256": sha256_bytes(data)}


def run(data_dir: str | Path, out_dir: str | Path, *, as_of: str | None = None,
        policy: Policy | dict | None = None, mapping_path: str | Path | None = None,
        progress: Callable[[str], None] | None = None, previous_run: str | Path | None = None) -> RunResult:
    """Validate the run folder first, compute, then write (all or nothing)."""
    check_run_dir(Path(out_dir))
    prev, prev_entry = load_previous_groups(previous_run)
    result = compute_run(data_dir, as_of=as_of, policy=policy, mapping_path=mapping_path, progress=progress,
                         previous_groups=prev)
    if prev_entry:
        result.manifest["inputs"]["previous_groups"] = prev_entry
    write_run(result, out_dir)
    return result


def read_csv_text(b: bytes) -> pd.DataFrame:
    return read_csv_table(b)
