"""The one writer and reader of CSV files in the run folder and exports (CONTRACT.md section 3).

Every CSV fdnet writes is safe to open in a spreadsheet: a text cell that
would begin with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (a
formula to Excel, LibreOffice or Google Sheets) is written with a leading
apostrophe, the same way in every file. A text cell that already begins with
an apostrophe gets one more, so the reader can undo the escape exactly:
:func:`read_csv_table` gives back the raw values.

Only *text* is escaped. A column of numbers (an integer or float dtype) is
never touched, so ``-2`` stays a number a spreadsheet can sum; a text column
whose cells merely look like numbers (the person ID ``"-5"``) is escaped like
any other text. Tables read back as text (:func:`read_csv_table`) remember
which columns held only plain numbers in the file (``df.attrs["number_columns"]``)
so that re-writing them (pseudonymised exports) keeps numbers as numbers:
pass them to :func:`csv_bytes` as ``numbers=``.

>>> df = pd.DataFrame({"person_id": ["=HYPERLINK(1)", "P1", "'x", "-2"], "n": [1, -2, 3, 4]})
>>> print(csv_bytes(df).decode())
person_id,n
'=HYPERLINK(1),1
P1,-2
''x,3
'-2,4
<BLANKLINE>
>>> back = read_csv_table(csv_bytes(df))
>>> back["person_id"].tolist(), back.attrs["number_columns"]
(['=HYPERLINK(1)', 'P1', "'x", '-2'], ('n',))
>>> print(csv_bytes(back, numbers=back.attrs["number_columns"]).decode() == csv_bytes(df).decode())
True

The escaping is vectorised (pyarrow compute kernels, no Python code per
cell): about 0.1 s per million text cells each way.
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: first characters that make a spreadsheet read a cell as a formula (OWASP CSV injection)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_ESCAPED_STARTS = FORMULA_STARTS + ("'",)
_CLASS = "[=+\\-@\t\r']"
_NEEDS_ESCAPE = "^" + _CLASS          # RE2 (pyarrow) and Python re alike
_WAS_ESCAPED = "^'" + _CLASS
#: a plain number as fdnet writes it (what ``numbers=`` columns may hold unescaped)
NUMBER_PATTERN = r"^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$"
_NUMBER_RE = re.compile(NUMBER_PATTERN)
BOM = b"\xef\xbb\xbf"


def starts_like_formula(s: str) -> bool:
    """True when a spreadsheet would read ``s`` as a formula.

    >>> starts_like_formula("=1+1"), starts_like_formula("P1"), starts_like_formula("-5")
    (True, False, True)
    """
    return s.startswith(FORMULA_STARTS)


def escape_cell(s: str) -> str:
    """One text cell as :func:`csv_bytes` writes it (for code that builds a single value).

    >>> escape_cell('=HYPERLINK("http://x","y")'), escape_cell("P1"), escape_cell("'a")
    ('\\'=HYPERLINK("http://x","y")', 'P1', "''a")
    """
    return "'" + s if s.startswith(_ESCAPED_STARTS) else s


def _as_string_array(values) -> pa.ChunkedArray | pa.Array | None:
    """``values`` as an Arrow string array, or None when they are not all text (numbers, mixed)."""
    try:
        arr = pa.array(values, from_pandas=True) if not isinstance(values, (pa.Array, pa.ChunkedArray)) \
            else values
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return None
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        return arr
    return None


def _escape_arrow(arr, keep_numbers: bool = False):
    """Arrow string array with formula-like cells prefixed by an apostrophe (nulls stay null)."""
    if pa.types.is_dictionary(arr.type):
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if not (pa.types.is_string(arr.type.value_type) or pa.types.is_large_string(arr.type.value_type)):
            return arr
        return pa.DictionaryArray.from_arrays(arr.indices, _escape_arrow(arr.dictionary, keep_numbers))
    mask = _escape_mask(arr, keep_numbers)
    if not pc.any(mask).as_py():
        return arr
    return pc.if_else(mask, pc.utf8_replace_slice(arr, 0, 0, "'"), arr)


def _escape_mask(arr, keep_numbers: bool = False):
    mask = pc.match_substring_regex(arr, _NEEDS_ESCAPE)
    if keep_numbers:
        mask = pc.and_kleene(mask, pc.invert(pc.match_substring_regex(arr, NUMBER_PATTERN)))
    return mask


def _unescape_arrow(arr):
    """(unescaped array, mask of the cells changed) or (arr, None) when none was escaped."""
    mask = pc.match_substring_regex(arr, _WAS_ESCAPED)
    if not pc.any(mask).as_py():
        return arr, None
    return pc.if_else(mask, pc.utf8_slice_codeunits(arr, 1), arr), mask


def _from_arrow_like(values: pd.Series, arr, mask=None) -> pd.Series:
    """A Series like ``values`` (index, name, dtype) holding the Arrow strings ``arr``.

    For object columns only the cells under ``mask`` (an Arrow boolean array)
    are replaced, so untouched cells (and missing markers) stay the very objects
    they were, and no million Python strings are made for a handful of hits.
    """
    if values.dtype == object:
        out = values.copy()
        hit = pc.fill_null(mask, False).to_numpy(zero_copy_only=False) if mask is not None \
            else np.ones(len(values), dtype=bool)
        out[hit] = pc.filter(arr, pc.fill_null(mask, False)).to_numpy(zero_copy_only=False) \
            if mask is not None else arr.to_numpy(zero_copy_only=False)
        return out
    return pd.Series(pd.array(arr, dtype=values.dtype) if isinstance(values.dtype, pd.StringDtype)
                     else arr, index=values.index, name=values.name, dtype=values.dtype)


def neutralise(values: pd.Series, keep_numbers: bool = False) -> pd.Series:
    """Prefix an apostrophe to text values that a spreadsheet would run as a formula (vectorised).

    Non-text values (numbers, missing values) are never changed. With
    ``keep_numbers`` a text cell that is a plain number (``"-1.5"``) is kept
    as it is too: for columns of numbers stored as text.

    >>> neutralise(pd.Series(["=1+1", "ok", "@SUM(A1)", ""])).tolist()
    ["'=1+1", 'ok', "'@SUM(A1)", '']
    >>> neutralise(pd.Series([-1, 2])).tolist(), neutralise(pd.Series(["-1", "-x"]), keep_numbers=True).tolist()
    ([-1, 2], ['-1', "'-x"])
    >>> neutralise(pd.Series([-5, "-5", None], dtype=object)).tolist()   # mixed: only the text is escaped
    [-5, "'-5", None]
    """
    if values.dtype != object and not pd.api.types.is_string_dtype(values.dtype) \
            and not isinstance(values.dtype, pd.CategoricalDtype):
        return values
    if isinstance(values.dtype, pd.CategoricalDtype):
        cats = values.cat.categories
        if not pd.api.types.is_string_dtype(cats.dtype) and cats.dtype != object:
            return values
        return values.cat.rename_categories(neutralise(pd.Series(cats), keep_numbers).tolist())
    arr = _as_string_array(values)
    if arr is None:
        if values.dtype != object or not len(values):
            return values
        # mixed object column (text and numbers): escape the text cells only
        is_str = values.map(type, na_action="ignore").eq(str).to_numpy()
        if not is_str.any():
            return values
        out = values.copy()
        out[is_str] = neutralise(values[is_str].astype(str), keep_numbers).to_numpy()
        return out
    mask = _escape_mask(arr, keep_numbers)
    if not pc.any(mask).as_py():
        return values
    return _from_arrow_like(values, pc.if_else(mask, pc.utf8_replace_slice(arr, 0, 0, "'"), arr), mask)


def unneutralise(values: pd.Series) -> pd.Series:
    """Undo :func:`neutralise` on values read back from an fdnet CSV (vectorised).

    >>> unneutralise(pd.Series(["'=1+1", "''x", "'plain", "ok"])).tolist()
    ['=1+1', "'x", "'plain", 'ok']
    """
    arr = _as_string_array(values)
    if arr is None:
        return values
    new, mask = _unescape_arrow(arr)
    return values if mask is None else _from_arrow_like(values, new, mask)


def _header(columns: Iterable, eol: str) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator=eol, quoting=csv.QUOTE_MINIMAL).writerow(
        [escape_cell(str(c)) for c in columns])
    return buf.getvalue().encode("utf-8")


def _as_numbers(arr):
    """Text cells holding plain numbers as an Arrow int64/float64 array that writes back to the very same
    text (empty cells as nulls), or None when no such exact round trip exists."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = pc.cast(arr, pa.string())
    if not pc.all(pc.or_kleene(pc.equal(arr, ""), pc.match_substring_regex(arr, NUMBER_PATTERN))).as_py():
        return None
    vals = pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)
    for t in (pa.int64(), pa.float64()):
        try:
            num = pc.cast(vals, t)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        if pc.all(pc.equal(pc.fill_null(pc.cast(num, pa.string()), ""), arr)).as_py():
            return num
    return None


