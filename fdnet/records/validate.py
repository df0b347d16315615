"""Validate the input folder: every row is used or rejected with its reason.

:func:`load_records` is the records stage's one entry point. It reads the
tables, applies the mapping, checks every cell against the declared schema
(:mod:`fdnet.records.schema`) and the tables against each other, and returns
:class:`Records`: the clean tables (records dated after ``as_of`` set aside
exactly as if absent), the rejected rows with file, line, column and reason,
and per-file row counts for the manifest.

Checks are vectorised pandas operations driven by the schema, written here
rather than with a schema library because each failing *cell* must become a
rejected *row* with its line number and a sentence an analyst can act on,
while the run goes on.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from .mapping import Mapping, load_mapping
from .read import RawTable, read_table
from .schema import (FALSE_WORDS, OFFENDING_ROLES, TABLES, TRUE_WORDS, VIOLENT_NIBRS,
                     VIOLENT_OFFENSES, TableSpec)

EPOCH = np.datetime64("1970-01-01", "D")
_ISO = re.compile(
    r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$")
REJECTED_COLUMNS = ["file", "line", "column", "reason", "raw"]


def day_to_iso(day: int) -> str:
    """Days since 1970-01-01 -> ``YYYY-MM-DD``.

    >>> day_to_iso(19723)
    '2024-01-01'
    """
    return str(EPOCH + np.timedelta64(int(day), "D"))


def iso_to_day(s: str) -> int:
    """``YYYY-MM-DD`` -> days since 1970-01-01.

    >>> iso_to_day("2024-01-01")
    19723
    """
    return int((np.datetime64(s[:10], "D") - EPOCH).astype(np.int64))


def _text(s: pd.Series) -> pd.Series:
    """Arrow-backed strings: strip/lower/regex/isin run vectorised in C++."""
    return s if s.dtype == "string[pyarrow]" else s.astype("string[pyarrow]")


def parse_dates(s: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse ISO 8601 dates or date-times to days since 1970-01-01.

    Returns (days, ok, present): the time of day and any UTC offset are
    ignored (the date is taken as written). Empty cells are not present.

    >>> d, ok, present = parse_dates(pd.Series(["2024-01-02", "2024-02-30", "", "2024-03-01T23:10:00-05:00"]))
    >>> d[ok & present].tolist(), ok.tolist(), present.tolist()
    ([19724, 19783], [True, False, True, True], [True, True, False, True])
    """
    s = _text(s)
    present = (s != "").to_numpy(dtype=bool)
    shape_ok = s.str.fullmatch(_ISO.pattern).fillna(False).to_numpy(dtype=bool)
    parsed = pd.to_datetime(s.str.slice(0, 10).where(shape_ok, None), format="%Y-%m-%d", errors="coerce")
    days = np.zeros(len(s), dtype=np.int64)
    good = shape_ok & parsed.notna().to_numpy()
    days[good] = (parsed[good].to_numpy().astype("datetime64[D]") - EPOCH).astype(np.int64)
    ok = good | ~present
    return days, ok, present


def parse_bools(s: pd.Series, extra_true=(), extra_false=()) -> tuple[np.ndarray, np.ndarray]:
    """Booleans from true/false/1/0/yes/no (any case); empty means false.

    >>> v, ok = parse_bools(pd.Series(["Yes", "0", "", "maybe"]))
    >>> v.tolist(), ok.tolist()
    ([True, False, False, False], [True, True, True, False])
    """
    low = _text(s).str.lower()
    t = set(TRUE_WORDS) | {w.lower() for w in extra_true}
    f = set(FALSE_WORDS) | {w.lower() for w in extra_false} | {""}
    is_t = low.isin(t).to_numpy(dtype=bool)
    is_f = low.isin(f).to_numpy(dtype=bool)
    return is_t, is_t | is_f


@dataclass
class Records:
    """The validated input: clean tables, rejections and counts."""

    incidents: pd.DataFrame
    involvements: pd.DataFrame
    persons: pd.DataFrame | None
    groups: pd.DataFrame | None
    group_relations: pd.DataFrame | None
    as_of: str
    as_of_day: int
    inputs: dict
    rejected: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def offending(self) -> pd.DataFrame:
        """Involvements in an offending role."""
        return self.involvements[self.involvements["role"].isin(OFFENDING_ROLES)]


