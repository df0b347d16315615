"""``fdnet explain RUN PERSON``: why a person is or is not on each list.

Reads only the run folder, through :func:`fdnet.open_run` (checked against its manifest, so an altered
folder is refused): explanations.jsonl for listed people, scores.csv and the manifest's policy for
everyone else.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .runfolder import LIST_NAMES, open_run

LISTS = LIST_NAMES
# The score each list ranks by (the `score` column of its CSV).
LIST_SCORE = {"call_in": "enforcement_score", "custom_notifications": "enforcement_score",
              "service_referrals": "service_score"}


def explain_person(run_dir: str | Path, person_id: str) -> dict:
    """Everything known about ``person_id`` in a run, as plain data."""
    rf = open_run(run_dir, action="explain")
    manifest = rf.manifest
    entity = None
    if rf.has("resolution.csv"):      # entity resolution was on: a record's ID names its entity
        person_id, entity = _entity_of(rf, person_id)
    policy = manifest["policy"]
    horizon = ((policy.get("calibration") or {}).get("horizon_days")) or 120
    out = {"person_id": person_id, "as_of": manifest["as_of"], "horizon_days": horizon, "lists": {},
           "explanation": rf.explanation(person_id), "scores": None}
    if entity is not None:
        out["entity"] = (out["explanation"] or {}).get("entity") or entity
        out["record_id"] = entity.get("record_id")
    scores = rf.table("scores")
    row = scores[scores["person_id"] == person_id]
    if len(row):
        out["scores"] = row.iloc[0].to_dict()
    for name in LISTS:
        lst = rf.table(name)
        hit = lst[lst["person_id"] == person_id]
        if len(hit):
            r = hit.iloc[0]
            entry = {"on_list": True, "rank": int(r["rank"]), "score": r["score"],
                     "score_name": LIST_SCORE[name], "reasons": r["reasons"]}
            for col in ("group_rank", "rank_in_group"):
                if col in r.index and r[col] != "":
                    entry[col] = int(float(r[col]))
            out["lists"][name] = entry
        else:
            groups = rf.table("call_in_groups") if name == "call_in" and rf.has("call_in_groups.csv") else None
            out["lists"][name] = {"on_list": False,
                                  "why_not": _why_not(name, out["scores"], lst, policy, call_in_groups=groups)}
    return out


def _entity_of(rf, person_id: str) -> tuple[str, dict | None]:
    """(the entity's ID, its records and the uncertain pairs awaiting review) for a record or entity ID."""
    res = rf.table("resolution")
    hit = res[res["person_id"] == person_id]
    if not len(hit):
        return person_id, None
    eid = hit["entity_id"].iloc[0]
    members = res[res["entity_id"] == eid]
    records = [{k: r[k] for k in ("person_id", "source", "joined_by", "linked_to", "match_probability")}
               for _, r in members.iterrows()]
    review = []
    if rf.has("resolution_review.csv"):
        rv = rf.table("resolution_review")
        ids = set(members["person_id"])
        mine = rv[rv["person_a"].isin(ids) | rv["person_b"].isin(ids)]
        review = [{k: r[k] for k in ("person_a", "person_b", "match_probability", "waterfall")}
                  for _, r in mine.iterrows()]
    return eid, {"entity_id": eid, "record_id": person_id, "records": records, "review": review}


def resolution_lines(info: dict) -> list[str]:
    """What ``fdnet explain`` says about the entity: its records, the links that joined them (with each
    link's match-weight waterfall for a listed entity), and uncertain pairs not merged."""
    e = info.get("entity")
    if not e:
        return []
    out = []
    if info.get("record_id") and info["record_id"] != e.get("entity_id"):
        out.append(f"{info['record_id']} is one record of entity {e['entity_id']} (entity resolution)")
    if e.get("links"):
        from .resolution.explain import entity_text
        out += entity_text(e)
    elif len(e.get("records", [])) > 1:
        out.append(f"Entity {e['entity_id']}: {len(e['records'])} records linked")
        for r in e["records"]:
            how = ("" if not r.get("joined_by") else f", joined to {r['linked_to']} by "
                   + ("a must-link decision" if r["joined_by"] == "must_link"
                      else f"a link of match probability {r['match_probability']}"))
            out.append(f"  {r['person_id']} ({r.get('source') or 'no source'}){how}")
    for r in e.get("review") or []:
        out.append(f"  not merged (awaiting clerical review): {r['person_a']} - {r['person_b']}, match probability "
                   f"{r['match_probability']}: {r['waterfall']}")
    return out


def _why_not(name: str, s: dict | None, lst: pd.DataFrame, policy: dict,
             call_in_groups: pd.DataFrame | None = None) -> str:
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
        if name == "call_in" and call_in_groups is not None:
            # the call-in is chosen by group, then by reach inside the group: a score cut-off would mislead
            chosen = call_in_groups[call_in_groups["group"] == s["group"]]
            if not len(chosen):
                return (f"group {s['group']} was not among the {len(call_in_groups)} groups invited (groups are "
                        f"chosen by recent shootings and conflicts, at most {rule['max_groups']}; "
                        "see call_in_groups.csv)")
            g = chosen.iloc[0]
            return (f"group {s['group']} is invited, but its {g['invited']} seats went to the members whose "
                    f"attendance spreads the message furthest (expected reach {g['expected_reach']} of "
                    f"{g['members']} members; invited: {g['invited_ids'].replace(';', ', ')})")
        return (f"enforcement score {score:g} is below the list's cut-off (list full at {rule['size']} people, "
                f"lowest listed score {last:g})" if last is not None else f"enforcement score {score:g}")
    score = float(s["service_score"])
    if s.get("deceased", "").lower() == "true":
        return "recorded as deceased"
    if score < rule["min_score"]:
        return (f"service score {score:g} is below the policy minimum {rule['min_score']:g} "
                "and no shooting victimization in the recent period")
    return f"service score {score:g} is below the list's cut-off (list full at {rule['size']} people)"


# --- plain-text rendering (``fdnet explain`` without --json) -----------------------------------------------

MAX_ITEMS = 6


def _fmt(v) -> str:
    """A number as a person reads it (no trailing .0), anything else as text.

    >>> _fmt(3.0), _fmt(2.5), _fmt("x"), _fmt(None)
    ('3', '2.5', 'x', '')
    """
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)):
        return f"{v:g}" if v == v else "unknown"
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    return f"{f:g}" if f == f else "unknown"


