"""report.html: a self-contained, offline report of one run.

The report is a **pure function of the run folder**: :func:`render_report`
takes the bytes of the other output files (``scores.csv``, ``edges.csv``,
the three lists, ...) and the manifest, and nothing else, so what a reader
sees in the page can never disagree with the audited files beside it. Files
an older run did not write are skipped with a note; files this module does
not know are still listed, with their SHA-256, in the inventory at the end.

Safety rules the page keeps (tests/report/test_report.py checks each):

- Every string from the input (IDs, group names, reasons, rejected raw rows)
  goes through Jinja2's autoescaping, or :func:`markupsafe.escape` in the
  SVG charts.
- Data for the page's script is embedded as JSON in
  ``<script type="application/json">`` with ``<``, ``>`` and ``&`` written
  as ``\\u003c``-style escapes (:func:`script_json`), so an ID such as
  ``</script><img src=x>`` cannot end the script element; the script builds
  the page with ``textContent`` only, never ``innerHTML``.
- No external URL of any kind: vis-network (the JavaScript that pyvis ships)
  is inlined once, with the URLs in its licence comment and strings defused
  (:func:`vis_network_js`); there are no fonts, images, links or CDNs.
- Deterministic bytes: no clock, no random numbers, stable sorts; the
  network layouts run in the browser from a fixed seed.

>>> script_json({"id": "</script><!--x-->", "n": 1})
Markup('{"id":"\\\\u003c/script\\\\u003e\\\\u003c!--x--\\\\u003e","n":1}')
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
from collections.abc import Iterator, Mapping
from functools import lru_cache
from importlib import resources

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup, escape

from .. import __version__
from ..runfolder import LIST_FILES, LIST_NAMES, LIST_TITLES, RunFolder, policy_sha256
from ..tables import csv_bytes, read_csv_table
from . import charts, networks

_ENV = jinja2.Environment(
    loader=jinja2.FunctionLoader(
        lambda name: resources.files("fdnet.report").joinpath("templates", name).read_text("utf-8")),
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
)
LONG_TEXT = 60      # table cells longer than this get a minimum width on screen

LISTS = tuple((n, f, LIST_TITLES[n]) for n, f in zip(LIST_NAMES, LIST_FILES))
# Files the report reads; anything else in ``files`` is listed in the inventory only.
KNOWN_FILES = {"scores.csv", "edges.csv", "groups.csv", "group_table.csv", "conflicts.csv",
               "contagion_events.csv", "rejected.csv", "explanations.jsonl", "disparity.csv",
               "call_in_groups.csv", "changes.csv", *(f for _, f, _ in LISTS)}
REJECTED_SAMPLE = 25
GROUP_TABLE_ROWS = 40
CONFLICT_TABLE_ROWS = 40


def script_json(obj) -> Markup:
    """JSON that is safe inside a ``<script>`` element.

    Compact, key order as given, non-ASCII kept; ``<``, ``>``, ``&`` and the
    JavaScript line separators are escaped, so no value can close the script
    element or open an HTML comment.
    """
    return Markup("".join(script_json_pieces(obj)))


def script_json_pieces(obj) -> list[Markup]:
    """:func:`script_json` as the pieces that join to it: the JSON around each value already written as JSON
    (:class:`~fdnet.report.networks.TiesJSON`) and those values, each escaped on its own (the escapes are of
    single characters, so piece by piece gives the same text). The report writes the pieces one after the
    other: a page's largest value, its ego ties, is never copied into one string with the rest, which as
    soon as any character of the rest lies beyond Latin-1 is held at two or four bytes a character.

    >>> "".join(script_json_pieces({"a": "</x>"})) == script_json({"a": "</x>"})
    True
    """
    raw = _RawJSON()
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=raw.hold)
    return [Markup(_escape_script(p)) for p in raw.pieces(text)]


def _escape_script(s: str) -> str:
    return (s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


class _RawJSON:
    """Lets :func:`script_json` take values already written as JSON (:class:`~fdnet.report.networks.TiesJSON`):
    ``json.dumps`` writes a placeholder string for each, and the placeholder is replaced by the text after.
    A placeholder carries a fresh random token, so no input string can pose as one."""

    def __init__(self):
        self._held: dict[str, list[str]] = {}

    def hold(self, o):
        from .networks import TiesJSON
        if not isinstance(o, TiesJSON):
            raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")
        key = f"fdnet-raw-json-{secrets.token_hex(16)}"
        self._held[key] = o.pieces
        return key

    def pieces(self, s: str) -> list[str]:
        """``s`` cut at each placeholder, the held text's pieces in its place: pieces that join to the whole."""
        held, self._held = self._held, {}
        at = []
        for key, pieces in held.items():
            quoted = json.dumps(key)
            if s.count(quoted) != 1:     # pragma: no cover  (a 128-bit token cannot be guessed)
                raise ValueError("a raw JSON placeholder is not where it was put")
            i = s.index(quoted)
            at.append((i, i + len(quoted), pieces))
        out, pos = [], 0
        for i, j, pieces in sorted(at, key=lambda t: t[0]):
            out += [s[pos:i], *pieces]
            pos = j
        out.append(s[pos:])
        return out