class _Rejects:
    """Collects rejected rows; one line per input row, reasons joined."""

    def __init__(self):
        self.rows: list[dict] = []
        self.count: dict[str, int] = {}

    def add(self, t: RawTable, idx: np.ndarray, column: list[str] | str, reason: list[str] | str):
        idx = np.asarray(idx)
        if idx.size == 0:
            return
        cols = [column] * idx.size if isinstance(column, str) else column
        reasons = [reason] * idx.size if isinstance(reason, str) else reason
        for i, c, r in zip(idx.tolist(), cols, reasons):
            self.rows.append({"file": t.path.name, "line": int(t.lines[i]), "column": c,
                              "reason": r, "raw": t.raw(i)})
        self.count[t.name] = self.count.get(t.name, 0) + idx.size

    def add_bad(self, t: RawTable):
        for line, reason, raw in t.bad_rows:
            self.rows.append({"file": t.path.name, "line": line, "column": "",
                              "reason": reason, "raw": raw})
        self.count[t.name] = self.count.get(t.name, 0) + len(t.bad_rows)

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.rows, columns=REJECTED_COLUMNS)
        if len(df):
            df = df.sort_values(["file", "line"], kind="stable").reset_index(drop=True)
        return df


def _find_file(data_dir: Path, table: str, mapping: Mapping, listing: dict[str, Path]) -> Path | None:
    mapped = mapping.file_for(table)
    if mapped:
        p = data_dir / mapped
        if not p.exists():
            raise InputError(f"the mapping names file {mapped!r} for table {table}, but it is not in the data folder",
                             file=str(data_dir))
        return p
    found = [listing[n] for n in (f"{table}.csv", f"{table}.parquet") if n in listing]
    if len(found) > 1:
        raise InputError(f"both {found[0].name} and {found[1].name} are present; keep one",
                         file=str(data_dir))
    return found[0] if found else None