def probability_phrase(p, horizon_days) -> str:
    """The risk estimate, named as what it is: a probability over a horizon (never a score).

    >>> probability_phrase(0.116152, 120)
    'estimated probability of shooting or being shot within 120 days: 11.6%'
    """
    try:
        pct = f"{100 * float(p):.1f}%"
    except (TypeError, ValueError):
        pct = "unknown"
    return f"estimated probability of shooting or being shot within {horizon_days} days: {pct}"


def headline(info: dict) -> list[str]:
    """The lines under the person's name: group, the score each list ranks by, the probability."""
    s = info.get("scores")
    lines = [f"{info.get('person_id', '')} — run as of {info.get('as_of', '')}"]
    if s is None:
        lines.append("Not in the network: no involvement in any incident inside the window.")
        return lines
    lines.append(f"group: {s.get('group') or '(none)'}")
    lines.append(f"enforcement score {_fmt(s.get('enforcement_score'))} (what call_in and custom_notifications "
                 f"rank by; victimization never counts) · service score {_fmt(s.get('service_score'))} (what "
                 "service_referrals rank by)")
    lines.append(f"total of all points {_fmt(s.get('score'))} (for reference only: no list ranks by it)")
    if s.get("probability_shooting") not in (None, ""):
        lines.append(probability_phrase(s.get("probability_shooting"), info.get("horizon_days", 120))
                     + " (from the total of all points; see docs/lists.md)")
    return lines


def list_lines(info: dict) -> list[str]:
    """One line per list: ON with its rank and the score it ranks by, or why not."""
    lines = []
    for name, v in (info.get("lists") or {}).items():
        if v.get("on_list"):
            where = f"rank {v.get('rank')}"
            if v.get("group_rank") not in (None, ""):
                where += (f": group {_fmt(v.get('group_rank'))} in invitation order, {_fmt(v.get('rank_in_group'))}"
                          " in the group by enforcement score")
            score_name = LIST_SCORE.get(name, "score").replace("_", " ")
            lines.append(f"  ON {name} ({where}; {score_name} {_fmt(v.get('score'))}): {v.get('reasons', '')}")
        else:
            lines.append(f"  not on {name}: {v.get('why_not', '')}")
    return lines


def _counts_for(c: dict) -> str:
    used = c.get("counts_for") or []
    return ", ".join(str(x) for x in used) if used else "no list"


def _incident(x: dict) -> str:
    s = f"{x.get('incident_id', '?')} {x.get('date', '')}".strip()
    roles = x.get("roles")
    return s + (f" ({'/'.join(str(r) for r in roles)})" if roles else "")


def _path(p: dict) -> str:
    if p.get("sentence"):
        s = str(p["sentence"])
    else:
        s = " → ".join(str(x) for x in p.get("path", []))
    if p.get("weight") is not None:
        s += f" (weight {_fmt(p['weight'])})"
    return s