def _safe_table(df: pd.DataFrame, numbers: frozenset) -> pa.Table:
    """The frame as an Arrow table with every text column escaped."""
    cols = {}
    for i, c in enumerate(df.columns):
        col = df.iloc[:, i]
        try:
            arr = pa.array(col, from_pandas=True)
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            # mixed object column: text cells escaped, other values written as text
            col = neutralise(col, keep_numbers=c in numbers)
            arr = pa.array(col.where(col.isna(), col.astype(str)), from_pandas=True, type=pa.string())
        else:
            t = arr.type
            if c in numbers and (pa.types.is_string(t) or pa.types.is_large_string(t)):
                num = _as_numbers(arr)   # written bare, exactly as read (no quotes even when others need them)
                arr = num if num is not None else _escape_arrow(arr, keep_numbers=True)
            elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
                arr = _escape_arrow(arr)
        cols[f"c{i}"] = arr
    return pa.table(cols) if cols else pa.table({})


def csv_bytes(df: pd.DataFrame, numbers: Iterable[str] = (), eol: str = "\n", bom: bool = False) -> bytes:
    """Deterministic, spreadsheet-safe CSV: UTF-8, LF line ends, quoting only where needed.

    Written with pyarrow's CSV writer (10x faster than pandas here): booleans
    as true/false, floats in shortest round-trip form, missing values empty.
    Text columns are neutralised first (see the module docstring); numeric
    columns never are. ``numbers`` names text columns that hold numbers
    (as :func:`read_csv_table` gives them back): their cells that are plain
    numbers are written as they are, any other cell is still escaped.
    ``eol="\\r\\n"`` and ``bom=True`` give the Windows form (i2 exports).

    >>> csv_bytes(pd.DataFrame({"a": ["x", "y,z"], "b": ["-1", "-x"]}), numbers=["b"])
    b'a,b\\n"x","-1"\\n"y,z","\\'-x"\\n'
    """
    import pyarrow.csv as pacsv

    numbers = frozenset(numbers)
    numbers = frozenset(c for c in df.columns if c in numbers)
    header = _header(df.columns, eol)
    if len(df.columns) == 0:
        return (BOM if bom else b"") + header
    table = _safe_table(df, numbers)
    buf = io.BytesIO()
    opts = dict(include_header=False, eol=eol.encode("ascii"))
    try:
        # no quotes at all when no value needs them: the plain form people expect
        pacsv.write_csv(table, buf, write_options=pacsv.WriteOptions(quoting_style="none", **opts))
    except pa.ArrowInvalid:
        # some value holds a comma, quote or line break: quote every text value (RFC 4180)
        buf = io.BytesIO()
        pacsv.write_csv(table, buf, write_options=pacsv.WriteOptions(quoting_style="needed", **opts))
    return (BOM if bom else b"") + header + buf.getvalue()


