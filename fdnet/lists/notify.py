"""``fdnet notify RUN --incident ID``: who is at risk after a new shooting.

After a shooting, GVI partnerships move fast: street outreach goes to the
victim's circle (who may retaliate), and custom notifications go to the
people most likely to be involved next. Retaliation runs along the networks
the run already holds, so the candidates are, for each victim and each
identified suspect of the shooting:

1. the people themselves (a victim may retaliate or be shot again; a suspect
   may be targeted);
2. their direct co-offenders (edges.csv, co-offending layer);
3. the members of their groups (groups.csv);
4. the members of groups in conflict with those groups (conflicts.csv).

Each candidate gets the closest relation found (tier 1 to 4 above) and is
ranked by tier, then by the run's total score (the total of all points, from which the run reads
its estimated probability of shooting or being shot, ``probability_shooting``), then by person ID. Every row
carries its evidence: the tie's incident IDs, the group-membership source,
or the conflict's evidence. The incident may be newer than the run (records
added since): it is looked up in the run's input folder.

Deceased people are left out; people recorded as incarcerated, victim-only
people and juveniles are kept (outreach still concerns them) with the
guardrail named in the ``guardrail`` column, and nobody is put on an
enforcement list by this command.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..runfolder import LIST_NAMES, open_run
from ..errors import UsageError
from ..records.validate import day_to_iso, iso_to_day, load_records

OFFENDING = ("offender", "suspect", "arrestee")
# `score` here is the run's total of all points (victimization included: the people at risk after a
# shooting are sought for outreach as much as for notification); `probability_shooting` is the run's
# estimated probability of shooting or being shot within the calibration horizon, read from that total.
RANKED_BY = "tier, then score (the total of all points, which probability_shooting is read from)"
COLUMNS = ["rank", "person_id", "side", "relation", "tier", "via", "evidence_incident_ids", "group", "score",
           "ranked_by", "probability_shooting", "guardrail", "on_lists", "evidence"]


def _read(rf, name: str) -> pd.DataFrame:
    df = rf.table(name)
    if df is None:
        raise UsageError(f"{rf.path} lacks {name}; is it an fdnet run folder?")
    return df


def retaliation_risk(run_dir: str | Path, incident_id: str, *, data_dir: str | Path | None = None,
                     mapping_path: str | Path | None = None) -> tuple[pd.DataFrame, dict]:
    """Candidates after shooting ``incident_id``, ranked; and facts about the incident."""
    rf = open_run(run_dir, action="notify from")   # checked against its manifest, read once
    manifest = rf.manifest
    data_dir = Path(data_dir or manifest.get("data_dir", ""))
    if not data_dir.is_dir():
        raise UsageError(f"the run's input folder {data_dir} is not there; pass --data DIR")
    rec = load_records(data_dir, as_of="9999-12-31", mapping_path=mapping_path)
    inc = rec.incidents[rec.incidents["incident_id"] == incident_id]
    if not len(inc):
        raise UsageError(f"incident {incident_id!r} is not in {data_dir} (or its rows were rejected)")
    retention = int(manifest.get("policy", {}).get("retention_days", 1826))
    cutoff = iso_to_day(manifest["as_of"]) - retention
    if int(inc["day"].iloc[0]) < cutoff:
        raise UsageError(f"incident {incident_id!r} ({day_to_iso(int(inc['day'].iloc[0]))}) is past the policy's "
                         f"retention ({retention} days before the run's as-of date {manifest['as_of']}): it was "
                         "purged from the run and may not be used")
    rows = rec.involvements[rec.involvements["incident_id"] == incident_id]
    victims = sorted(set(rows.loc[rows["role"] == "victim", "person_id"]))
    suspects = sorted(set(rows.loc[rows["role"].isin(OFFENDING), "person_id"]))
    gun = bool(inc["gun"].iloc[0]) if "gun" in inc else False
    facts = {"incident_id": incident_id, "date": day_to_iso(int(inc["day"].iloc[0])), "victims": victims,
             "suspects": suspects, "shooting": bool(gun and victims), "run_as_of": manifest["as_of"],
             "horizon_days": ((manifest.get("policy") or {}).get("calibration") or {}).get("horizon_days", 120)}
    if not victims and not suspects:
        raise UsageError(f"incident {incident_id!r} has no victim and no person in an offending role")

    scores = _read(rf, "scores.csv").set_index("person_id")
    edges = _read(rf, "edges.csv")
    edges = edges[edges["layer"] == "co_offending"]
    groups = _read(rf, "groups.csv")
    conflicts = _read(rf, "conflicts.csv")
    conflicts = conflicts[conflicts["relation"] == "conflict"]
    listed: dict[str, list[str]] = {}
    for name in LIST_NAMES:
        for pid in _read(rf, f"{name}.csv")["person_id"]:
            listed.setdefault(pid, []).append(name)
    member_of = groups.groupby("person_id")["group"].apply(lambda s: sorted(set(s))).to_dict()
    members = groups.groupby("group")["person_id"].apply(lambda s: sorted(set(s))).to_dict()
    source = {(r.person_id, r.group): r.source for r in groups.itertuples()}

    cand: dict[str, dict] = {}

    def add(pid, side, relation, tier, via, incs, evidence):
        old = cand.get(pid)
        key = (tier, side, via)
        if old is None or key < (old["tier"], old["side"], old["via"]):
            cand[pid] = {"person_id": pid, "side": side, "relation": relation, "tier": tier, "via": via,
                         "evidence_incident_ids": ";".join(incs), "evidence": evidence}

    sides = [(v, "victim side: may retaliate or be shot again", "victim") for v in victims] + \
            [(s, "suspect side: may be targeted in retaliation", "suspect") for s in suspects]
    for person, side, what in sides:
        add(person, side, f"the {what}", 1, person, [incident_id], f"{what} in incident {incident_id}")
        e = edges[(edges["person_a"] == person) | (edges["person_b"] == person)]
        for r in e.itertuples():
            other = r.person_b if r.person_a == person else r.person_a
            add(other, side, f"co-offender of the {what} {person}", 2, person, r.incident_ids.split(";"),
                f"co-offended with {person} in {r.incidents} incident(s) ({r.first_date}..{r.last_date})")
        for g in member_of.get(person, []):
            for m in members.get(g, []):
                add(m, side, f"member of the {what}'s group {g}", 3, person, [],
                    f"listed in group {g} ({source.get((m, g), '')}); {person} is in {g} "
                    f"({source.get((person, g), '')})")
            c = conflicts[(conflicts["group_a"] == g) | (conflicts["group_b"] == g)]
            for r in c.itertuples():
                rival = r.group_b if r.group_a == g else r.group_a
                for m in members.get(rival, []):
                    add(m, side if what == "suspect" else "rival of the victim's group: may be targeted or retaliate",
                        f"member of {rival}, in conflict with {g}", 4, person,
                        [x for x in r.incident_ids.split(";") if x],
                        f"{rival} and {g} are in conflict ({r.source}, last {r.last_date})")
    out = pd.DataFrame(list(cand.values()), columns=[c for c in COLUMNS if c not in
                                                     ("rank", "group", "score", "ranked_by",
                                                         "probability_shooting", "guardrail", "on_lists")])
    if out.empty:
        return pd.DataFrame(columns=COLUMNS), facts
    s = scores.reindex(out["person_id"])
    out["group"] = s["group"].fillna("").to_numpy()
    out["score"] = pd.to_numeric(s["score"], errors="coerce").fillna(0.0).to_numpy()
    out["ranked_by"] = RANKED_BY
    out["probability_shooting"] = pd.to_numeric(s.get("probability_shooting", pd.Series(index=s.index, dtype=float)),
                                                errors="coerce").fillna(0.0).to_numpy()
    dead = s.get("deceased", pd.Series("", index=s.index)).fillna("").eq("true").to_numpy()
    out = out[~dead]
    s = s[~dead]
    guard = s.get("enforcement_exclusion", pd.Series("", index=s.index)).fillna("").to_numpy(dtype=object)
    guard = [g if g else ("not in the run's network" if pd.isna(sc) else "")
             for g, sc in zip(guard, s["score"].to_numpy())]
    out["guardrail"] = guard
    juvenile = s.get("juvenile", pd.Series("", index=s.index)).fillna("").eq("true").to_numpy()
    out.loc[juvenile, "guardrail"] = [("JUVENILE; " + g).rstrip("; ") for g in out.loc[juvenile, "guardrail"]]
    out["on_lists"] = [";".join(listed.get(p, [])) for p in out["person_id"]]
    out = out.sort_values(["tier", "score", "person_id"], ascending=[True, False, True], kind="stable")
    out.insert(0, "rank", range(1, len(out) + 1))
    return out[COLUMNS].reset_index(drop=True), facts