def _generic(key: str, value) -> list[str]:
    """Any evidence value as text: the fallback that lets a new evidence kind never break the output."""
    if isinstance(value, list):
        out = []
        for x in value:
            if isinstance(x, dict):
                out.append(", ".join(f"{k} {_generic_scalar(v)}" for k, v in x.items()))
            else:
                out.append(_generic_scalar(x))
        return [f"{key}: {x}" for x in out]
    if isinstance(value, dict):
        return [f"{key}: " + ", ".join(f"{k} {_generic_scalar(v)}" for k, v in value.items())]
    return [f"{key}: {_generic_scalar(value)}"]


def _generic_scalar(v) -> str:
    if isinstance(v, (list, tuple)):
        return ";".join(_generic_scalar(x) for x in v)
    if isinstance(v, dict):
        return json.dumps(v, ensure_ascii=False, sort_keys=True)
    return _fmt(v)


def _ev_incidents(v):
    return [_incident(x) for x in v]


def _ev_co_offenders(v):
    return [f"{x.get('person_id', '?')} via {', '.join(x.get('incident_ids', []))}" for x in v]


def _ev_core(v):
    return [f"co-offenders also in the core: {', '.join(v)}"] if v else []


def _ev_contributions(v):
    return [str(x.get("sentence") or _generic("", x)[0]) for x in v]


def _ev_model(v):
    return [f"contagion model fitted on this run: alpha {_fmt(v.get('alpha'))}, mean delay "
            f"{_fmt(v.get('mean_delay_days'))} days"]


def _ev_conflicts(v):
    return [f"conflict with {x.get('rival', '?')} ({x.get('source', '')}"
            + (f"; incidents {', '.join(x.get('incident_ids') or [])}" if x.get("incident_ids") else "")
            + (f"; last {x['last_date']}" if x.get("last_date") else "") + ")" for x in v]


EVIDENCE_RENDERERS = {
    "incidents": _ev_incidents,
    "co_offenders": _ev_co_offenders,
    "paths": lambda v: [_path(p) for p in v],
    "note": lambda v: [str(v)],
    "core_co_offenders": _ev_core,
    "contributions": _ev_contributions,
    "model": _ev_model,
    "background_per_1000_per_year": lambda v: [f"background hazard {_fmt(v)} per 1,000 per year"],
    "network_per_1000_per_year": lambda v: [f"from co-offenders shot {_fmt(v)} per 1,000 per year"],
    "group": lambda v: [f"group {v}"] if v else ["no group"],
    "conflicts": _ev_conflicts,
    "source": lambda v: [f"source: {v}"],
    "birth_date": lambda v: [f"birth date {v}"],
    "birth_year": lambda v: [f"birth year {_fmt(v)}"],
}


def evidence_items(ev) -> list[str]:
    """Every evidence entry of one component as lines of text, in a fixed order.

    Known kinds get a sentence; any other key (a new evidence kind) is shown
    generically, and a malformed known kind falls back to the generic form,
    so rendering never fails.

    >>> evidence_items({"note": "in a 4-core", "core_co_offenders": ["P1", "P2"]})
    ['in a 4-core', 'co-offenders also in the core: P1, P2']
    >>> evidence_items({"paths": [{"path": ["A", "B"]}], "brand_new_kind": [{"x": 1}]})
    ['A → B', 'brand_new_kind: x 1']
    >>> evidence_items({"incidents": "not a list"})
    ['incidents: not a list']
    """
    if not isinstance(ev, dict):
        return [] if ev in (None, "", [], {}) else _generic("evidence", ev)
    out: list[str] = []
    for key, value in ev.items():
        fn = EVIDENCE_RENDERERS.get(key)
        try:
            lines = fn(value) if fn is not None else _generic(key, value)
            if fn is not None and not isinstance(lines, list):
                raise TypeError
            out.extend(str(x).rstrip(".") for x in lines)
        except (AttributeError, KeyError, TypeError, ValueError):
            out.extend(_generic(key, value))
    return [x for x in out if x]


def component_rows(info: dict, max_items: int = MAX_ITEMS) -> list[list[str]]:
    """Rows of the components table: component, value, points, counts for, evidence."""
    e = info.get("explanation") or {}
    rows = []
    for c in e.get("components") or []:
        if not isinstance(c, dict):
            continue
        items = evidence_items(c.get("evidence"))
        shown = items[:max_items]
        if len(items) > max_items:
            shown.append(f"… {len(items) - max_items} more (--json)")
        rows.append([str(c.get("name", "")), _fmt(c.get("value")), _fmt(c.get("points")), _counts_for(c),
                     "; ".join(shown)])
    return rows
