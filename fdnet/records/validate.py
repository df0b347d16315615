"""Validate the input folder: every row is used or rejected with its reason.

:func:`load_records` is the records stage's one entry point. It reads the
tables, applies the mapping, checks every cell against the declared schema
(:mod:`fdnet.records.schema`) and the tables against each other, and returns
:class:`Records`: the clean tables (records dated after ``as_of`` set aside
exactly as if absent), the rejected rows with file, line, column and reason
(one row of ``rejected`` per input row, all its reasons joined), per-file row
counts for the manifest (``read == used + rejected``) and data-quality
``findings`` (likely duplicate IDs, birth dates after the as-of date).

Checks are vectorised pandas/pyarrow operations driven by the schema, written
here rather than with a schema library because each failing *cell* must
become a rejected *row* with its line number and a sentence an analyst can
act on, while the run goes on.
"""
from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError
from .mapping import Mapping, load_mapping, mapping_file
from .read import MAX_FIELD_CHARS, RawTable, read_table, text_array
from .schema import (
    FALSE_WORDS,
    INTERVENTION_KINDS,
    NULL_MARKERS,
    QUOTE_LIMIT,
    ROLES,
    TABLES,
    TRUE_WORDS,
    VIOLENT_NIBRS,
    VIOLENT_OFFENSES,
    TableSpec,
    clip,
)

EPOCH = np.datetime64("1970-01-01", "D")
# the shape of an ISO 8601 date or date-time; the ranges of each part are checked after
_ISO = re.compile(
    r"^(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})"
    r"(?:[T ](?P<hh>\d{2}):(?P<mi>\d{2})(?::(?P<ss>\d{2})(?:\.\d+)?)?(?P<off>Z|[+-]\d{2}(?::?\d{2})?)?)?$")
REJECTED_COLUMNS = ["file", "line", "column", "reason", "raw"]
MAX_FINDING_GROUPS = 100        # groups of likely duplicate IDs listed in one finding

# parse_dates' codes: why a present date cell is not a date
DATE_OK, DATE_SHAPE, DATE_CALENDAR, DATE_CLOCK, DATE_OFFSET = range(5)
DATE_REASONS = {
    DATE_SHAPE: "is not an ISO 8601 date (YYYY-MM-DD, optionally with a time)",
    DATE_CALENDAR: "is not a calendar date (no such month or day)",
    DATE_CLOCK: "has an impossible time of day (hours 00-23, minutes and seconds 00-59)",
    DATE_OFFSET: "has an impossible UTC offset (offsets run from -14:00 to +14:00)",
}


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


def today_day(today: str | None = None) -> int:
    """The day of the run (``today``, default the machine's local date) as days since 1970-01-01."""
    if today is None:
        return iso_to_day(_dt.date.today().isoformat())
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(today)):
        raise InputError(f"today {clip(today)} is not a date (YYYY-MM-DD)")
    return iso_to_day(today)


def _text(s: pd.Series) -> pd.Series:
    """Arrow-backed strings: strip/lower/regex/isin run vectorised in C++."""
    return s if s.dtype == "string[pyarrow]" else s.astype("string[pyarrow]")


def _ints(a: pa.Array) -> np.ndarray:
    """Digit strings ('' for an absent part) -> int64, -1 where absent."""
    a = pc.if_else(pc.equal(a, ""), None, a)
    return pc.fill_null(pc.cast(a, pa.int64()), -1).to_numpy(zero_copy_only=False)


