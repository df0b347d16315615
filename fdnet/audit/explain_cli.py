"""``fdnet explain RUN PERSON``: why a person is or is not on each list.

Reads only the run folder: explanations.jsonl for listed people, scores.csv
and the manifest's policy for everyone else.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..tables import read_csv_table
from ..errors import UsageError

LISTS = ("call_in", "custom_notifications", "service_referrals")


def explain_person(run_dir: str | Path, person_id: str) -> dict:
    """Everything known about ``person_id`` in a run, as plain data."""
    run_dir = Path(run_dir)
    if not (run_dir / "manifest.json").is_file():
        raise UsageError(f"{run_dir} is not an fdnet run folder (no manifest.json)")
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    policy = manifest["policy"]
    out = {"person_id": person_id, "as_of": manifest["as_of"], "lists": {}, "explanation": None, "scores": None}
    with open(run_dir / "explanations.jsonl", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rec = json.loads(line)
                if rec["person_id"] == person_id:
                    out["explanation"] = rec
                    break
    scores = read_csv_table(run_dir / "scores.csv")
    row = scores[scores["person_id"] == person_id]
    if len(row):
        out["scores"] = row.iloc[0].to_dict()
    for name in LISTS:
        lst = read_csv_table(run_dir / f"{name}.csv")
        hit = lst[lst["person_id"] == person_id]
        if len(hit):
            r = hit.iloc[0]
            out["lists"][name] = {"on_list": True, "rank": int(r["rank"]), "score": r["score"],
                                  "reasons": r["reasons"]}
        else:
            out["lists"][name] = {"on_list": False, "why_not": _why_not(name, out["scores"], lst, policy)}
    return out


def _why_not(name: str, s: dict | None, lst: pd.DataFrame, policy: dict) -> str:
    if s is None:
        return ("not in the network: no involvement in an incident inside the window "
                "(or the person ID is not in the input)")
    rule = policy["lists"][name]
    last = lst["score"].astype(float).min() if len(lst) else None
    if name in ("call_in", "custom_notifications"):
        if s["enforcement_eligible"].lower() != "true":
            return f"excluded by a guardrail: {s['enforcement_exclusion']}"
        if name == "call_in" and not s["group"]:
            return "not a member of any group (audit or detected); call-ins invite group members"
        score = float(s["enforcement_score"])
        if score < rule["min_score"]:
            return f"enforcement score {score:g} is below the policy minimum {rule['min_score']:g}"
        return (f"enforcement score {score:g} is below the list's cut-off (list full at {rule['size']} people, "
                f"lowest listed score {last:g})" if last is not None else f"enforcement score {score:g}")
    score = float(s["service_score"])
    if s.get("deceased", "").lower() == "true":
        return "recorded as deceased"
    if score < rule["min_score"]:
        return (f"service score {score:g} is below the policy minimum {rule['min_score']:g} "
                "and no shooting victimization in the recent period")
    return f"service score {score:g} is below the list's cut-off (list full at {rule['size']} people)"
