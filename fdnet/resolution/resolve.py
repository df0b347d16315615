"""Entity resolution as one stage of a run: records in, records naming entities out, with the evidence.

:func:`resolve` links the persons table's records (:mod:`~fdnet.resolution.model`), applies the
decisions (:mod:`~fdnet.resolution.decisions`), makes the entities (:mod:`~fdnet.resolution.cluster`)
and maps every table's person_id to its entity_id (:func:`apply`), before the networks are built. It
returns the new :class:`~fdnet.records.validate.Records` and a :class:`Resolved` holding resolution.csv,
resolution_review.csv, the manifest's ``resolution`` entry and each entity's records and links for the
explanations.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..policy import RESOLUTION_COLUMNS
from .cluster import entities
from .decisions import read_decisions
from .model import Linkage, link
from .prepare import comparable

#: resolution.csv's columns (CONTRACT.md section 5: person_id, source, entity_id, then the match evidence)
RESOLUTION_COLUMNS_OUT = ("person_id", "source", "entity_id", "entity_records", "joined_by", "linked_to",
                          "match_probability", "match_weight", "cut_by_decision")
SHOWN = ("source",) + RESOLUTION_COLUMNS


@dataclass
class Resolved:
    """What entity resolution found (see the module docstring)."""

    table: pd.DataFrame             # resolution.csv
    review: pd.DataFrame            # resolution_review.csv
    joins: pd.DataFrame             # the links and decisions that made the entities
    linkage: Linkage
    persons: pd.DataFrame           # the input persons rows (identifying columns), by person_id
    summary: dict
    notes: list[str] = field(default_factory=list)

    def members(self, entity_id: str) -> pd.DataFrame:
        """resolution.csv's rows of one entity."""
        t = self.table
        return t[t["entity_id"].to_numpy(dtype=object) == entity_id]

    def explain(self, entity_id: str) -> dict | None:
        """The entity's records and the links that joined them, each with its match-weight waterfall; None
        for an entity of one record."""
        m = self.members(entity_id)
        if len(m) < 2:
            return None
        ids = m["person_id"].tolist()
        recs = self.persons.reindex(ids)
        records = [{"person_id": pid, **{c: _cell(recs.at[pid, c]) for c in SHOWN if c in recs.columns}}
                   for pid in ids]
        j = self.joins
        j = j[j["person_a"].isin(ids).to_numpy() & j["person_b"].isin(ids).to_numpy()]
        pairs = self.linkage.pairs
        idx = pd.MultiIndex.from_frame(pairs[["person_a", "person_b"]]) if len(pairs) else None
        links = []
        for r in j.itertuples(index=False):       # an entity's few links
            item = {"person_a": r.person_a, "person_b": r.person_b, "joined_by": r.joined_by,
                    "match_probability": None if np.isnan(r.match_probability) else float(r.match_probability),
                    "match_weight": None if not np.isfinite(r.match_weight) else float(r.match_weight)}
            if idx is not None and (r.person_a, r.person_b) in idx:
                row = pairs.iloc[[idx.get_loc((r.person_a, r.person_b))]]
                item["match_probability"] = float(row["match_probability"].iloc[0])
                item["match_weight"] = float(row["match_weight"].iloc[0])
                item["waterfall"] = self.linkage.waterfall(row)[0]
            links.append(item)
        return {"entity_id": entity_id, "records": records, "links": links}


def _cell(v):
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return ""
    return str(v)


def _ids(rec) -> np.ndarray:
    parts = [rec.involvements["person_id"].to_numpy(dtype=object)]
    for t in (rec.persons, rec.groups, rec.interventions):
        if t is not None and len(t):
            parts.append(t["person_id"].to_numpy(dtype=object))
    return np.unique(np.concatenate(parts).astype(str).astype(object)) if parts else np.zeros(0, object)


def waterfall_text(linkage: Linkage, rows: pd.DataFrame) -> pd.Series:
    """Each row's waterfall as one line of text (``prior -14.2; first_name exact +3.1; ...``), vectorised per
    comparison."""
    n = len(rows)
    out = pd.Series([f"prior {linkage.prior_weight:+.2f}"] * n, index=rows.index, dtype=object)
    for c in linkage.comparisons:
        w = rows[f"mw_{c}"].to_numpy(dtype=np.float64)
        tf = rows[f"tf_{c}"].to_numpy(dtype=np.float64)
        labs = linkage.level_labels(c, rows[f"gamma_{c}"].to_numpy())
        tot = pd.Series(w + tf, index=rows.index).map("{:+.2f}".format)
        tft = np.where(tf != 0, pd.Series(tf, index=rows.index).map(" (term frequency {:+.2f})".format), "")
        out = out + "; " + c + " " + pd.Series(labs, index=rows.index) + " " + tot + tft
    return out