@lru_cache(maxsize=1)
def vis_network_js() -> str | None:
    """vis-network's standalone build (vendored in ``fdnet/report/static`` with its licence), made safe to inline.

    The URLs in its licence header lose their scheme (the licence text stays),
    ``://`` inside its string literals is written ``:\\/\\/`` (the same
    string to JavaScript, but no URL in the page's bytes), and the source-map
    comment is dropped. Returns None when the file is missing.
    """
    try:
        js = resources.files("fdnet.report").joinpath("static", "vis-network.min.js").read_text("utf-8")
    except (FileNotFoundError, OSError):
        return None
    js = re.sub(r"\n?//# sourceMappingURL=\S*\s*$", "\n", js)
    head, sep, body = js.partition("*/")
    if not head.lstrip().startswith("/**") or not sep:
        head, sep, body = "", "", js
    head = re.sub(r"https?://", "", head)
    body = body.replace("http://", "http:\\/\\/").replace("https://", "https:\\/\\/")
    js = head + sep + body
    low = js.lower()
    if "</script" in low or "<!--" in low:
        raise RuntimeError("vis-network.min.js cannot be inlined safely (it contains </script or <!--)")
    return js


def policy_hash(policy: dict | None) -> str:
    """SHA-256 of the effective policy as canonical JSON (:func:`fdnet.runfolder.policy_sha256`).

    >>> policy_hash({"b": 1, "a": [1, 2]}) == hashlib.sha256(b'{"a":[1,2],"b":1}').hexdigest()
    True
    """
    return policy_sha256(policy)


def flatten(d, prefix: str = "") -> list[tuple[str, str]]:
    """Nested dict as ``(dotted.key, value)`` rows, in the dict's own order.

    >>> flatten({"a": {"b": 1, "c": [1, 2]}, "d": None})
    [('a.b', '1'), ('a.c', '1, 2'), ('d', '—')]
    """
    rows = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            rows += flatten(v, key + ".")
        elif isinstance(v, list):
            rows.append((key, ", ".join(str(x) for x in v)))
        else:
            rows.append((key, "—" if v is None else str(v)))
    return rows


def _num(s) -> float:
    """A CSV value as a finite float (0 when empty, not a number, NaN or infinite)."""
    try:
        v = float(s)
    except (TypeError, ValueError):
        return 0.0
    return v if math.isfinite(v) else 0.0


def breakable(value) -> Markup:
    """Escaped text with a line-break opportunity after each ``;`` and ``_`` (ID lists, column names).

    The text a reader copies is unchanged: ``<wbr>`` adds no character.

    >>> breakable("I1;I2<x>"), breakable("expected_reach")
    (Markup('I1;<wbr>I2&lt;x&gt;'), Markup('expected_<wbr>reach'))
    """
    text = str(value)
    if ";" not in text and "_" not in text:   # most cells: nothing to break
        return escape(text)
    return Markup(";<wbr>").join(Markup(str(escape(part)).replace("_", "_<wbr>"))
                                 for part in text.split(";"))