def parse_dates_why(s: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Parse ISO 8601 dates or date-times; returns (days, ok, present, why).

    ``why`` is ``DATE_OK`` or the code of the first problem (shape,
    calendar, clock, offset); see :func:`parse_dates`.

    >>> d, ok, present, why = parse_dates_why(pd.Series(["2024-01-01T25:61", "2024-01-01T10:00+19:00"]))
    >>> ok.tolist(), [DATE_REASONS[w] for w in why]
    ([False, False], ['has an impossible time of day (hours 00-23, minutes and seconds 00-59)', 'has an impossible UTC offset (offsets run from -14:00 to +14:00)'])
    """
    s = _text(s)
    n = len(s)
    if n == 0:
        z = np.zeros(0, bool)
        return np.zeros(0, np.int64), z, z.copy(), np.zeros(0, np.int8)
    # a column of dates holds few distinct values: each is parsed once
    enc = pc.dictionary_encode(pc.fill_null(text_array(s), "")).combine_chunks()
    codes = enc.indices.to_numpy(zero_copy_only=False)
    days_u, ok_u, present_u, why_u = _parse_dates_arrow(enc.dictionary)
    return days_u[codes], ok_u[codes], present_u[codes], why_u[codes]


def _parse_dates_arrow(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`parse_dates_why` of an Arrow string array (no empty-input special case)."""
    n = len(arr)
    present = pc.not_equal(arr, "").to_numpy(zero_copy_only=False)
    m = pc.extract_regex(arr, _ISO.pattern)
    shape = m.is_valid().to_numpy(zero_copy_only=False) if n else np.zeros(0, bool)
    m = pc.fill_null(m, pa.scalar({k: "" for k in ("y", "mo", "d", "hh", "mi", "ss", "off")}, m.type))
    y, mo, d = (_ints(m.field(k)) for k in ("y", "mo", "d"))
    hh, mi, ss = (_ints(m.field(k)) for k in ("hh", "mi", "ss"))
    month = np.where((mo >= 1) & (mo <= 12), (y - 1970) * 12 + (mo - 1), 0).astype("datetime64[M]")
    first = month.astype("datetime64[D]")
    dim = ((month + 1).astype("datetime64[D]") - first).astype(np.int64)
    calendar = (mo >= 1) & (mo <= 12) & (d >= 1) & (d <= dim)
    clock = (hh <= 23) & (mi <= 59) & (ss <= 59)
    # offsets: Z, +HH, +HHMM or +HH:MM with |offset| <= 14:00
    off = m.field("off")
    oh = np.maximum(_ints(pc.utf8_slice_codeunits(off, 1, 3)), 0)
    om = np.maximum(_ints(pc.if_else(pc.greater_equal(pc.utf8_length(off), 5),
                                     pc.utf8_slice_codeunits(off, -2), "")), 0)
    offset = (om <= 59) & (oh * 60 + om <= 14 * 60)
    why = np.full(n, DATE_OK, dtype=np.int8)
    why[~offset] = DATE_OFFSET
    why[~clock] = DATE_CLOCK
    why[~calendar] = DATE_CALENDAR
    why[~shape] = DATE_SHAPE
    why[~present] = DATE_OK
    good = present & (why == DATE_OK)
    days = np.zeros(n, dtype=np.int64)
    days[good] = (first[good] - EPOCH).astype(np.int64) + d[good] - 1
    ok = good | ~present
    return days, ok, present, why


def parse_dates(s: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse ISO 8601 dates or date-times to days since 1970-01-01.

    Returns (days, ok, present): the time of day and any UTC offset are
    checked (hours 00-23, minutes and seconds 00-59, offsets within
    ±14:00) and then ignored (the date is taken as written). Empty cells are
    not present. Any year 0000-9999 is a date.

    >>> d, ok, present = parse_dates(pd.Series(["2024-01-02", "2024-02-30", "", "2024-03-01T23:10:00-05:00"]))
    >>> d[ok & present].tolist(), ok.tolist(), present.tolist()
    ([19724, 19783], [True, False, True, True], [True, True, False, True])
    >>> parse_dates(pd.Series(["2205-01-01", "2024-01-01T24:00"]))[1].tolist()
    [True, False]
    """
    days, ok, present, _ = parse_dates_why(s)
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
    """The validated input: clean tables, rejections, counts and data-quality findings.

    ``findings`` are structured data-quality observations that did not
    reject a row (each a dict with ``kind``, ``message`` and details such as
    the groups of IDs concerned); each also has a sentence in ``notes``.
    ``today`` is the day of the run used to reject records dated in the future.
    """

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
    findings: list[dict] = field(default_factory=list)
    today: str = ""
    interventions: pd.DataFrame | None = None    # CONTRACT.md section 1; read by `fdnet evaluate`
    place_features: pd.DataFrame | None = None   # CONTRACT.md section 1; for the places analysis


class _Rejects:
    """Collects rejected rows: one row per input row, all its reasons joined."""

    def __init__(self):
        self.parts: list[pd.DataFrame] = []      # one block of rows per call, columns as REJECTED_COLUMNS

    def add(self, t: RawTable, idx: np.ndarray, column, reason):
        """Reject rows ``idx`` of ``t`` (column and reason: one for all, or one per row), all at once."""
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size == 0:
            return
        self.parts.append(pd.DataFrame({
            "file": t.path.name, "line": t.lines[idx].astype(np.int64),
            "column": column if isinstance(column, str) else np.asarray(column, dtype=object),
            "reason": reason if isinstance(reason, str) else np.asarray(reason, dtype=object),
            "raw": raw_lines(t, idx), "_table": t.name}, index=np.arange(idx.size)))

    def add_bad(self, t: RawTable):
        if t.bad_rows:
            lines, reasons, raws = zip(*t.bad_rows)
            self.parts.append(pd.DataFrame({"file": t.path.name, "line": list(lines), "column": "",
                                            "reason": list(reasons), "raw": list(raws), "_table": t.name}))

    def first_reasons(self, k: int = 3) -> list[str]:
        out: list[str] = []
        for part in self.parts:
            out += part["reason"].iloc[: k - len(out)].tolist()
            if len(out) >= k:
                break
        return out

    def frame(self) -> pd.DataFrame:
        """Sorted by file and line; rows of the same input row merged (first column, reasons joined)."""
        if not self.parts:
            return pd.DataFrame([], columns=REJECTED_COLUMNS + ["_table"])
        df = pd.concat(self.parts, ignore_index=True)[REJECTED_COLUMNS + ["_table"]]
        df = df.astype({c: "str" for c in ("file", "column", "reason", "raw", "_table")})
        if not len(df):
            return df
        df = df.sort_values(["file", "line"], kind="stable").reset_index(drop=True)
        key = ["_table", "file", "line"]
        if df.duplicated(key).any():
            df = (df.groupby(key, sort=False, as_index=False)
                    .agg(column=("column", "first"), reason=("reason", lambda r: "; ".join(dict.fromkeys(r))),
                         raw=("raw", "first"))
                    .sort_values(["file", "line"], kind="stable").reset_index(drop=True))
        return df


def raw_lines(t: RawTable, idx: np.ndarray) -> np.ndarray:
    """:meth:`RawTable.raw` of rows ``idx``, made column by column (quoted as the csv module does:
    a cell holding a comma or a quote is quoted, quotes doubled; a lone empty cell is ``""``)."""
    k = len(t.header)
    if not len(idx):
        return np.empty(0, dtype=object)
    take = pa.array(np.asarray(idx, dtype=np.int64))
    cols = []
    for j in range(k):
        c = pc.cast(pc.fill_null(text_array(t.df.iloc[:, j]).take(take), ""), pa.large_string())
        if pc.max(pc.utf8_length(c)).as_py() > MAX_FIELD_CHARS:     # (such rows left at reading)
            return np.asarray([t.raw(int(i)) for i in idx], dtype=object)
        quote = pc.match_substring_regex(c, '[,"]')
        q = pa.scalar('"', pa.large_string())
        quoted = pc.binary_join_element_wise(q, pc.replace_substring(c, '"', '""'), q, pa.scalar("", pa.large_string()))
        cols.append(pc.if_else(quote, quoted, c))
    line = pc.binary_join_element_wise(*cols, pa.scalar(",", pa.large_string())) if k > 1 else cols[0]
    if k == 1:
        line = pc.if_else(pc.equal(line, ""), pa.scalar('""', pa.large_string()), line)
    return np.asarray(line.to_numpy(zero_copy_only=False), dtype=object)


def _find_file(data_dir: Path, table: str, mapping: Mapping, listing: dict[str, Path]) -> Path | None:
    mapped = mapping.file_for(table)
    if mapped:
        p = data_dir / mapped
        if not p.exists():
            raise InputError(f"the mapping names file {clip(mapped)} for table {table}, but it is not in the "
                             "data folder", file=str(data_dir))
        return p
    found = [listing[n] for n in (f"{table}.csv", f"{table}.parquet") if n in listing]
    if len(found) > 1:
        raise InputError(f"both {found[0].name} and {found[1].name} are present; keep one",
                         file=str(data_dir))
    return found[0] if found else None


_DATE_SUFFIXES = [""] + [" " + DATE_REASONS[k] for k in sorted(DATE_REASONS)]
_SIMPLE_QUOTE = r"^[ -&(-\[\]-~]*$"      # printable ASCII but ' and \: repr() just adds quotes


def clip_many(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """:func:`~fdnet.records.schema.clip` of every value, vectorised for plain values.

    >>> vals = ["P1", "it's", "a\\b", "x" * 100, "é"]
    >>> clip_many(pa.array(vals)).tolist() == [clip(v) for v in vals]
    True
    """
    values = pc.fill_null(values, "")
    plain = pc.and_(pc.match_substring_regex(values, _SIMPLE_QUOTE),
                    pc.less_equal(pc.utf8_length(values), QUOTE_LIMIT)).to_numpy(zero_copy_only=False)
    out = np.asarray(values.to_numpy(zero_copy_only=False), dtype=object)
    out[plain] = "'" + out[plain] + "'"
    other = np.flatnonzero(~plain)
    if other.size:       # quotes, backslashes, other characters or long: Python's repr, as clip does
        out[other] = [clip(v) for v in out[other].tolist()]
    return out


class _Reason:
    """Why rows fail one check: a fixed sentence, or ``prefix + clip(cell) + suffix`` where the
    suffix may depend on a per-row code (``(codes, suffixes)``); made for many rows at once."""

    def __init__(self, prefix: str, cells: pd.Series | None = None, suffix="") -> None:
        self.prefix, self.cells, self.suffix = prefix, cells, suffix

    def at(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64)
        if self.cells is None:
            out = np.empty(len(idx), dtype=object)
            out[:] = self.prefix
            return out
        v = self.prefix + clip_many(text_array(self.cells).take(pa.array(idx)))
        if isinstance(self.suffix, tuple):
            codes, suffixes = self.suffix
            return v + np.asarray(suffixes, dtype=object)[np.asarray(codes)[idx]]
        return v + self.suffix

    def __call__(self, i: int) -> str:
        return str(self.at(np.array([i]))[0])


Check = tuple[np.ndarray, str, _Reason]     # (failing mask, column, why)


_CODE = r"[a-z][a-z0-9_]{0,63}"     # a `code` cell: an open set of kinds (interventions, place features)


def _check_cells(t: RawTable, spec: TableSpec, mapping: Mapping, role_map: dict[str, tuple[str, ...]],
                 today: int, skip: frozenset[str] = frozenset()) -> tuple[pd.DataFrame, list[Check]]:
    """Type-check every declared column; returns parsed columns and the failing checks.

    Each check is a boolean mask of failing rows and a function giving
    the reason for one row; only failing rows are visited in Python (see
    :func:`_reject_failing`). Columns in ``skip`` were checked already (the
    long export's columns shared by incidents and involvements).
    """
    df = t.df
    n = len(df)
    checks: list[Check] = []
    parsed = pd.DataFrame(index=df.index)
    for col in spec.columns:
        if col.name not in df.columns:
            continue
        s = _stripped(_text(df[col.name]))
        df[col.name] = s
        raw = s  # for messages
        if col.name in skip:
            if col.kind == "date":
                days, _, present, _ = parse_dates_why(s)
                parsed[col.name], parsed[col.name + "__present"] = days, present
            elif col.kind == "enum" and col.name != "role":
                parsed[col.name] = s.str.lower()
            else:
                parsed[col.name] = s
            continue
        if col.kind in ("id", "text"):
            parsed[col.name] = s
            if col.kind == "id":
                checks.append(((s == "").to_numpy(dtype=bool), col.name, _Reason(f"{col.name} is empty")))
                null = s.str.lower().isin(NULL_MARKERS).to_numpy(dtype=bool)
                checks.append((null, col.name, _Reason(f"{col.name} ", raw,
                                                       f" is a null marker, not an ID (the export left {col.name} empty)")))
        elif col.kind == "date":
            days, ok, present, why = parse_dates_why(s)
            parsed[col.name] = days
            parsed[col.name + "__present"] = present
            checks.append((~ok, col.name, _Reason(f"{col.name} ", raw, (why, _DATE_SUFFIXES))))
            if col.required:
                checks.append((~present, col.name, _Reason(f"{col.name} is empty")))
            if col.name == spec.date_column:
                future = ok & present & (days > today)
                checks.append((future, col.name, _Reason(f"dated in the future: {col.name} ", raw,
                                                         f" is after today ({day_to_iso(today)})")))
        elif col.kind == "bool":
            v, ok = parse_bools(s, mapping.booleans.get("true", ()), mapping.booleans.get("false", ()))
            parsed[col.name] = v
            checks.append((~ok, col.name, _Reason(f"{col.name} ", raw, " is not a boolean (true/false, 1/0, yes/no)")))
        elif col.kind in ("float", "int"):
            present = (s != "").to_numpy(dtype=bool)
            vals = _numbers(s)
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
            checks.append((~ok, col.name, _Reason(f"{col.name} ", raw, f" is not {kind}")))
            if col.required:
                checks.append((~present, col.name, _Reason(f"{col.name} is empty")))
            if col.lo is not None and col.hi is not None:
                checks.append((ok & present & ~rng, col.name, _Reason(f"{col.name} ", raw,
                                                                      f" is outside {col.lo:g}..{col.hi:g}")))
        elif col.kind == "code":
            low = s.str.lower()
            parsed[col.name] = low
            empty = (low == "").to_numpy(dtype=bool)
            if col.required:
                checks.append((empty, col.name, _Reason(f"{col.name} is empty")))
            bad = ~empty & ~low.str.fullmatch(_CODE).fillna(False).to_numpy(dtype=bool)
            checks.append((bad, col.name, _Reason(f"{col.name} ", raw, " is not a code (letters, digits and "
                                                  "underscores, starting with a letter, e.g. call_in_attended)")))
        elif col.kind == "enum":
            low = s.str.lower()
            codes, uniq = _factorize(low)
            if col.name == "role":
                # role codes map to one or more roles (expanded later); factorise
                # first so the lookup runs once per distinct code
                table = [role_map.get(u, (u,) if u in col.choices else None) for u in uniq]
                mapped = np.empty(len(table), dtype=object)
                mapped[:] = table
                vals = mapped[codes] if n else np.empty(0, dtype=object)
                parsed[col.name] = vals
                parsed[col.name + "__code"] = codes        # each row's distinct code, into attrs["role_table"]
                parsed.attrs["role_table"] = mapped
                bad = np.fromiter((x is None for x in mapped), bool, len(mapped))[codes] if n else np.zeros(0, bool)
                checks.append((bad, col.name, _Reason("role ", raw, f" is not a known role ({', '.join(col.choices)}); "
                                                      "map records-system codes in mapping.yaml")))
            else:
                okset = set(col.choices) | ({""} if not col.required else set())
                ok = np.fromiter((u in okset for u in uniq), bool, len(uniq))[codes] if n else np.zeros(0, bool)
                parsed[col.name] = low
                checks.append((~ok, col.name, _Reason(f"{col.name} ", raw, f" is not one of {', '.join(col.choices)}")))
    return parsed, checks


def _take(s: pd.Series, idx: np.ndarray) -> pd.Series:
    """Rows ``idx`` of a text column as a ``str`` column (Arrow take: no Python strings made);
    an empty one holds plain objects, as a frame built from no strings does."""
    if not len(idx):
        return pd.Series([], dtype=object)
    return s.take(np.asarray(idx, dtype=np.int64)).astype("str").reset_index(drop=True)


def _iso_days(days: np.ndarray) -> pd.Series:
    """Days since 1970-01-01 as ``YYYY-MM-DD`` text, each distinct day formatted once."""
    u, inv = np.unique(np.asarray(days, dtype=np.int64), return_inverse=True)
    txt = pa.array((EPOCH + u.astype("timedelta64[D]")).astype(str).tolist(), pa.string())
    return pd.Series(pd.array(txt.take(pa.array(inv.astype(np.int64))), dtype="str"))


def _ranks(s: pd.Series) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """(codes, rank of each code, distinct values): ``rank[codes]`` orders the column as a sort of its
    text does."""
    enc = pc.dictionary_encode(pc.fill_null(text_array(s), "")).combine_chunks()
    order = pc.array_sort_indices(enc.dictionary).to_numpy(zero_copy_only=False)
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    return enc.indices.to_numpy(zero_copy_only=False).astype(np.int64), rank, enc.dictionary


def _stripped(s: pd.Series) -> pd.Series:
    """The column with surrounding whitespace trimmed and nulls empty; itself when nothing changes
    (most columns: no copy of their text is made)."""
    arr = text_array(s)
    if arr.null_count == 0 and len(arr):
        # trimming only removes characters: the same total length means nothing was trimmed
        same = pc.sum(pc.binary_length(pc.utf8_trim_whitespace(arr))).as_py() == pc.sum(pc.binary_length(arr)).as_py()
        if same:
            return s
    return s.str.strip().fillna("")


def _release(t: RawTable) -> None:
    """Drop a table's cells once every check that could reject one of its rows is done (and hand
    Arrow's freed memory back, so the next tables reuse it rather than grow the process)."""
    t.df = t.df.iloc[:0]
    pa.default_memory_pool().release_unused()


def _factorize(s: pd.Series) -> tuple[np.ndarray, list]:
    """Codes and distinct values of a text column, in order of first appearance (as pd.factorize).

    >>> _factorize(pd.Series(["b", "a", "b"], dtype="string[pyarrow]"))
    (array([0, 1, 0]), ['b', 'a'])
    """
    enc = pc.dictionary_encode(pc.fill_null(text_array(s), "")).combine_chunks()
    return enc.indices.to_numpy(zero_copy_only=False).astype(np.int64), enc.dictionary.to_pylist()


def _numbers(s: pd.Series) -> np.ndarray:
    """Text to float64, NaN where empty or not a number (as ``pd.to_numeric(errors="coerce")``).

    Arrow parses the column at once; a column holding anything Arrow refuses is parsed by pandas.

    >>> _numbers(pd.Series(["1.5", "", "-0"], dtype="string[pyarrow]")).tolist()
    [1.5, nan, 0.0]
    >>> _numbers(pd.Series(["1.5", "x"], dtype="string[pyarrow]")).tolist()
    [1.5, nan]
    """
    arr = text_array(s)
    try:
        vals = pc.cast(pc.if_else(pc.equal(arr, ""), None, arr), pa.float64())
        return vals.to_numpy(zero_copy_only=False).astype(np.float64) + 0.0     # + 0.0: -0 reads 0, as pandas
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pd.to_numeric(s.where(s != "", None), errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _reject_failing(t: RawTable, rej: _Rejects, checks: list[Check]) -> np.ndarray:
    """Reject each row failing any check, once, with all its reasons; returns the valid mask."""
    n = len(t.df)
    bad_any = np.zeros(n, bool)
    for m, _, _ in checks:
        bad_any |= m
    bad_idx = np.flatnonzero(bad_any)
    if not bad_idx.size:
        return ~bad_any
    # each check's reasons for its failing rows at once; a row's reasons joined in check order
    pos = np.full(n, -1, np.int64)
    pos[bad_idx] = np.arange(len(bad_idx))
    cols = np.full(len(bad_idx), None, dtype=object)
    reasons = np.full(len(bad_idx), None, dtype=object)
    for m, c, why in checks:
        rows = np.flatnonzero(m)
        if not rows.size:
            continue
        r = why.at(rows)
        p = pos[rows]
        cur = reasons[p]
        new = cur == None        # noqa: E711 (elementwise)
        cols[p[new]] = c
        reasons[p[new]] = r[new]
        reasons[p[~new]] = cur[~new] + "; " + r[~new]
    rej.add(t, bad_idx, cols, reasons)
    return ~bad_any


def _dedupe(t: RawTable, keys: pd.DataFrame, idx: np.ndarray, rej: _Rejects, what: str) -> np.ndarray:
    """Keep the first row of each key among ``idx``; reject later ones naming the first line."""
    if not len(idx):
        return idx
    key = np.zeros(len(idx), np.int64)
    for c in keys.columns:                     # one integer per distinct key (codes combined)
        codes, uniq = _factorize(keys[c].take(idx))
        key = key * max(len(uniq), 1) + codes
        if len(keys.columns) > 1:              # keep the combined codes small
            key = pd.factorize(key)[0].astype(np.int64)
    uk, first_of = np.unique(key, return_index=True)
    dup = np.ones(len(idx), bool)
    dup[first_of] = False
    if dup.any():
        d_idx = idx[dup]
        f_line = t.lines[idx[first_of[np.searchsorted(uk, key[dup])]]]
        take = pa.array(d_idx)
        parts = [pc.cast(pc.fill_null(text_array(keys[c]).take(take), ""), pa.large_string()) for c in keys.columns]
        joined = pc.binary_join_element_wise(*parts, pa.scalar("/", pa.large_string())) if len(parts) > 1 else parts[0]
        reasons = (f"duplicate {what} " + clip_many(joined) + ": first given on line "
                   + f_line.astype(np.int64).astype(str).astype(object))
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
        t.nested = [ren.get(c, c) for c in t.nested]
    for col in t.nested:
        if spec.col(col) is not None:
            raise InputError(f"is a nested Parquet column (a list, struct or map); {name}.{col} must hold one "
                             "value per row", file=path.name, column=col)
    for col, value in mapping.constants_for(name).items():
        if col in t.df.columns:
            raise InputError(f"the mapping gives column {col} the constant {clip(value)}, but the file has a "
                             f"column {col} too; remove one of them", file=path.name, line=1, column=col)
        t.df[col] = pd.Series([value] * len(t.df), dtype="string[pyarrow]")
    missing = [c for c in spec.required if c not in t.df.columns]
    if missing and len(t.header) == 1 and any(sep in t.header[0] for sep in ("\t", ";", "|")):
        sep = next(s for s in ("\t", ";", "|") if s in t.header[0])
        raise InputError(
            f"looks {'tab' if sep == chr(9) else repr(sep)}-separated; fdnet reads comma-separated CSV "
            "(re-export as CSV, or save as Parquet)", file=path.name, line=1)
    if missing:
        found = ", ".join(t.header)
        raise InputError(
            f"is missing required column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(found: {found if len(found) <= 300 else found[:300] + '…'}); column names are matched "
            "case-insensitively, and mapping.yaml can map other names", file=path.name, line=1, column=missing[0])
    return t


def _check_constants(mapping: Mapping, where: str, today: int) -> None:
    """Each constant the mapping gives must be a valid value of its column (else exit 2 naming it)."""
    role_map = mapping.role_map()
    for path, table, col, value in mapping.constants():
        spec = TABLES[table]
        c = spec.col(col)
        df = pd.DataFrame({col: pd.Series([value], dtype="string[pyarrow]")})
        dummy = RawTable(table, Path(where), "", df, np.array([0]), [col], 1)
        _, checks = _check_cells(dummy, spec, mapping, role_map, today)
        bad = [why(0) for m, _, why in checks if m[0]]
        if bad:
            raise InputError(f"invalid mapping: {path}: {'; '.join(bad)}", file=where)
        if c.kind == "id":   # pragma: no cover - refused by the mapping model already
            raise InputError(f"invalid mapping: {path}: an ID column cannot be a constant", file=where)


def _confusables(namespaces: dict[str, dict[str, np.ndarray]], distinct=frozenset()) -> list[dict]:
    """Groups of distinct IDs that look the same: equal after NFKC, without invisible characters.

    ``namespaces`` maps an ID kind (``person_id``, ``incident_id``,
    ``group``) to the IDs of each table holding it. The comparison key is
    Unicode NFKC (which folds NFC/NFD forms, full-width letters and digits,
    ligatures, non-breaking spaces) with format characters (zero-width space
    and joiners, soft hyphen, byte-order mark: category Cf) removed and
    whitespace trimmed; an ID of digits only also loses its leading zeros
    (``0010`` and ``10``: a spreadsheet or a numeric Parquet column drops
    them). IDs are never merged: the groups are reported. ``distinct`` names the
    ``(kind, table)`` arrays known to hold each ID once (no hashing needed for them).

    >>> f = _confusables({"person_id": {"involvements": np.array(["P1", "P\\u200b1", "Ｐ１", "Q"], dtype=object)}})
    >>> f[0]["kind"], f[0]["groups"][0]["ids"]
    ('confusable_ids', ['P1', 'P\\u200b1', 'Ｐ１'])
    >>> _confusables({"person_id": {"persons": np.array(["0010"], dtype=object),
    ...                             "involvements": np.array(["10", "0"], dtype=object)}})[0]["groups"][0]["tables"]
    {'0010': ['persons'], '10': ['involvements']}
    """
    out = []
    for kind, tables in namespaces.items():
        tables = {t: _large_text(a) for t, a in tables.items()}
        arrays = [a for a in tables.values() if len(a)]
        if not arrays:
            continue
        # the distinct IDs, looked at as Arrow text: no Python string per ID
        if len(arrays) == 1 and all((kind, t) in distinct for t, a in tables.items() if len(a)):
            uniq = arrays[0].combine_chunks()                  # already distinct (deduplicated)
        else:
            uniq = pc.unique(pa.chunked_array([c for a in arrays for c in a.chunks], pa.large_string()))
        odd = ~pc.string_is_ascii(uniq).to_numpy(zero_copy_only=False)
        odd |= pc.match_substring_regex(uniq, r"^0+[0-9]+$").to_numpy(zero_copy_only=False)
        if odd.any():
            key = pc.utf8_trim_whitespace(pc.replace_substring_regex(pc.utf8_normalize(uniq, "NFKC"), r"\p{Cf}", ""))
            key = pc.replace_substring_regex(key, r"^0+([0-9]+)$", r"\1")
        else:
            key = pc.utf8_trim_whitespace(uniq)    # plain ASCII, no leading zeros: the folding is the identity
        what = "people" if kind == "person_id" else "values"
        if odd.any():
            near = pc.is_in(key, value_set=pc.unique(key.filter(pa.array(odd)))).to_numpy(zero_copy_only=False)
            f = _id_groups(kind, tables, _objects(uniq.filter(pa.array(near))), _objects(key.filter(pa.array(near))),
                           odd[near], "confusable_ids",
                           "differ only in Unicode form (NFC/NFD, full-width characters or invisible characters) "
                           f"or in leading zeros; fdnet keeps them apart as different {what}")
            if f:
                out.append(f)
        # IDs are case-sensitive; IDs equal but for case (after the folding above) are likely duplicates too;
        # only groups whose members differ in case, not merely in the Unicode form reported above
        folded = pc.utf8_lower(key)
        # distinct IDs have distinct keys unless folded above
        folded_u = pc.utf8_lower(pc.unique(key)) if odd.any() else folded
        if pc.count_distinct(folded_u).as_py() == len(folded_u):
            multi_f = pa.array([], pa.large_string())      # no two keys equal but for case
        else:
            counts = pc.value_counts(folded_u)
            multi_f = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
            del counts
        del folded_u
        if len(multi_f):
            multi = pc.is_in(folded, value_set=multi_f).to_numpy(zero_copy_only=False)
            sel = pa.array(multi)
            f = _id_groups(kind, tables, _objects(uniq.filter(sel)), _objects(folded.filter(sel)),
                           np.ones(int(multi.sum()), bool), "case_variant_ids",
                           f"differ only in upper and lower case (IDs are case-sensitive); fdnet keeps them apart "
                           f"as different {what}")
            if f:
                out.append(f)
    return out


def _large_text(a) -> pa.ChunkedArray:
    """IDs (an object array, a text column or an Arrow array) as a large-string ChunkedArray."""
    if isinstance(a, pd.Series):
        a = text_array(a)
    elif isinstance(a, np.ndarray):
        a = pa.array(a.tolist(), pa.large_string())
    if isinstance(a, pa.Array):
        a = pa.chunked_array([a])
    return pc.cast(a, pa.large_string()) if a.type != pa.large_string() else a


def _objects(a) -> np.ndarray:
    return np.asarray(a.to_pylist(), dtype=object)


def _id_groups(kind: str, tables: dict[str, pa.ChunkedArray], uniq: np.ndarray, keys: np.ndarray,
               candidate: np.ndarray, finding: str, differ: str) -> dict | None:
    """One finding: the groups of distinct IDs sharing a key, among keys of ``candidate`` IDs."""
    df = pd.DataFrame({"id": uniq, "key": keys})
    df = df[df["key"].isin(set(df["key"][candidate]))]
    df = df[df.groupby("key")["id"].transform("size") > 1].sort_values(["key", "id"], kind="stable")
    if not len(df):
        return None
    n = int(df["key"].nunique())
    shown = df[df["key"].isin(sorted(set(df["key"]))[:MAX_FINDING_GROUPS])]
    shown_ids = pa.array(shown["id"].tolist(), pa.large_string())
    sets = {t: set(a.filter(pc.is_in(a, value_set=shown_ids)).to_pylist()) for t, a in tables.items()}
    groups = []
    for k, g in shown.groupby("key", sort=True):
        ids = g["id"].tolist()
        groups.append({"key": k, "ids": ids, "escaped": [ascii(i) for i in ids],
                       "tables": {i: [t for t in tables if i in sets[t]] for i in ids}})
    sample = "; ".join(" / ".join(g["escaped"]) for g in groups[:3])
    return {
        "kind": finding, "column": kind, "n_groups": n,
        "groups": groups, "groups_omitted": max(0, n - MAX_FINDING_GROUPS),
        "message": (f"{n} group{'s' if n > 1 else ''} of {kind} values {differ if n > 1 else 'differs' + differ[6:]}; "
                    "they are likely duplicates "
                    f"to fix in the records system (fdnet never merges them): {sample}" + ("; …" if n > 3 else "")),
    }


def load_records(data_dir: str | Path, as_of: str | None = None,
                 mapping_path: str | Path | None = None, *, today: str | None = None) -> Records:
    """Read and validate an input folder (CONTRACT.md section 1).

    ``as_of`` (YYYY-MM-DD) defaults to the latest valid incident date;
    incidents dated after it, their involvements, and group and relation
    rows dated after it are set aside as if absent (counted as
    ``after_as_of`` in the manifest). Rows dated after ``today`` (the day of
    the run, default the machine's date) are rejected as dated in the
    future, whatever ``as_of`` says.
    """
    data_dir = Path(data_dir)
    if not data_dir.exists():
        raise InputError("data folder does not exist", file=str(data_dir))
    if not data_dir.is_dir():
        raise InputError("is not a folder (expected a folder of input tables)", file=str(data_dir))
    now = today_day(today)
    mapping = load_mapping(data_dir, Path(mapping_path) if mapping_path else None)
    _check_constants(mapping, str(mapping_file(data_dir, Path(mapping_path) if mapping_path else None)), now)
    role_map = mapping.role_map()
    listing: dict[str, Path] = {}
    for p in sorted(data_dir.iterdir()):
        low = p.name.lower()
        if low in listing and any(low == f"{t}.{ext}" for t in TABLES for ext in ("csv", "parquet")):
            # table files are found case-insensitively: two spellings would leave one unread
            raise InputError(f"both {listing[low].name} and {p.name} are present (names of input tables are "
                             "matched case-insensitively); keep one", file=str(data_dir))
        listing[low] = p
    rej = _Rejects()
    notes: list[str] = []
    findings: list[dict] = []
    inputs: dict[str, dict] = {}

    # --- read ------------------------------------------------------------
    raws: dict[str, RawTable] = {}
    paths: dict[Path, str] = {}

    def claim(p: Path, table: str) -> None:
        key = p.resolve()
        if key in paths:
            raise InputError(f"is named for both {paths[key]} and {table}; one file can hold one table "
                             "(use the mapping's `long` key for one export holding incidents and involvements)",
                             file=p.name)
        paths[key] = table
        if p.is_symlink() or p.resolve().parent != data_dir.resolve():
            try:
                p.resolve().relative_to(data_dir.resolve())
            except ValueError:
                notes.append(f"{p.name} is a symbolic link to {p.resolve()}, outside the data folder; "
                             "fdnet read it there (the manifest records that path and its hash)")

    if mapping.long:
        p = data_dir / (mapping.long.file or "")
        if not mapping.long.file or not p.exists():
            raise InputError(f"the mapping's long export {clip(mapping.long.file)} is not in the data folder",
                             file=str(data_dir))
        claim(p, "the long export")
        t = _prepare(data_dir, "incidents", p, mapping)
        missing = [c for c in TABLES["involvements"].required if c not in t.df.columns]
        if missing:
            raise InputError(f"is missing required column {missing[0]} for the long export",
                             file=p.name, line=1, column=missing[0])
        t.name = "long_export"
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
        claim(p, name)
        raws[name] = _prepare(data_dir, name, p, mapping)
    for t in {id(t): t for t in raws.values()}.values():
        rej.add_bad(t)

    long = mapping.long is not None
    # --- incidents -------------------------------------------------------
    ti = raws["incidents"]
    pi, checks = _check_cells(ti, TABLES["incidents"], mapping, role_map, now)
    if long:
        # one rejected row per export row, with the incident's and the involvement's reasons
        shared = frozenset(c.name for c in TABLES["incidents"].columns)
        pv, checks_v = _check_cells(ti, TABLES["involvements"], mapping, role_map, now, skip=shared)
        checks = checks + checks_v
    vi = _reject_failing(ti, rej, checks)
    del checks                      # (their messages hold the cells: freed as soon as spent)
    idx = np.flatnonzero(vi)
    if len(idx) == 0 and ti.n_read:
        raise InputError("has no valid incident rows: see the first problems in rejected rows: "
                         + "; ".join(rej.first_reasons()), file=ti.path.name)
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
            raise InputError(f"--as-of {clip(as_of)} is not a date (YYYY-MM-DD)") from None
    days_i = pi["date"].to_numpy()
    after = idx[days_i[idx] > as_of_day]
    idx = idx[days_i[idx] <= as_of_day]
    after_ids = _take(ti.df["incident_id"], after)
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
                    [f"incident fields differ from line {first_line[k]}, the first row of incident {clip(k)}"
                     for k in ti.df["incident_id"].to_numpy()[bad]])
            idx = idx[agree]
        inc_idx = idx[first[agree]]
    else:
        inc_idx = _dedupe(ti, ti.df[["incident_id"]], idx, rej, "incident_id")
    cols = {c.name for c in TABLES["incidents"].columns} & set(ti.df.columns)
    inc = pd.DataFrame({
        "incident_id": _take(ti.df["incident_id"], inc_idx),
        "day": days_i[inc_idx].astype(np.int32),
        "line": ti.lines[inc_idx],
    })
    inc["date"] = _iso_days(inc["day"].to_numpy())
    for b in ("gun", "fatal", "violent"):
        inc[b] = pi[b].to_numpy()[inc_idx] if b in cols else False
    for c in ("offense", "nibrs_code", "district"):
        inc[c] = _take(ti.df[c], inc_idx) if c in cols else ""
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
    known = text_array(inc["incident_id"])
    if not long:       # the incidents' cells are spent but for their IDs (named in involvements' messages)
        ti.df = ti.df[["incident_id"]]

    # --- involvements ------------------------------------------------------
    tv = raws["involvements"]
    if long:
        vv_idx = idx  # rows of the long export that survived the incident checks
        pv_role = pv["role"]
    else:
        pv, checks = _check_cells(tv, TABLES["involvements"], mapping, role_map, now)
        vv = _reject_failing(tv, rej, checks)
        del checks
        vv_idx = np.flatnonzero(vv)
        pv_role = pv["role"]
        if tv.n_read == 0:
            raise InputError("has a header but no data rows", file=tv.path.name)
        ids = text_array(tv.df["incident_id"]).take(pa.array(vv_idx))
        is_after = (pc.is_in(ids, value_set=text_array(after_ids).combine_chunks()).to_numpy(zero_copy_only=False)
                    if len(after_ids) else np.zeros(len(ids), bool))
        inc_pos = pc.index_in(ids, value_set=known.combine_chunks())
        in_known = pc.is_valid(inc_pos).to_numpy(zero_copy_only=False)
        inc_pos = inc_pos.filter(pa.array(in_known)).to_numpy(zero_copy_only=False).astype(np.int64)
        unknown = vv_idx[~in_known & ~is_after]
        if len(unknown):
            unk = text_array(tv.df["incident_id"]).take(pa.array(unknown))
            was_rejected = pc.is_in(unk, value_set=text_array(ti.df["incident_id"]).filter(
                pa.array(~vi)).combine_chunks()).to_numpy(zero_copy_only=False)
            rej.add(tv, unknown, "incident_id",
                    "incident_id " + clip_many(unk) + f" is not in {ti.path.name}"
                    + np.where(was_rejected, " (its row there was rejected)", "").astype(object))
        after_v = int(is_after.sum())
        vv_idx = vv_idx[in_known]
    # one slot per involvement (a code mapped to several roles gives several, on the same line);
    # the table is made once, from the slots kept, in order
    table = pv.attrs["role_table"]
    rcode = pv["role__code"].to_numpy()[vv_idx]
    used_codes = set(np.unique(rcode).tolist())
    roles_sorted = sorted(ROLES)
    if any(len(table[c]) > 1 for c in used_codes):
        ex = pd.DataFrame({"_row": vv_idx, "role": pv["role"].to_numpy()[vv_idx]}).explode("role", ignore_index=True)
        rows_all = ex["_row"].to_numpy(dtype=np.int64)
        role_arr = pa.array(ex["role"].astype(str).tolist(), pa.string())
        r_rank = np.asarray(pd.Categorical(ex["role"].astype("str"), categories=roles_sorted).codes, dtype=np.int64)
        inc_rank = None
        del ex
    else:
        # one role per code (the distinct codes are few: this runs once per code, not per row)
        first_role = [(table[c][0] if c in used_codes else "") for c in range(len(table))]
        rows_all = vv_idx
        role_arr = pa.array(first_role, pa.string()).take(pa.array(rcode))
        r_rank = np.array([roles_sorted.index(r) if r in roles_sorted else 0 for r in first_role],
                          dtype=np.int64)[rcode] if len(table) else np.zeros(len(rows_all), np.int64)
        inc_rank = None if long else inc_pos
    # one integer key per involvement, ordered as (incident_id, person_id, role) sort as text
    if inc_rank is None:
        inc_rank = pc.index_in(text_array(tv.df["incident_id"]).take(pa.array(rows_all)),
                               value_set=known.combine_chunks()).to_numpy(zero_copy_only=False).astype(np.int64)
    p_codes, p_rank, p_distinct = _ranks(tv.df["person_id"])   # ranks among all rows' IDs: the same order
    key = (inc_rank * max(len(p_rank), 1) + p_rank[p_codes[rows_all]]) * len(roles_sorted) + r_rank
    del inc_rank, p_rank, r_rank
    uk, first_of = np.unique(key, return_index=True)
    dup = np.ones(len(key), bool)
    dup[first_of] = False
    if dup.any():
        d_idx = np.flatnonzero(dup)
        rows = rows_all[d_idx]
        # a row whose expanded roles are all duplicates is rejected; partial duplicates just merge
        full = ~np.isin(rows, rows_all[~dup])
        if full.any():
            f_line = tv.lines[rows_all[first_of[np.searchsorted(uk, key[d_idx[full]])]]]
            fr = rows[full]
            frs = pa.array(fr)
            rej.add(tv, fr, "person_id",
                    "duplicate involvement " + clip_many(text_array(tv.df["incident_id"]).take(frs)) + "/"
                    + clip_many(text_array(tv.df["person_id"]).take(frs)) + "/"
                    + np.asarray(role_arr.take(pa.array(d_idx[full])).to_numpy(zero_copy_only=False), dtype=object)
                    + ": first given on line " + f_line.astype(np.int64).astype(str).astype(object))
    del uk, first_of
    keep = np.flatnonzero(~dup)
    keep = keep[np.argsort(key[keep], kind="stable")]
    del key, dup
    rows_kept = rows_all[keep]
    # the distinct people of the kept involvements (for the confusable-ID check, with no hashing)
    inv_people = p_distinct.filter(pa.array(np.bincount(p_codes[rows_kept], minlength=len(p_distinct)) > 0))
    del p_codes, p_distinct
    inv = pd.DataFrame({
        "incident_id": _take(tv.df["incident_id"], rows_kept),
        "person_id": _take(tv.df["person_id"], rows_kept),
        "role": (pd.Series(pd.array(role_arr.take(pa.array(keep)), dtype="str")) if len(keep)
                 else pd.Series([], dtype=object)),
        "line": tv.lines[rows_kept],
    })
    if not len(inv):      # as before: an empty table's text columns are plain objects
        inv = inv.astype({"incident_id": object, "person_id": object, "role": object})

    # the raw incidents and involvements are spent (their rejected rows are kept as text)
    del pi, pv, pv_role, table, rcode
    _release(ti)
    _release(tv)

    # --- optional tables ---------------------------------------------------------
    persons = groups = relations = None
    extra_after: dict[str, int] = {}
    if "persons" in raws:
        t = raws["persons"]
        p, checks = _check_cells(t, TABLES["persons"], mapping, role_map, now)
        ok = _reject_failing(t, rej, checks)
        keep = _dedupe(t, t.df[["person_id"]], np.flatnonzero(ok), rej, "person_id")
        persons = _typed_columns(t, p, TABLES["persons"], keep)
        persons.insert(1, "line", t.lines[keep])
        del p, checks
        _release(t)
        persons = _unborn(persons, as_of_day, t.path.name, findings, notes)
        persons = persons.sort_values("person_id", kind="stable").reset_index(drop=True)
    extra: dict[str, pd.DataFrame] = {}
    for name in ("groups", "group_relations", "interventions", "place_features"):
        if name not in raws:
            continue
        t = raws[name]
        spec = TABLES[name]
        p, checks = _check_cells(t, spec, mapping, role_map, now)
        ok = _reject_failing(t, rej, checks)
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
        key = t.df[[k for k in spec.key if k in t.df.columns]]      # an optional key column may be absent
        if name in ("interventions", "place_features"):
            # the key as read: kinds case-folded, dates as days (2025-01-02 and 2025-01-02T10:00 are one date)
            key = pd.DataFrame({k: ((_iso_days(p[k].to_numpy()).where(p[k + "__present"].to_numpy(), "")
                                     if spec.col(k).kind == "date" else p[k]) if k in p else key[k])
                                for k in key.columns}, index=key.index)
        keep = _dedupe(t, key, ok_idx, rej, "row")
        if name in ("groups", "group_relations"):
            out = pd.DataFrame({c: _take(p[c] if TABLES[name].col(c).kind == "enum" else t.df[c], keep)
                                for c in [c.name for c in spec.columns] if c in t.df.columns})
        else:
            out = _typed_columns(t, p, spec, keep)
        for c in [c.name for c in spec.columns]:
            if c not in out:
                out[c] = np.nan if spec.col(c).kind == "float" else ""
        out["line"] = t.lines[keep]
        if name == "groups":
            groups = out.sort_values(["person_id", "group"], kind="stable").reset_index(drop=True)
        elif name == "group_relations":
            relations = out.sort_values(["group_a", "group_b", "relation"], kind="stable").reset_index(drop=True)
        else:
            extra[name] = out.sort_values(list(spec.key)[:3] if name == "interventions" else ["feature_id"],
                                          kind="stable").reset_index(drop=True)
        _release(t)
    if "interventions" in extra:
        local = extra["interventions"]["kind"]
        local = local[~local.isin(INTERVENTION_KINDS)]
        if len(local):
            counts = local.value_counts().sort_index()
            notes.append("interventions: local kind" + ("s" if len(counts) > 1 else "") + " (not one of the "
                         "documented kinds, kept as given; docs/data-format.md asks that each be documented with the data): "
                         + ", ".join(f"{k} ({int(v)} row{'s' if v > 1 else ''})" for k, v in counts.items()))

    # --- data quality ------------------------------------------------------
    pa.default_memory_pool().release_unused()
    spaces: dict[str, dict] = {"person_id": {}, "incident_id": {}, "group": {}}
    spaces["incident_id"]["incidents"] = inc["incident_id"]
    spaces["person_id"]["involvements"] = inv_people
    if persons is not None:
        spaces["person_id"]["persons"] = persons["person_id"]
    if "interventions" in extra:    # evaluate joins them to the records by person_id
        spaces["person_id"]["interventions"] = extra["interventions"]["person_id"]
    if groups is not None:
        spaces["person_id"]["groups"] = groups["person_id"]
        spaces["group"]["groups"] = groups["group"]
    if relations is not None:
        spaces["group"]["group_relations"] = np.concatenate(
            [relations["group_a"].to_numpy(dtype=object), relations["group_b"].to_numpy(dtype=object)])
    distinct = {("incident_id", "incidents"), ("person_id", "involvements"), ("person_id", "persons")}
    for f in _confusables(spaces, distinct):
        findings.append(f)
        notes.append(f"data quality: {f['message']}")

    # --- counts: read == used + rejected, one rejected row per input row ----------------
    rejected = rej.frame()
    per_table = rejected["_table"].value_counts().to_dict() if len(rejected) else {}
    if len(rejected):
        fut = rejected[rejected["reason"].str.contains("dated in the future", regex=False)]
        if len(fut):
            by_file = fut.groupby("file", sort=True)["line"].agg(["size", "first"])
            notes.append(f"{len(fut)} row{'s' if len(fut) > 1 else ''} dated after today ({day_to_iso(now)}) "
                         "rejected as dated in the future (a mistyped year?): "
                         + ", ".join(f"{f} {int(r['size'])} (first on line {int(r['first'])})"
                                     for f, r in by_file.iterrows()))
    rejected = rejected.drop(columns="_table")
    seen = set()
    for name, t in raws.items():
        key = t.name
        if key in seen:
            continue
        seen.add(key)
        n_rej = int(per_table.get(key, 0))
        entry = {"path": str(t.path.resolve()), "sha256": t.sha256,
                 "rows": {"read": t.n_read, "used": t.n_read - n_rej, "rejected": n_rej}}
        if name == "incidents":
            entry["rows"]["after_as_of"] = len(after)
        elif name == "involvements" and not long:
            entry["rows"]["after_as_of"] = after_v
        elif name in extra_after:
            entry["rows"]["after_as_of"] = extra_after[name]
        inputs[key] = entry
    pa.default_memory_pool().release_unused()      # the next stages start from what Records holds
    return Records(
        incidents=inc, involvements=inv, persons=persons, groups=groups,
        group_relations=relations, as_of=day_to_iso(as_of_day), as_of_day=as_of_day,
        inputs=inputs, rejected=rejected, notes=notes, findings=findings, today=day_to_iso(now),
        interventions=extra.get("interventions"), place_features=extra.get("place_features"),
    )


def _typed_columns(t: RawTable, p: pd.DataFrame, spec: TableSpec, keep: np.ndarray) -> pd.DataFrame:
    """Rows ``keep`` of a checked table (persons, interventions, place_features), each column as its kind
    reads: dates as ISO days (empty when absent), numbers as floats, choices and codes case-folded, text
    and IDs trimmed."""
    out = pd.DataFrame(index=pd.RangeIndex(len(keep)))
    for c in spec.columns:
        if c.name not in t.df.columns:
            continue
        if c.kind == "date":
            v = p[c.name].to_numpy()[keep]
            out[c.name] = _iso_days(v).where(p[c.name + "__present"].to_numpy()[keep], "")
        elif c.kind in ("bool", "float", "int"):
            out[c.name] = p[c.name].to_numpy()[keep]
        else:       # text and IDs as checked (trimmed), choices and codes case-folded
            out[c.name] = _take(p[c.name], keep)
    return out


def _unborn(persons: pd.DataFrame, as_of_day: int, file: str, findings: list[dict], notes: list[str]) -> pd.DataFrame:
    """Birth dates (or years) after the as-of date give no age: blanked, and reported as a finding.

    The row itself is kept, so its deceased / incarcerated flags still apply.
    """
    late = np.zeros(len(persons), bool)
    if "birth_date" in persons:
        bd = persons["birth_date"].to_numpy(dtype=object)
        has = bd != ""
        day = np.full(len(bd), np.iinfo(np.int64).min)
        if has.any():
            day[has] = (np.asarray(bd[has], dtype="datetime64[D]") - EPOCH).astype(np.int64)
        late_d = has & (day > as_of_day)
        late |= late_d
    if "birth_year" in persons:
        as_of_year = int(day_to_iso(as_of_day)[:4])
        late_y = persons["birth_year"].to_numpy(dtype=float) > as_of_year
        late |= late_y
    if not late.any():
        return persons
    persons = persons.copy()
    ids = persons["person_id"].to_numpy(dtype=object)[late].tolist()
    lines = persons["line"].to_numpy()[late].tolist()
    if "birth_date" in persons:
        persons.loc[late, "birth_date"] = ""
    if "birth_year" in persons:
        persons.loc[late, "birth_year"] = np.nan
    n = len(ids)
    msg = (f"{n} person{'s' if n > 1 else ''} in {file} {'have' if n > 1 else 'has'} a birth date after the as-of "
           f"date ({day_to_iso(as_of_day)}); their age is taken as unknown (the rows are otherwise used): "
           + ", ".join(f"{clip(i)} (line {ln})" for i, ln in list(zip(ids, lines))[:5]) + ("…" if n > 5 else ""))
    findings.append({"kind": "birth_after_as_of", "message": msg, "file": file,
                     "person_ids": ids[:MAX_FINDING_GROUPS], "lines": [int(x) for x in lines[:MAX_FINDING_GROUPS]],
                     "count": n})
    notes.append(f"data quality: {msg}")
    return persons