def resolve(rec, policy, data_dir: str | Path, *, spark=None):
    """Link ``rec``'s person records into entities and return (records naming entities, :class:`Resolved`)."""
    cfg = policy.resolution
    if rec.persons is None or not len(rec.persons):
        raise InputError("entity resolution (resolution.enabled) needs a persons table with the identifying "
                         "columns first_name, last_name and birth_date or sex", file=str(data_dir))
    persons = rec.persons
    notes: list[str] = []
    ids = _ids(rec)
    tab = comparable(persons)
    linkage = link(tab, cfg, spark=spark)
    notes += linkage.notes
    dec, entry = read_decisions(data_dir, cfg.decisions_file)
    known = np.isin(dec["person_id_a"].to_numpy(dtype=object), ids) & np.isin(dec["person_id_b"].to_numpy(dtype=object), ids)
    if (~known).any():
        notes.append(f"resolution: {int((~known).sum())} decision(s) in {cfg.decisions_file} name a person_id not in "
                     "this run's records (purged by retention, or mistyped); not applied: first on line "
                     f"{int(dec['line'].to_numpy()[~known][0])}")
    dec = dec[known].reset_index(drop=True)
    must = dec[dec["decision"] == "must_link"]
    cannot = dec[dec["decision"] == "cannot_link"]
    src = persons.set_index("person_id")["source"] if "source" in persons else pd.Series(dtype=object)
    sources = src.reindex(ids).fillna("").astype(str).to_numpy(dtype=object)
    ent = entities(ids, linkage.pairs, high=cfg.high, must=must, cannot=cannot, sources=sources,
                   preferred=list(cfg.preferred_sources) if cfg.entity_id == "preferred_source" else None)
    joins = ent.attrs["joins"]
    size = ent.groupby("entity", sort=False)["person_id"].transform("size").to_numpy(dtype=np.int64)
    table = pd.DataFrame({
        "person_id": ent["person_id"], "source": sources, "entity_id": ent["entity"],
        "entity_records": size, "joined_by": ent["joined_by"], "linked_to": ent["linked_to"],
        "match_probability": ent["match_probability"], "match_weight": ent["match_weight"],
        "cut_by_decision": ent["cut"]})
    emap = pd.Series(table["entity_id"].to_numpy(dtype=object), index=table["person_id"].to_numpy(dtype=object))

    # clerical review: review-band links between two different entities no decision has settled
    p = linkage.pairs
    band = (p["match_probability"].to_numpy() >= cfg.review) & (p["match_probability"].to_numpy() < cfg.high)
    rv = p[band]
    ea = emap.reindex(rv["person_a"]).to_numpy(dtype=object)
    eb = emap.reindex(rv["person_b"]).to_numpy(dtype=object)
    decided = pd.MultiIndex.from_frame(dec[["person_id_a", "person_id_b"]]) if len(dec) else None
    settled = (pd.MultiIndex.from_frame(rv[["person_a", "person_b"]]).isin(decided) if decided is not None
               and len(rv) else np.zeros(len(rv), bool))
    rv = rv[(ea != eb) & ~settled]
    review = _review_table(rv, linkage, persons, emap)

    new = apply(rec, emap)
    merged = int((size > 1).sum())
    summary = {
        "backend": cfg.backend, "high": cfg.high, "review": cfg.review, "entity_id": cfg.entity_id,
        "records": int(len(ids)), "records_in_persons": int(len(persons)), "entities": int(ent["entity"].nunique()),
        "records_merged": merged, "links_scored": int(len(p)), "links_at_or_above_high": int(
            (p["match_probability"].to_numpy() >= cfg.high).sum()),
        "links_in_review_band": int(band.sum()), "review_pairs": int(len(review)),
        "decisions": {"must_link": int(len(must)), "cannot_link": int(len(cannot)), "not_applied": int((~known).sum())},
        "links_cut_by_decisions": int(sum(1 for x in ent["cut"] if x) // 2 if len(ent) else 0),
        "comparisons": list(linkage.comparisons), "model": linkage.model,
    }
    if merged:
        notes.append(f"resolution: {merged:,} person records were merged into "
                     f"{int(ent.loc[size > 1, 'entity'].nunique()):,} entities (resolution.csv); "
                     f"{len(review):,} uncertain pairs await clerical review (resolution_review.csv)")
    if entry is not None:
        new = dataclasses.replace(new, inputs={**new.inputs, cfg.decisions_file: entry})
    new = dataclasses.replace(new, notes=list(new.notes) + notes)
    ident = persons.set_index("person_id")[[c for c in SHOWN if c in persons.columns]]
    return new, Resolved(table, review, joins, linkage, ident, summary, notes)


def _review_table(rv: pd.DataFrame, linkage: Linkage, persons: pd.DataFrame, emap: pd.Series) -> pd.DataFrame:
    """resolution_review.csv: one row per uncertain pair, both records' identifying fields and the waterfall;
    the likeliest first."""
    ident = persons.set_index("person_id")
    cols = [c for c in SHOWN if c in ident.columns]
    out = pd.DataFrame({"person_a": rv["person_a"].to_numpy(dtype=object),
                        "person_b": rv["person_b"].to_numpy(dtype=object),
                        "match_probability": rv["match_probability"].to_numpy(),
                        "match_weight": rv["match_weight"].to_numpy(),
                        "entity_a": emap.reindex(rv["person_a"]).to_numpy(dtype=object),
                        "entity_b": emap.reindex(rv["person_b"]).to_numpy(dtype=object)})
    for side, key in (("a", "person_a"), ("b", "person_b")):
        sub = ident.reindex(out[key])
        for c in cols:
            out[f"{c}_{side}"] = sub[c].astype(object).where(sub[c].notna(), "").astype(str).to_numpy(dtype=object)
    out["waterfall"] = waterfall_text(linkage, rv.reset_index(drop=True)).to_numpy(dtype=object) if len(rv) \
        else pd.Series([], dtype=object)
    out["decision"] = ""       # for the reviewer: must_link or cannot_link, copied into the decisions table
    return out.sort_values(["match_probability", "person_a", "person_b"], ascending=[False, True, True],
                           kind="stable").reset_index(drop=True)


def apply(rec, emap: pd.Series):
    """``rec`` with every table's person_id replaced by its entity_id (CONTRACT.md section 5).

    Involvements of two records of one entity in one incident with one role become one; the persons rows
    of an entity become one row: its entity record's values first, a value missing there taken from the
    entity's other records in person_id order, and deceased / incarcerated true when any record says so."""
    def remap(s: pd.Series) -> np.ndarray:
        v = s.to_numpy(dtype=object)
        return emap.reindex(v).fillna(pd.Series(v)).to_numpy(dtype=object) if len(v) else v

    inv = rec.involvements.copy()
    inv["person_id"] = remap(inv["person_id"])
    inv = inv.sort_values(["incident_id", "person_id", "role"], kind="stable") \
        .drop_duplicates(["incident_id", "person_id", "role"]).reset_index(drop=True)
    persons = rec.persons.copy()
    ent = remap(persons["person_id"])
    own = (ent == persons["person_id"].to_numpy(dtype=object))
    persons["_entity"] = ent
    persons["_own"] = ~own
    persons = persons.sort_values(["_entity", "_own", "person_id"], kind="stable")
    flags = [c for c in ("deceased", "incarcerated") if c in persons.columns]
    rest = [c for c in persons.columns if c not in flags + ["person_id", "_entity", "_own"]]
    text = persons[rest].copy()
    for c in rest:
        if text[c].dtype == object or pd.api.types.is_string_dtype(text[c]):
            text[c] = text[c].astype(object).where(text[c].astype(object) != "", None)
    g = text.groupby(persons["_entity"].to_numpy(dtype=object), sort=True)
    merged = g.first()
    for c in rest:
        if persons[c].dtype == object or pd.api.types.is_string_dtype(persons[c]):
            merged[c] = merged[c].astype(object).where(merged[c].notna(), "")
        merged[c] = merged[c].astype(persons[c].dtype) if persons[c].dtype != object else merged[c]
    for c in flags:
        merged[c] = persons.groupby(persons["_entity"].to_numpy(dtype=object), sort=True)[c].max()
    merged.index.name = "person_id"
    merged = merged.reset_index()[[c for c in rec.persons.columns]]
    out = {"involvements": inv, "persons": merged.reset_index(drop=True)}
    for name, key in (("groups", ["person_id", "group"]), ("interventions", ["person_id", "kind", "date", "source"])):
        t = getattr(rec, name)
        if t is None:
            continue
        t = t.copy()
        t["person_id"] = remap(t["person_id"])
        k = [c for c in key if c in t.columns]
        out[name] = t.sort_values(k, kind="stable").drop_duplicates(k).reset_index(drop=True)
    return dataclasses.replace(rec, **out)