class NeedsQuoting(Exception):
    """A value of the table holds a comma, quote or line break: the file must be written quoted."""


CHUNK_ROWS = 1 << 18


def csv_chunks(df: pd.DataFrame, *, quoting: str = "none", rows: int | None = None, header: bool = True,
               types: dict | None = None) -> Iterator[bytes]:
    """:func:`csv_bytes` of ``df`` in pieces of ``rows`` rows (the header first): joined, exactly the same
    bytes, but never more than one piece's Arrow table and text in memory at once.

    With ``quoting="none"`` (the plain form) a piece holding a value that needs quotes raises
    :class:`NeedsQuoting`: write the whole file again with ``quoting="needed"`` (quoting is all or nothing
    per file). A column whose values take another Arrow type in one piece than in another (an object
    column of numbers here and text there) raises :class:`ValueError`: write that table with
    :func:`csv_bytes`.

    >>> df = pd.DataFrame({"a": ["x", "=y", None], "n": [1.5, 2.0, None]})
    >>> b"".join(csv_chunks(df, rows=2)) == csv_bytes(df)
    True
    >>> b"".join(csv_chunks(pd.DataFrame({"a": ["p,q"]}), quoting="needed")) == csv_bytes(pd.DataFrame({"a": ["p,q"]}))
    True
    """
    import pyarrow.csv as pacsv

    if header:
        yield _header(df.columns, "\n")
    if len(df.columns) == 0:
        return
    rows = rows or CHUNK_ROWS
    types = {} if types is None else types       # column -> Arrow type, shared by the pieces of one file
    opts = pacsv.WriteOptions(quoting_style=quoting, include_header=False, eol=b"\n")
    for start in range(0, max(len(df), 1), rows):
        table = _safe_table(df.iloc[start:start + rows], frozenset())
        for i, t in enumerate(table.schema.types):
            if pa.types.is_null(t):
                continue
            if types.setdefault(i, t) != t:
                raise ValueError(f"column {df.columns[i]!r} changes type between pieces")
        buf = io.BytesIO()
        try:
            pacsv.write_csv(table, buf, write_options=opts)
        except pa.ArrowInvalid:
            if quoting == "none":
                raise NeedsQuoting() from None
            raise
        yield buf.getvalue()


