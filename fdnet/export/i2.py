"""i2 Analyst's Notebook import files: entities.csv and links.csv.

Analyst's Notebook's Importer reads delimited text with a header row and
maps columns onto entity and link properties through an import
specification (docs/exports.md describes one to build once and save).

* ``entities.csv``: one row per person (everyone with a tie in either
  layer, plus everyone on a list): ``entity_type`` (``Person``),
  ``identity`` (the person ID: i2 merges rows with the same identity),
  ``label``, then attributes: group, score, enforcement_score,
  service_score, degree, exposure_1, exposure_2, betweenness, and per list
  ``on_<list>`` (yes/no) and ``<list>_rank``.
* ``links.csv``: one row per tie: ``from_identity``, ``to_identity``,
  ``link_type`` (the layer: ``co_offending`` or ``victimization``),
  ``label``, ``weight``, ``incidents``, ``first_date``, ``last_date``,
  ``incident_ids``. Ties are undirected (edges.csv orders the pair by ID,
  not by who harmed whom): import them without arrowheads.

Encoding: UTF-8 **with** a byte-order mark and CRLF line ends, the form
Windows programs recognise without being told: Excel (which analysts often
use to look at the files first) reads a BOM-less UTF-8 CSV in the local
code page and garbles accented names. If an importer shows a stray
``ï»¿`` before the first heading, set the file's encoding to UTF-8 in its
format step. Fields are quoted per RFC 4180 where needed.
The importer reads one item per line, so line breaks inside a value become
spaces. The files are written by fdnet's one CSV writer
(:func:`fdnet.tables.csv_bytes`): text cells that a spreadsheet would read
as a formula get a leading apostrophe, identically in both files, so
identities still match, while the numeric attributes (scores, ranks,
weights) stay numbers; :func:`fdnet.tables.read_csv_table` reads both
files back with the raw values.

>>> one_line(pd.Series(["two\\nlines", "a\\r\\nb"])).tolist()
['two lines', 'a b']
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..tables import csv_bytes
from .runfolder import LIST_NAMES, number_columns

ENTITY_ATTRS = ("group", "score", "enforcement_score", "service_score", "degree", "exposure_1", "exposure_2",
                "betweenness")
LAYER_LABELS = {"co_offending": "co-offending", "victimization": "victimization"}


def one_line(values: pd.Series) -> pd.Series:
    """Text cells on one line (the importer never reads an item across lines): breaks become spaces."""
    return values.astype(str).str.replace(r"\r\n|[\r\n]", " ", regex=True)


def _i2_csv(df: pd.DataFrame, numbers) -> bytes:
    """UTF-8 with BOM, CRLF, through the one spreadsheet-safe writer; text cells on one line."""
    df = df.copy()
    for c in df.columns:
        if c not in numbers:
            df[c] = one_line(df[c])
    return csv_bytes(df, numbers=numbers, eol="\r\n", bom=True)


def i2_files(tables: dict[str, pd.DataFrame]) -> dict[str, bytes]:
    """{"entities.csv": bytes, "links.csv": bytes}."""
    e = tables["edges"]
    e = e[e["layer"].isin(list(LAYER_LABELS))]
    lists = {name: tables[name].drop_duplicates("person_id") for name in LIST_NAMES}
    people = sorted(set(e["person_a"]) | set(e["person_b"])
                    | set().union(*(set(lst["person_id"]) for lst in lists.values())))
    scores = tables["scores"]
    sc = scores.drop_duplicates("person_id").set_index("person_id")
    attrs = [a for a in ENTITY_ATTRS if a in sc.columns]
    sc = sc.reindex(people)[attrs].fillna("").astype(object)
    ent = pd.DataFrame({"entity_type": "Person", "identity": people, "label": people}, dtype=object)
    for a in attrs:
        ent[a] = sc[a].to_numpy()
    numbers = {a for a in attrs if a in number_columns(scores)}
    for name in LIST_NAMES:
        rank = lists[name].set_index("person_id")["rank"].reindex(people)
        ent[f"on_{name}"] = np.where(rank.notna().to_numpy(), "yes", "no")
        ent[f"{name}_rank"] = rank.fillna("").astype(object).to_numpy()
        if "rank" in number_columns(tables[name]) or not len(tables[name]):
            numbers.add(f"{name}_rank")
    k = e["incidents"].astype(str)
    links = pd.DataFrame({
        "from_identity": e["person_a"].to_numpy(), "to_identity": e["person_b"].to_numpy(),
        "link_type": e["layer"].to_numpy(),
        "label": (e["layer"].map(LAYER_LABELS) + " (" + k + " incident" + np.where(k == "1", "", "s") + ")")
        .to_numpy(),
        **{c: e[c].to_numpy() for c in ("weight", "incidents", "first_date", "last_date", "incident_ids")},
    }, dtype=object)
    link_numbers = {c for c in ("weight", "incidents") if c in number_columns(tables["edges"])}
    return {"entities.csv": _i2_csv(ent, numbers), "links.csv": _i2_csv(links, link_numbers)}