_ENV.filters["breakable"] = breakable


def _table(df: pd.DataFrame | None, limit: int | None = None, flag_col: str | None = None) -> dict | None:
    """A frame as ``{"columns", "rows", "total", "numeric", "flags"}`` for the generic table macro.

    With ``flag_col``, that column is taken out of the table and ``flags``
    holds its non-empty values (the rows to highlight) in row order.
    """
    if df is None:
        return None
    flags = None
    if flag_col and flag_col in df.columns:
        flags = [str(v).strip() for v in df[flag_col].tolist()]
        df = df.drop(columns=flag_col)
    d = df if limit is None else df.head(limit)
    numeric = []
    for c in df.columns:
        vals = [v for v in df[c].tolist() if v != ""]
        numeric.append(bool(vals) and all(_isnum(v) for v in vals[:200]))
    return {"columns": list(df.columns), "rows": d.to_numpy().tolist(), "total": int(len(df)),
            "numeric": numeric, "flags": flags[:len(d)] if flags is not None else None}


def _isnum(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return v.strip().lower() not in ("nan", "inf", "-inf", "infinity")


KPI_LABELS = (("persons_in_network", "people in the network"), ("incidents_in_window", "incidents in the window"),
              ("shootings_in_window", "shootings in the window"),
              ("shooting_victims_in_window", "shooting victims in the window (distinct people shot)"),
              ("co_offending_edges", "co-offending ties"), ("victimization_edges", "victimization ties"),
              ("groups_detected", "groups detected in the network"), ("conflicts", "group conflicts"),
              ("group_disagreements", "audit / network group disagreements"),
              ("enforcement_eligible", "people eligible for enforcement lists"),
              ("rows_rejected", "input rows rejected"))


def _rejected_reasons(rej: pd.DataFrame) -> list[dict]:
    if rej is None or not len(rej) or "reason" not in rej.columns:
        return []
    r = rej.assign(kind=rej["reason"].str.replace(r"'[^']*'", "'…'", regex=True),
                   file=rej["file"] if "file" in rej.columns else "")
    g = r.groupby(["file", "kind"]).size().reset_index(name="rows")
    g = g.sort_values(["file", "rows", "kind"], ascending=[True, False, True], kind="stable")
    return g.to_dict("records")


def _composition(lists: dict[str, pd.DataFrame]) -> list[tuple[str, list[tuple[str, int]]]]:
    bars = []
    for key, _, title in LISTS:
        df = lists.get(key)
        if df is None:
            continue
        for col, what in (("supervision", "supervision"), ("juvenile", "juvenile"),
                          ("referral_basis", "basis"), ("group", "group")):
            if col not in df.columns:
                continue
            vals = df[col].replace("", "(none)")
            vc = vals.value_counts()
            cats = sorted(vc.items(), key=lambda kv: (-kv[1], str(kv[0])))
            if col == "group" and len(cats) > 6:
                cats = cats[:6] + [(f"{len(cats) - 6} other groups", int(sum(c for _, c in cats[6:])))]
            bars.append((f"{title}: {what}", [(str(k), int(v)) for k, v in cats]))
    return bars


def _overlap(lists: dict[str, pd.DataFrame]) -> list[dict]:
    on: dict[str, list[str]] = {}
    for key, _, title in LISTS:
        df = lists.get(key)
        if df is not None and "person_id" in df.columns:
            for pid in df["person_id"]:
                on.setdefault(pid, []).append(title)
    combos: dict[str, int] = {}
    for names in on.values():
        k = " + ".join(names)
        combos[k] = combos.get(k, 0) + 1
    return [{"lists": k, "people": v} for k, v in sorted(combos.items(), key=lambda kv: (-kv[1], kv[0]))]


# One definition of a shooting victim everywhere in the report (KPIs, chart, tables): a distinct person
# shot (victim role) in a shooting (gun and at least one victim) of the period counted.
VICTIMS_LINE = "shooting victims (people shot)"
VICTIMS_DEFINITION = ("shooting victims are the distinct people shot in the month's shootings (a person shot in "
                      "two different months counts in each month, so the months can add up to more than the "
                      "window's distinct total).")


def _monthly(manifest: dict, contagion_events: pd.DataFrame | None) -> dict | None:
    by_month = (manifest.get("summary") or {}).get("shootings_by_month")
    if isinstance(by_month, list) and by_month:
        rows = [r for r in by_month if isinstance(r, dict)]
        total = (manifest.get("summary") or {}).get("shooting_victims_in_window")
        return {"svg": charts.monthly_svg(rows, bar_key="shootings", line_key="victims", bar_label="shootings",
                                          line_label=VICTIMS_LINE),
                "source": "manifest.json (summary.shootings_by_month): shootings are incidents with a gun "
                          f"and at least one victim; {VICTIMS_DEFINITION}"
                          + (f" The window's total is {total} distinct shooting victims." if total is not None else ""),
                "rows": rows}
    ev = contagion_events
    if ev is not None and len(ev) and {"date", "incident_id"} <= set(ev.columns):
        month = ev["date"].str[:7]
        g = pd.DataFrame({"month": month, "incident_id": ev["incident_id"]})
        g["person_id"] = ev["person_id"] if "person_id" in ev.columns else ev["incident_id"]
        agg = g.groupby("month").agg(shootings=("incident_id", "nunique"), victims=("person_id", "nunique"))
        rows = [{"month": m, "shootings": int(r.shootings), "victims": int(r.victims)}
                for m, r in agg.sort_index().iterrows()]
        return {"svg": charts.monthly_svg(rows, bar_key="shootings", line_key="victims", bar_label="shootings",
                                          line_label=VICTIMS_LINE),
                "source": "contagion_events.csv (this run's manifest has no summary.shootings_by_month): "
                          f"the shootings of people in the network that the contagion model used; {VICTIMS_DEFINITION}",
                "rows": rows}
    return None


def _score_charts(scores: pd.DataFrame | None, policy: dict) -> list[Markup]:
    if scores is None or not len(scores):
        return []
    lp = (policy or {}).get("lists") or {}

    def thr(name, label):
        v = (lp.get(name) or {}).get("min_score")
        return [(label, float(v))] if v is not None else []

    def vals(col):   # as _num reads each cell: 0 when empty, not a number or not finite
        x = scores[col].to_numpy(dtype=float)
        return np.where(np.isfinite(x), x, 0.0).tolist()

    out = []
    if "enforcement_score" in scores.columns:
        out.append(charts.histogram_svg(
            vals("enforcement_score"), title="enforcement score",
            thresholds=thr("call_in", "call-in minimum") + thr("custom_notifications", "notification minimum")))
    if "service_score" in scores.columns:
        out.append(charts.histogram_svg(vals("service_score"), title="service score",
                                        thresholds=thr("service_referrals", "referral minimum")))
    if not out and "score" in scores.columns:
        out.append(charts.histogram_svg(vals("score"), title="score"))
    return out


CHANGE_TABLE_COLUMNS = ("list", "change", "person_id", "previous_rank", "rank", "previous_score", "score", "group",
                        "reason")


def _changes(changes: pd.DataFrame | None, manifest: dict) -> dict | None:
    """The "Changes since the previous run" section: counts per list, and who entered or left, with why
    (changes.csv, written by a run made with ``--previous``). None when the run has no changes.csv."""
    if changes is None or not {"list", "change", "person_id"} <= set(changes.columns):
        return None
    prev = manifest.get("previous") if isinstance(manifest.get("previous"), dict) else {}
    run_dir = str(prev.get("run_dir") or "")
    from pathlib import Path
    name = Path(run_dir).name if run_dir else ""
    counts = []
    for key, _, title in LISTS:
        sub = changes["change"][changes["list"] == key]
        counts.append({"title": title, **{c: int((sub == c).sum()) for c in ("entered", "left", "stayed")}})
    moved = changes[changes["change"].isin(["entered", "left"])]
    moved = moved[[c for c in CHANGE_TABLE_COLUMNS if c in moved.columns]]
    return {"name": name, "run_dir": run_dir, "as_of": str(prev.get("as_of") or ""), "counts": counts,
            "table": _table(moved.reset_index(drop=True)), "total": int(len(changes))}


def _inventory(stats: dict[str, dict]) -> list[dict]:
    return [{"name": name, "bytes": st["bytes"], "rows": st["rows"], "sha256": st["sha256"],
             "known": name in KNOWN_FILES} for name, st in sorted(stats.items())]


def _demographic_enforcement(manifest: dict) -> list[dict]:
    """The manifest's disparity.demographic_enforcement entries (component, counts_for, max_points,
    justification), tolerant of old or damaged manifests."""
    rows = ((manifest.get("disparity") or {}) if isinstance(manifest.get("disparity"), dict) else {}) \
        .get("demographic_enforcement") or []
    out = []
    for r in rows if isinstance(rows, list) else []:
        if isinstance(r, dict):
            cf = r.get("counts_for")
            out.append({"component": str(r.get("component", "")),
                        "counts_for": ", ".join(map(str, cf)) if isinstance(cf, list) else str(cf or ""),
                        "max_points": r.get("max_points", ""), "justification": str(r.get("justification", ""))})
    return out


class FolderSource:
    """What the report is made from, read from a run folder (:class:`~fdnet.runfolder.RunFolder`):
    every table parsed from the checked bytes, leniently (a damaged file is skipped, never fatal)."""

    def __init__(self, rf: RunFolder):
        self.rf = rf
        self.manifest = {k: v for k, v in (rf.manifest or {}).items()} if isinstance(rf.manifest, dict) else {}

    def table(self, key: str) -> pd.DataFrame | None:
        return self.rf.table(key, strict=False)

    def scores(self) -> pd.DataFrame | None:
        return networks.score_view(self.table("scores"))

    def edges(self) -> networks.EdgeView | None:
        e = self.table("edges")
        if e is None or not {"person_a", "person_b", "layer"} <= set(e.columns):
            return None
        return networks.EdgeView(e)

    def has_edges_file(self) -> bool:
        return self.table("edges") is not None

    def rejected(self) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
        """(the file and reason columns of every rejected row, the first rows as text) or (None, None)."""
        r = self.table("rejected")
        return (r, r.head(REJECTED_SAMPLE)) if r is not None else (None, None)

    def explanations(self) -> dict[str, dict]:
        return self.rf.explanations()

    def stats(self) -> dict[str, dict]:
        return self.rf.file_stats()


class _LazyExplanations(Mapping):
    """person_id -> its explanations.jsonl object, each line parsed when asked for and not kept: the
    report reads every listed person's explanation once or twice, and holding them all as dicts cost
    about 300 MB at a million people. Iterates in the frame's order (sorted person IDs), as the dict
    built from the file's lines does.

    >>> ex = _LazyExplanations(pd.DataFrame({"person_id": ["A", "B"],
    ...                                      "json": ['{"person_id": "A"}', '{"person_id": "B", "x": 1}']}))
    >>> ex.get("B"), ex.get("C"), list(ex), len(ex)
    ({'person_id': 'B', 'x': 1}, None, ['A', 'B'], 2)
    """

    def __init__(self, frame: pd.DataFrame):
        self._ids = frame["person_id"].to_numpy(dtype=object)
        self._json = frame["json"].to_numpy(dtype=object)
        # the frame is sorted by person_id (explain_listed); a last line wins for a repeated ID, as in a dict
        order = np.argsort(self._ids, kind="stable")
        self._sorted = self._ids[order]
        self._row = order

    def __getitem__(self, person_id):
        i = int(np.searchsorted(self._sorted, person_id, side="right")) - 1
        if i < 0 or self._sorted[i] != person_id:
            raise KeyError(person_id)
        return json.loads(self._json[self._row[i]])

    def __iter__(self):
        seen: set = set()
        for p in self._ids:
            if p not in seen:
                seen.add(p)
                yield p

    def __len__(self) -> int:
        return len(pd.unique(self._ids))


class RunSource:
    """What the report is made from, taken from a :class:`~fdnet.run.Run` in memory while it is written:
    the large tables (scores, edges, rejected rows) are read as arrays, never re-parsed; the small ones
    (the lists, groups, conflicts, disparity: bounded by the policy and the number of groups) pass through
    the CSV writer and reader so that every cell shows exactly as the file holds it. ``stats`` are the
    sizes, rows and SHA-256 of the files already written."""

    def __init__(self, run, stats: dict[str, dict]):
        self.run = run
        self.manifest = {k: v for k, v in run.manifest.items() if k != "outputs"}
        self._stats = dict(stats)
        self._tables: dict[str, pd.DataFrame | None] = {}

    def table(self, key: str) -> pd.DataFrame | None:
        if key not in self._tables:
            df = self.run.table(key)
            self._tables[key] = read_csv_table(csv_bytes(df)) if df is not None else None
        return self._tables[key]

    def scores(self) -> pd.DataFrame | None:
        return networks.score_view(self.run.scores)

    def edges(self) -> networks.EdgeView | None:
        # straight from the network's arrays; the evidence IDs are joined only for the ties drawn
        return networks.EdgeView.from_network(self.run.network)

    def has_edges_file(self) -> bool:
        return True

    def rejected(self) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
        r = self.run.records.rejected
        cols = {c: networks._text(r[c]) for c in ("file", "reason") if c in r.columns}
        head = r.head(REJECTED_SAMPLE)
        return pd.DataFrame(cols, index=pd.RangeIndex(len(r))), read_csv_table(csv_bytes(head))

    def explanations(self) -> "_LazyExplanations":
        return _LazyExplanations(self.run.explanations)

    def stats(self) -> dict[str, dict]:
        return self._stats


from .places import places_context  # noqa: E402  (the Places section; below the helpers it uses)


def build_context(src, manifest: dict | None = None) -> dict:
    """Everything the template shows, from one source (:class:`FolderSource` or :class:`RunSource`).

    ``build_context(files, manifest)`` (file name -> bytes) is still accepted: those bytes are read as a
    run folder.
    """
    if isinstance(src, dict):
        src = FolderSource(RunFolder.from_bytes({k: v for k, v in src.items()
                                                 if k not in ("report.html", "manifest.json")}, manifest or {}))
    manifest = src.manifest or {}
    summary = manifest.get("summary") or {}
    summary = summary if isinstance(summary, dict) else {}
    policy = manifest.get("policy") or {}
    policy = policy if isinstance(policy, dict) else {}
    window = manifest.get("window") or {}
    window = window if isinstance(window, dict) else {}
    scores = src.scores()
    edges = src.edges()
    group_table = src.table("group_table")
    if group_table is not None and "members_shot" in group_table.columns:   # most members shot first
        group_table = (group_table.assign(_k=[-_num(v) for v in group_table["members_shot"]])
                       .sort_values("_k", kind="stable").drop(columns="_k").reset_index(drop=True))
    conflicts = src.table("conflicts")
    rejected, rejected_head = src.rejected()
    contagion_events = src.table("contagion_events")
    disparity = src.table("disparity")
    call_in_groups = src.table("call_in_groups")
    lists = {key: src.table(key) for key, _, _ in LISTS}
    present = {k: v for k, v in lists.items() if v is not None}

    listed = networks.listed_people(present)
    picker = networks.picker_order(listed)
    ego = None
    if edges is not None and picker:
        ego = networks.ego_data(edges, picker, scores=scores, explanations=src.explanations(), listed=listed,
                                ties_json=True)
        ego["horizon"] = ((policy.get("calibration") or {}).get("horizon_days")
                          if isinstance(policy.get("calibration"), dict) else None) or 120
    groupnet = None
    chosen: list[str] = []
    if scores is not None and edges is not None and {"person_id", "group"} <= set(scores.columns) and len(scores):
        chosen = networks.top_groups(present, call_in_groups, group_table, scores)
        if chosen:
            groupnet = networks.group_network(edges, scores, chosen, listed, ties_json=True)
    conflict = None
    if conflicts is not None and len(conflicts) and {"group_a", "group_b"} <= set(conflicts.columns):
        conflict = networks.conflict_map(conflicts, group_table, scores, chosen)

    flagged = 0
    if disparity is not None and "flag" in disparity.columns:
        flagged = int((disparity["flag"].str.strip() != "").sum())
    conflicts_top = None
    if conflicts is not None and len(conflicts):
        c = conflicts.copy()
        if "shootings" in c.columns:
            c["_s"] = [-_num(v) for v in c["shootings"]]
            c = c.sort_values(["_s"], kind="stable").drop(columns="_s")
        conflicts_top = _table(c, CONFLICT_TABLE_ROWS)
    contagion = (manifest.get("analytics") or {}).get("contagion") if isinstance(manifest.get("analytics"), dict) \
        else None
    list_tables = []
    for key, fname, title in LISTS:
        df = lists[key]
        rule = (policy.get("lists") or {}).get(key) if isinstance(policy.get("lists"), dict) else None
        list_tables.append({"key": key, "file": fname, "title": title, "table": _table(df),
                            "rule": rule if isinstance(rule, dict) else None})
    rej_sample = None
    if rejected is not None and len(rejected):
        r = rejected_head.copy()
        if "raw" in r.columns:
            r["raw"] = [v if len(v) <= 200 else v[:200] + "…" for v in r["raw"]]
        rej_sample = _table(r)
    return {
        "version": manifest.get("fdnet_version") or __version__,
        "renderer_version": __version__,
        "as_of": manifest.get("as_of") or summary.get("as_of", ""),
        "window": {"start": window.get("start") or summary.get("window_start", ""),
                   "end": window.get("end") or manifest.get("as_of") or summary.get("as_of", ""),
                   "days": window.get("days", policy.get("window_days", ""))},
        "policy_hash": policy_hash(policy),
        "horizon_days": ((policy.get("calibration") or {}).get("horizon_days")
                         if isinstance(policy.get("calibration"), dict) else None) or 120,
        "policy_rows": flatten(policy) if policy else [],
        "kpis": [(summary[k], label) for k, label in KPI_LABELS if k in summary],
        "list_sizes": summary.get("lists") or {},
        "inputs": [(name, inp) for name, inp in (manifest.get("inputs") or {}).items() if isinstance(inp, dict)]
        if isinstance(manifest.get("inputs"), dict) else [],
        "notes": [str(n) for n in manifest.get("notes") or []] if isinstance(manifest.get("notes") or [], list)
        else [],
        "has_rejected_file": rejected is not None,
        "reasons": _rejected_reasons(rejected),
        "rejected_total": int(len(rejected)) if rejected is not None else 0,
        "rejected_sample": rej_sample,
        "lists": list_tables,
        "picker": [(pid, ", ".join(f"{t} #{r}" for t, r in _titles(listed[pid]))) for pid in picker],
        "composition": charts.stacked_bars_svg(_composition(present)) if present else None,
        "overlap": _overlap(present),
        "call_in_groups": _table(call_in_groups),
        "changes": _changes(src.table("changes"), manifest),
        "disparity": _table(disparity, flag_col="flag"),
        "disparity_flagged": flagged,
        # demographic components that count for an enforcement list: none by default; a policy that wants
        # one must justify it in writing, and the justification is shown here (issue 9)
        "demographic_enforcement": _demographic_enforcement(manifest),
        "score_charts": _score_charts(scores, policy),
        "monthly": _monthly(manifest, contagion_events),
        "group_table": _table(group_table, GROUP_TABLE_ROWS),
        "conflicts_table": conflicts_top,
        "contagion": contagion if isinstance(contagion, dict) else None,
        "contagion_events": int(len(contagion_events)) if contagion_events is not None else None,
        "chosen_groups": chosen,
        "data": {"groupnet": groupnet, "conflicts": conflict, "ego": ego},
        "has_edges": src.has_edges_file(),
        "has_conflicts_file": conflicts is not None,
        "inventory": _inventory(src.stats()),
        "outputs_in_manifest": "outputs" in manifest,
        "places": places_context(src, manifest),
        "resolution": _resolution(manifest, src),
    }


RESOLUTION_REVIEW_ROWS = 50


def _resolution(manifest: dict, src) -> dict | None:
    """The entity-resolution section: what was merged, the thresholds, and the first uncertain pairs."""
    r = manifest.get("resolution")
    if not isinstance(r, dict):
        return None
    rows = [(k.replace("_", " "), r[k]) for k in ("backend", "high", "review", "entity_id", "records", "entities",
                                                  "records_merged", "links_at_or_above_high", "review_pairs",
                                                  "links_cut_by_decisions") if k in r]
    dec = r.get("decisions") if isinstance(r.get("decisions"), dict) else {}
    rows += [(f"decisions: {k.replace('_', ' ')}", v) for k, v in dec.items()]
    review = src.table("resolution_review")
    if review is not None:
        review = review[[c for c in ("person_a", "person_b", "match_probability", "source_a", "source_b",
                                     "waterfall") if c in review.columns]]
    return {"rows": rows, "review": _table(review, RESOLUTION_REVIEW_ROWS)}


def _titles(entries: list[tuple[str, int]]) -> list[tuple[str, int]]:
    names = {k: t for k, _, t in LISTS}
    return [(names.get(n, n), r) for n, r in entries]


def render_report(files: dict[str, bytes], manifest: dict | None = None) -> str:
    """The report.html text for a run held as bytes: ``files`` maps each other run-folder file name
    (``"scores.csv"``, ...) to its bytes, ``manifest`` is the run's manifest (its ``outputs`` may be
    missing). The same page :func:`render_run_report` makes from the run in memory."""
    rf = RunFolder.from_bytes({k: v for k, v in files.items() if k not in ("report.html", "manifest.json")},
                              manifest or {})
    return render_folder_report(rf)


def render_folder_report(rf: RunFolder) -> str:
    """report.html re-rendered from an opened run folder (``fdnet verify``)."""
    return _render(build_context(FolderSource(rf)))


def render_run_report(run, stats: dict[str, dict]) -> str:
    """report.html for a :class:`~fdnet.run.Run` being written; ``stats`` are the other files' sizes,
    rows and SHA-256 (:func:`fdnet.runfolder.file_stats`)."""
    return _render(build_context(RunSource(run, stats)))


def run_report_pieces(run, stats: dict[str, dict]) -> Iterator[bytes]:
    """:func:`render_run_report` as UTF-8 pieces of about :data:`PIECE_CHARS` characters, made as they are
    written: the same bytes, without the whole page in memory as text and again as bytes (at a million
    people the page is 30 MB, held as about 60 MB of text: it has a few non-Latin-1 characters)."""
    return _render_pieces(build_context(RunSource(run, stats)))


PIECE_CHARS = 1 << 20


def _prepare(ctx: dict) -> dict:
    ctx["long_text"] = LONG_TEXT
    data = ctx.pop("data")
    ctx["data_json"] = {k: script_json_pieces(v) for k, v in data.items()}
    ctx["has_net"] = {k: v is not None for k, v in data.items()}
    ctx["vis_js"] = Markup(vis_network_js() or "")
    ctx["has_vis"] = bool(ctx["vis_js"])
    return ctx


def _render(ctx: dict) -> str:
    return _ENV.get_template("report.html").render(**_prepare(ctx))


def _render_pieces(ctx: dict) -> Iterator[bytes]:
    """The page of :func:`_render` encoded piece by piece (UTF-8 encodes each character on its own, so the
    pieces join to the bytes of the whole text)."""
    buf: list[str] = []
    size = 0
    for part in _ENV.get_template("report.html").generate(**_prepare(ctx)):
        buf.append(part)
        size += len(part)
        if size >= PIECE_CHARS:
            yield "".join(buf).encode("utf-8")
            buf, size = [], 0
    if buf:
        yield "".join(buf).encode("utf-8")
