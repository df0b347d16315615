"""An entity's records and links in explanations.jsonl and ``fdnet explain``.

>>> import pandas as pd
>>> class R:                     # a stand-in Resolved: entity E has two records
...     def explain(self, pid):
...         return {"entity_id": pid, "records": [], "links": []} if pid == "E" else None
>>> ex = pd.DataFrame({"person_id": ["E", "F"], "json": ['{"person_id": "E"}', '{"person_id": "F"}']})
>>> with_entities(ex, R())["json"].tolist()
['{"person_id": "E", "entity": {"entity_id": "E", "records": [], "links": []}}', '{"person_id": "F"}']
"""
from __future__ import annotations

import json

import pandas as pd


def with_entities(expl: pd.DataFrame, resolved) -> pd.DataFrame:
    """explanations.jsonl's lines with an ``entity`` object added to each listed entity of several records:
    its records (source and identifying fields) and the links that joined them, each with its waterfall.
    The rest of each line is kept byte for byte."""
    if not len(expl):
        return expl
    lines = expl["json"].tolist()
    for i, pid in enumerate(expl["person_id"].tolist()):      # listed people: a few hundred
        e = resolved.explain(pid)
        if e is not None:
            body = lines[i].rstrip()
            lines[i] = body[:-1] + ', "entity": ' + json.dumps(e, ensure_ascii=False) + "}"
    out = expl.copy()
    out["json"] = lines
    return out


def entity_text(e: dict) -> list[str]:
    """The lines ``fdnet explain`` prints for an entity of several records."""
    out = [f"Entity {e['entity_id']}: {len(e['records'])} records linked"]
    for r in e["records"]:
        who = " ".join(x for x in (r.get("first_name", ""), r.get("middle_name", ""), r.get("last_name", "")) if x)
        out.append(f"  {r['person_id']} ({r.get('source') or 'no source'}): {who or '(no name)'}, "
                   f"born {r.get('birth_date') or 'unknown'}")
    for ln in e["links"]:
        p = ln.get("match_probability")
        head = (f"  link {ln['person_a']} - {ln['person_b']}: "
                + ("must-link decision" if ln["joined_by"] == "must_link" else f"match probability {p:.4f}")
                + (f", match weight {ln['match_weight']:+.2f}" if ln.get("match_weight") is not None else ""))
        out.append(head)
        for s in ln.get("waterfall", []):
            tf = f" (term frequency {s['term_frequency_adjustment']:+.2f})" if "term_frequency_adjustment" in s else ""
            out.append(f"      {s['comparison']:<12} {s['level']:<30} {s['match_weight']:+.2f}{tf}")
    return out