def csv_frames(frames: Iterable[pd.DataFrame], *, quoting: str = "none") -> Iterator[bytes]:
    """:func:`csv_chunks` of several frames with the same columns, written as one file (the first frame's
    header once): the same bytes as :func:`csv_bytes` of their concatenation, one frame in memory at a time.

    >>> a, b = pd.DataFrame({"x": ["p"], "n": [1]}), pd.DataFrame({"x": ["=q"], "n": [2]})
    >>> b"".join(csv_frames([a, b])) == csv_bytes(pd.concat([a, b], ignore_index=True))
    True
    """
    types: dict = {}
    columns = None
    for df in frames:
        if columns is not None and list(df.columns) != columns:
            raise ValueError("the frames of one file have different columns")
        yield from csv_chunks(df, quoting=quoting, header=columns is None, types=types)
        columns = list(df.columns)


def read_csv_table(source: bytes | str | Path) -> pd.DataFrame:
    """Read an fdnet CSV (bytes or a path) as text columns with the raw values back (escapes undone).

    Every reader of a run folder's CSV files goes through this, so a person
    ID that began with ``=`` is matched as itself. A byte-order mark (i2
    exports) is skipped. ``df.attrs["number_columns"]`` names the columns
    whose every non-empty cell in the file was a plain number (see
    :func:`csv_bytes`'s ``numbers``).
    """
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    if data.startswith(BOM):
        data = data[len(BOM):]
    df = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    numbers = []
    for i, c in enumerate(df.columns):
        col = df.iloc[:, i]
        arr = _as_string_array(col)
        if arr is None:
            continue
        new, mask = _unescape_arrow(arr)
        if mask is not None:
            df.isetitem(i, _from_arrow_like(col, new, mask))
        elif len(arr) and pc.all(pc.or_kleene(pc.equal(arr, ""),
                                              pc.match_substring_regex(arr, NUMBER_PATTERN))).as_py() \
                and pc.any(pc.not_equal(arr, "")).as_py():
            numbers.append(c)
    df.attrs["number_columns"] = tuple(numbers)
    return df