def _check_cells(t: RawTable, spec: TableSpec, mapping: Mapping, rej: _Rejects,
                 role_map: dict[str, tuple[str, ...]]) -> tuple[pd.DataFrame, np.ndarray]:
    """Type-check every declared column; returns parsed columns and the valid mask.

    Each check yields a boolean mask of failing rows and a function giving
    the reason for one row; only failing rows are visited in Python.
    """
    df = t.df
    n = len(df)
    checks: list[tuple[np.ndarray, str, object]] = []   # (failing mask, column, reason(i))
    parsed = pd.DataFrame(index=df.index)
    for col in spec.columns:
        if col.name not in df.columns:
            continue
        s = _text(df[col.name]).str.strip().fillna("")
        df[col.name] = s
        raw = s  # for messages
        if col.kind in ("id", "text"):
            parsed[col.name] = s
            if col.kind == "id":
                checks.append(((s == "").to_numpy(dtype=bool), col.name,
                               lambda i, c=col.name: f"{c} is empty"))
        elif col.kind == "date":
            days, ok, present = parse_dates(s)
            parsed[col.name] = days
            parsed[col.name + "__present"] = present
            checks.append((~ok, col.name, lambda i, c=col.name, r=raw:
                           f"{c} {r.iat[i]!r} is not an ISO 8601 date (YYYY-MM-DD, optionally with a time)"))
            if col.required:
                checks.append((~present, col.name, lambda i, c=col.name: f"{c} is empty"))
        elif col.kind == "bool":
            v, ok = parse_bools(s, mapping.booleans.get("true", ()), mapping.booleans.get("false", ()))
            parsed[col.name] = v
            checks.append((~ok, col.name, lambda i, c=col.name, r=raw:
                           f"{c} {r.iat[i]!r} is not a boolean (true/false, 1/0, yes/no)"))
        elif col.kind in ("float", "int"):
            present = (s != "").to_numpy(dtype=bool)
            vals = pd.to_numeric(s.where(s != "", None), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            ok = ~present | np.isfinite(vals)
            if col.kind == "int":
                ok &= ~present | (np.isfinite(vals) & (np.floor(np.nan_to_num(vals)) == np.nan_to_num(vals)))
            rng = np.ones(n, bool)
            if col.lo is not None:
                rng &= ~(vals < col.lo)
            if col.hi is not None:
                rng &= ~(vals > col.hi)
            parsed[col.name] = vals
            kind = "an integer" if col.kind == "int" else "a number"
            checks.append((~ok, col.name, lambda i, c=col.name, r=raw, k=kind: f"{c} {r.iat[i]!r} is not {k}"))
            checks.append((ok & present & ~rng, col.name, lambda i, c=col, r=raw:
                           f"{c.name} {r.iat[i]!r} is outside {c.lo:g}..{c.hi:g}"))
        elif col.kind == "enum":
            low = s.str.lower()
            codes, uniq = pd.factorize(low.to_numpy(dtype=object))
            if col.name == "role":
                # role codes map to one or more roles (expanded later); factorise
                # first so the lookup runs once per distinct code
                table = [role_map.get(u, (u,) if u in col.choices else None) for u in uniq]
                mapped = np.empty(len(table), dtype=object)
                mapped[:] = table
                vals = mapped[codes] if n else np.empty(0, dtype=object)
                parsed[col.name] = vals
                bad = np.fromiter((x is None for x in mapped), bool, len(mapped))[codes] if n else np.zeros(0, bool)
                checks.append((bad, col.name, lambda i, c=col, r=raw:
                               f"role {r.iat[i]!r} is not a known role ({', '.join(c.choices)}); "
                               "map records-system codes in mapping.yaml"))
            else:
                okset = set(col.choices) | ({""} if not col.required else set())
                ok = np.fromiter((u in okset for u in uniq), bool, len(uniq))[codes] if n else np.zeros(0, bool)
                parsed[col.name] = low.to_numpy(dtype=object)
                checks.append((~ok, col.name, lambda i, c=col, r=raw:
                               f"{c.name} {r.iat[i]!r} is not one of {', '.join(c.choices)}"))
    bad_any = np.zeros(n, bool)
    for m, _, _ in checks:
        bad_any |= m
    bad_idx = np.flatnonzero(bad_any)
    cols, reasons = [], []
    for i in bad_idx.tolist():
        hits = [(c, fn(i)) for m, c, fn in checks if m[i]]
        cols.append(hits[0][0])
        reasons.append("; ".join(r for _, r in hits))
    rej.add(t, bad_idx, cols, reasons)
    return parsed, ~bad_any


def _dedupe(t: RawTable, keys: pd.DataFrame, idx: np.ndarray, rej: _Rejects, what: str) -> np.ndarray:
    """Keep the first row of each key among ``idx``; reject later ones naming the first line."""
    sub = keys.iloc[idx]
    dup = sub.duplicated(keep="first").to_numpy()
    if dup.any():
        first_line = {}
        for k, i in zip(map(tuple, sub.to_numpy().tolist()), idx.tolist()):
            first_line.setdefault(k, int(t.lines[i]))
        d_idx = idx[dup]
        reasons = [f"duplicate {what} {'/'.join(k)!r}: first given on line {first_line[k]}"
                   for k in map(tuple, sub.to_numpy()[dup].tolist())]
        rej.add(t, d_idx, list(keys.columns)[0], reasons)
    return idx[~dup]


def _prepare(data_dir: Path, name: str, path: Path, mapping: Mapping) -> RawTable:
    spec = TABLES[name]
    t = read_table(path, name)
    ren = mapping.renames(name)
    if ren:
        cols = [ren.get(c, c) for c in t.df.columns]
        if len(set(cols)) != len(cols):
            raise InputError("the mapping renames two columns to the same name", file=path.name, line=1)
        t.df.columns = cols
    missing = [c for c in spec.required if c not in t.df.columns]
    if missing and len(t.header) == 1 and any(sep in t.header[0] for sep in ("\t", ";", "|")):
        sep = next(s for s in ("\t", ";", "|") if s in t.header[0])
        raise InputError(
            f"looks {'tab' if sep == chr(9) else repr(sep)}-separated; fdnet reads comma-separated CSV "
            "(re-export as CSV, or save as Parquet)", file=path.name, line=1)
    if missing:
        raise InputError(
            f"is missing required column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(found: {', '.join(t.header)}); column names are matched case-insensitively, "
            "and mapping.yaml can map other names", file=path.name, line=1, column=missing[0])
    return t


def load_records(data_dir: str | Path, as_of: str | None = None,
                 mapping_path: str | Path | None = None) -> Records:
    """Read and validate an input folder (CONTRACT.md section 1).

    ``as_of`` (YYYY-MM-DD) defaults to the latest valid incident date;
    incidents dated after it, their involvements, and group and relation
    rows dated after it are set aside as if absent (counted as
    ``after_as_of`` in the manifest).
    """
    data_dir = Path(data_dir)
    if not data_dir.exists():
        raise InputError("data folder does not exist", file=str(data_dir))
    if not data_dir.is_dir():
        raise InputError("is not a folder (expected a folder of input tables)", file=str(data_dir))
    mapping = load_mapping(data_dir, Path(mapping_path) if mapping_path else None)
    role_map = mapping.role_map()
    listing = {p.name.lower(): p for p in sorted(data_dir.iterdir())}
    rej = _Rejects()
    notes: list[str] = []
    inputs: dict[str, dict] = {}

    # --- read ------------------------------------------------------------
    raws: dict[str, RawTable] = {}
    if mapping.long:
        p = data_dir / (mapping.long.file or "")
        if not mapping.long.file or not p.is_file():
            raise InputError(f"the mapping's long export {mapping.long.file!r} is not in the data folder",
                             file=str(data_dir))
        t = _prepare(data_dir, "incidents", p, mapping)
        missing = [c for c in TABLES["involvements"].required if c not in t.df.columns]
        if missing:
            raise InputError(f"is missing required column {missing[0]} for the long export",
                             file=p.name, line=1, column=missing[0])
        raws["incidents"] = raws["involvements"] = t
    for name, spec in TABLES.items():
        if name in raws:
            continue
        p = _find_file(data_dir, name, mapping, listing)
        if p is None:
            if spec.optional_file:
                continue
            raise InputError(f"required table {name} is missing: expected {name}.csv or {name}.parquet "
                             "(or a file named for it in mapping.yaml)", file=str(data_dir))
        raws[name] = _prepare(data_dir, name, p, mapping)
    for t in {id(t): t for t in raws.values()}.values():
        rej.add_bad(t)

    long = mapping.long is not None
    # --- incidents -------------------------------------------------------
    ti = raws["incidents"]
    pi, vi = _check_cells(ti, TABLES["incidents"], mapping, rej, role_map)
    if long:
        pv, vv = _check_cells(ti, TABLES["involvements"], mapping, rej, role_map)
        vi = vi & vv
    idx = np.flatnonzero(vi)
    if len(idx) == 0 and ti.n_read:
        raise InputError("has no valid incident rows: see the first problems in rejected rows: "
                         + "; ".join(r["reason"] for r in rej.rows[:3]), file=ti.path.name)
    if ti.n_read == 0:
        raise InputError("has a header but no data rows", file=ti.path.name)
    if as_of is None:
        as_of_day = int(pi["date"].to_numpy()[idx].max())
    else:
        try:
            as_of_day = iso_to_day(as_of)
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", as_of):
                raise ValueError
        except ValueError:
            raise InputError(f"--as-of {as_of!r} is not a date (YYYY-MM-DD)") from None
    days_i = pi["date"].to_numpy()
    after = idx[days_i[idx] > as_of_day]
    idx = idx[days_i[idx] <= as_of_day]
    inc_after = set(ti.df["incident_id"].to_numpy()[after].tolist())
    if long:
        # one incident per id: rows of an incident must agree on incident fields
        inc_cols = [c.name for c in TABLES["incidents"].columns if c.name in ti.df.columns]
        sub = ti.df.iloc[idx][inc_cols]
        first = ~sub["incident_id"].duplicated(keep="first").to_numpy()
        firsts = sub[first].set_index("incident_id")
        ref = firsts.loc[sub["incident_id"]].to_numpy()
        agree = (sub.to_numpy()[:, 1:] == ref).all(axis=1) if len(inc_cols) > 1 else np.ones(len(idx), bool)
        if (~agree).any():
            first_line = dict(zip(sub["incident_id"][first], ti.lines[idx[first]].tolist()))
            bad = idx[~agree]
            rej.add(ti, bad, "incident_id",
                    [f"incident fields differ from line {first_line[k]}, the first row of incident {k!r}"
                     for k in ti.df["incident_id"].to_numpy()[bad]])
            idx = idx[agree]
        inc_idx = idx[first[agree]]
    else:
        inc_idx = _dedupe(ti, ti.df[["incident_id"]], idx, rej, "incident_id")
    cols = {c.name for c in TABLES["incidents"].columns} & set(ti.df.columns)
    inc = pd.DataFrame({
        "incident_id": ti.df["incident_id"].to_numpy()[inc_idx],
        "day": days_i[inc_idx].astype(np.int32),
        "line": ti.lines[inc_idx],
    })
    inc["date"] = (EPOCH + inc["day"].to_numpy().astype("timedelta64[D]")).astype(str)
    for b in ("gun", "fatal", "violent"):
        inc[b] = pi[b].to_numpy()[inc_idx] if b in cols else False
    for c in ("offense", "nibrs_code", "district"):
        inc[c] = ti.df[c].to_numpy()[inc_idx] if c in cols else ""
    for c in ("lat", "lon"):
        inc[c] = pi[c].to_numpy()[inc_idx] if c in cols else np.nan
    if "violent" not in cols:
        if "offense" in cols or "nibrs_code" in cols:
            inc["violent"] = (inc["offense"].str.lower().isin(VIOLENT_OFFENSES)
                              | inc["nibrs_code"].str.upper().isin(VIOLENT_NIBRS)).to_numpy()
            notes.append("incidents has no 'violent' column: violence taken from offense / nibrs_code "
                         "and the documented violent set")
        else:
            notes.append("incidents has no 'violent', 'offense' or 'nibrs_code' column: no incident counts as violent")
    if "gun" not in cols:
        notes.append("incidents has no 'gun' column: no incident counts as a shooting")
    inc = inc.sort_values("incident_id", kind="stable").reset_index(drop=True)
    known = pd.Index(inc["incident_id"])
    rejected_ids = set(ti.df["incident_id"].to_numpy()[~vi].tolist())

    # --- involvements ------------------------------------------------------
    tv = raws["involvements"]
    if long:
        vv_idx = idx  # rows of the long export that survived the incident checks
        pv_role = pv["role"]
    else:
        pv, vv = _check_cells(tv, TABLES["involvements"], mapping, rej, role_map)
        vv_idx = np.flatnonzero(vv)
        pv_role = pv["role"]
        if tv.n_read == 0:
            raise InputError("has a header but no data rows", file=tv.path.name)
        ids = tv.df["incident_id"].to_numpy()[vv_idx]
        is_after = pd.Index(list(inc_after)).get_indexer(ids) >= 0 if inc_after else np.zeros(len(ids), bool)
        in_known = known.get_indexer(ids) >= 0
        unknown = vv_idx[~in_known & ~is_after]
        if len(unknown):
            rej.add(tv, unknown, "incident_id",
                    [f"incident_id {k!r} is not in {ti.path.name}" +
                     (" (its row there was rejected)" if k in rejected_ids else "")
                     for k in tv.df["incident_id"].to_numpy()[unknown]])
        after_v = int(is_after.sum())
        vv_idx = vv_idx[in_known]
    roles = pv_role.to_numpy()[vv_idx]
    inv = pd.DataFrame({
        "incident_id": tv.df["incident_id"].to_numpy()[vv_idx],
        "person_id": tv.df["person_id"].to_numpy()[vv_idx],
        "role": roles,
        "line": tv.lines[vv_idx],
        "_row": vv_idx,
    })
    # a code mapped to several roles becomes several involvements (same line)
    codes, uniq = pd.factorize(roles)
    if any(len(u) > 1 for u in uniq):
        inv = inv.explode("role", ignore_index=True)
    elif len(inv):
        first = np.empty(len(uniq), dtype=object)
        first[:] = [u[0] for u in uniq]
        inv["role"] = first[codes]
    dup = inv.duplicated(["incident_id", "person_id", "role"], keep="first").to_numpy()
    if dup.any():
        first_line = inv[~dup].set_index(["incident_id", "person_id", "role"])["line"]
        d = inv[dup]
        rows = d["_row"].to_numpy()
        # a row whose expanded roles are all duplicates is rejected; partial duplicates just merge
        keep_rows = set(inv.loc[~dup, "_row"].tolist())
        full = [j for j, r in enumerate(rows) if r not in keep_rows]
        if full:
            rej.add(tv, rows[full], "person_id",
                    [f"duplicate involvement {a!r}/{b!r}/{c}: first given on line {first_line[(a, b, c)]}"
                     for a, b, c in d[["incident_id", "person_id", "role"]].to_numpy()[full].tolist()])
        inv = inv[~dup]
    inv = inv.drop(columns="_row").sort_values(["incident_id", "person_id", "role"], kind="stable").reset_index(drop=True)

    # --- optional tables ---------------------------------------------------------
    persons = groups = relations = None
    extra_after: dict[str, int] = {}
    if "persons" in raws:
        t = raws["persons"]
        p, ok = _check_cells(t, TABLES["persons"], mapping, rej, role_map)
        keep = _dedupe(t, t.df[["person_id"]], np.flatnonzero(ok), rej, "person_id")
        persons = pd.DataFrame({"person_id": t.df["person_id"].to_numpy()[keep], "line": t.lines[keep]})
        for c in TABLES["persons"].columns[1:]:
            if c.name not in t.df.columns:
                continue
            if c.kind == "date":
                v = p[c.name].to_numpy()[keep]
                pres = p[c.name + "__present"].to_numpy()[keep]
                persons[c.name] = np.where(pres, (EPOCH + v.astype("timedelta64[D]")).astype(str), "")
            elif c.kind in ("bool", "float", "int"):
                persons[c.name] = p[c.name].to_numpy()[keep]
            else:
                persons[c.name] = p[c.name].to_numpy()[keep] if c.name in p else t.df[c.name].to_numpy()[keep]
        persons = persons.sort_values("person_id", kind="stable").reset_index(drop=True)
    for name in ("groups", "group_relations"):
        if name not in raws:
            continue
        t = raws[name]
        spec = TABLES[name]
        p, ok = _check_cells(t, spec, mapping, rej, role_map)
        ok_idx = np.flatnonzero(ok)
        if name == "group_relations":
            same = (t.df["group_a"].to_numpy()[ok_idx] == t.df["group_b"].to_numpy()[ok_idx])
            rej.add(t, ok_idx[same], "group_b", "group_a and group_b are the same group")
            ok_idx = ok_idx[~same]
        if "date" in t.df.columns:
            d = p["date"].to_numpy()[ok_idx]
            pres = p["date__present"].to_numpy()[ok_idx]
            late = pres & (d > as_of_day)
            extra_after[name] = int(late.sum())
            ok_idx = ok_idx[~late]
        keep = _dedupe(t, t.df[list(spec.key)], ok_idx, rej, "row")
        out = pd.DataFrame({c: (p[c].to_numpy()[keep] if TABLES[name].col(c).kind == "enum" else t.df[c].to_numpy()[keep])
                            for c in [c.name for c in spec.columns] if c in t.df.columns})
        for c in [c.name for c in spec.columns]:
            if c not in out:
                out[c] = ""
        out["line"] = t.lines[keep]
        if name == "groups":
            groups = out.sort_values(["person_id", "group"], kind="stable").reset_index(drop=True)
        else:
            relations = out.sort_values(["group_a", "group_b", "relation"], kind="stable").reset_index(drop=True)

    # --- counts ----------------------------------------------------------
    rejected = rej.frame()
    seen = set()
    for name, t in raws.items():
        key = "long_export" if long and name in ("incidents", "involvements") else name
        if key in seen:
            continue
        seen.add(key)
        n_rej = int((rejected["file"] == t.path.name).sum()) if len(rejected) else 0
        entry = {"path": str(t.path.resolve()), "sha256": t.sha256,
                 "rows": {"read": t.n_read, "used": t.n_read - n_rej, "rejected": n_rej}}
        if name == "incidents":
            entry["rows"]["after_as_of"] = int(len(after))
        elif name == "involvements" and not long:
            entry["rows"]["after_as_of"] = after_v
        elif name in extra_after:
            entry["rows"]["after_as_of"] = extra_after[name]
        inputs[key] = entry
    return Records(
        incidents=inc, involvements=inv, persons=persons, groups=groups,
        group_relations=relations, as_of=day_to_iso(as_of_day), as_of_day=as_of_day,
        inputs=inputs, rejected=rejected, notes=notes,
    )
