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
spaces. Text cells that a spreadsheet would read as a formula get a leading
apostrophe (:func:`fdnet.export.text.neutralise_formula`). Both rules apply
the same way in both files, so identities still match.

>>> _cell("=1+1"), _cell("two\\nlines")
("'=1+1", 'two lines')
"""
from __future__ import annotations

import csv
import io
import re

import pandas as pd

from .runfolder import LIST_NAMES
from .text import neutralise_formula

ENTITY_ATTRS = ("group", "score", "enforcement_score", "service_score", "degree", "exposure_1", "exposure_2",
                "betweenness")
_ONE_LINE = re.compile(r"\r\n|[\r\n]")
LAYER_LABELS = {"co_offending": "co-offending", "victimization": "victimization"}


def _csv(rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8-sig")


def _cell(s: str) -> str:
    """A text cell for i2: one line (the importer never reads an item across lines), no formula start."""
    return neutralise_formula(_ONE_LINE.sub(" ", s))


def _plural(n: str, word: str) -> str:
    return f"{n} {word}" + ("" if n == "1" else "s")


def i2_files(tables: dict[str, pd.DataFrame]) -> dict[str, bytes]:
    """{"entities.csv": bytes, "links.csv": bytes}."""
    e = tables["edges"]
    e = e[e["layer"].isin(list(LAYER_LABELS))]
    ranks = {name: dict(zip(tables[name]["person_id"], tables[name]["rank"])) for name in LIST_NAMES}
    people = sorted(set(e["person_a"]) | set(e["person_b"]) | set().union(*(set(r) for r in ranks.values())))
    sc = tables["scores"].set_index("person_id")
    sc = sc[~sc.index.duplicated()]
    attrs = [a for a in ENTITY_ATTRS if a in sc.columns]
    sc = sc.reindex(people)[attrs].fillna("")
    n = _cell
    header = ["entity_type", "identity", "label", *attrs,
              *[c for name in LIST_NAMES for c in (f"on_{name}", f"{name}_rank")]]
    rows = [header]
    for pid, vals in zip(people, sc.itertuples(index=False)):
        row = ["Person", n(pid), n(pid), *[n(str(v)) for v in vals]]
        for name in LIST_NAMES:
            r = ranks[name].get(pid)
            row += ["yes" if r is not None else "no", r or ""]
        rows.append(row)
    links = [["from_identity", "to_identity", "link_type", "label", "weight", "incidents", "first_date",
              "last_date", "incident_ids"]]
    for a, b, layer, w, k, fd, ld, ids in zip(e["person_a"], e["person_b"], e["layer"], e["weight"], e["incidents"],
                                              e["first_date"], e["last_date"], e["incident_ids"]):
        links.append([n(a), n(b), layer, f"{LAYER_LABELS[layer]} ({_plural(k, 'incident')})", w, k, fd, ld, n(ids)])
    return {"entities.csv": _csv(rows), "links.csv": _csv(links)}
