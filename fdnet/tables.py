"""The one writer and reader of CSV files in the run folder and exports (CONTRACT.md section 3).

Every CSV fdnet writes is safe to open in a spreadsheet: a text cell that
would begin with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (a
formula to Excel, LibreOffice or Google Sheets) is written with a leading
apostrophe, the same way in every file. A text cell that already begins with
an apostrophe gets one more, so the reader can undo the escape exactly:
:func:`read_csv_table` gives back the raw values.

>>> df = pd.DataFrame({"person_id": ["=HYPERLINK(1)", "P1", "'x", "-2"], "n": [1, -2, 3, 4]})
>>> print(csv_bytes(df).decode())
person_id,n
'=HYPERLINK(1),1
P1,-2
''x,3
'-2,4
<BLANKLINE>
>>> read_csv_table(csv_bytes(df))["person_id"].tolist()
['=HYPERLINK(1)', 'P1', "'x", '-2']
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

#: first characters that make a spreadsheet read a cell as a formula (OWASP CSV injection)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_ESCAPED_STARTS = FORMULA_STARTS + ("'",)


def neutralise(values: pd.Series) -> pd.Series:
    """Prefix an apostrophe to text values that a spreadsheet would run as a formula (vectorised).

    >>> neutralise(pd.Series(["=1+1", "ok", "@SUM(A1)", ""])).tolist()
    ["'=1+1", 'ok', "'@SUM(A1)", '']
    """
    s = values.astype(object)
    mask = s.map(lambda v: isinstance(v, str) and v.startswith(_ESCAPED_STARTS), na_action="ignore")
    mask = mask.fillna(False).astype(bool).to_numpy()
    if not mask.any():
        return values
    out = s.copy()
    out[mask] = "'" + s[mask].astype(str)
    return out


def unneutralise(values: pd.Series) -> pd.Series:
    """Undo :func:`neutralise` on values read back from an fdnet CSV."""
    s = values.astype(object)
    txt = s.astype(str)
    mask = txt.str.startswith("'").to_numpy() & (txt.str.len() > 1).to_numpy() & \
        txt.str[1:2].isin(list(_ESCAPED_STARTS)).to_numpy() & s.map(lambda v: isinstance(v, str)).to_numpy()
    if not mask.any():
        return values
    out = s.copy()
    out[mask] = txt[mask].str[1:]
    return out


def _text_columns(df: pd.DataFrame) -> list:
    return [c for c in df.columns if df[c].dtype == object or pd.api.types.is_string_dtype(df[c].dtype)]


def csv_bytes(df: pd.DataFrame) -> bytes:
    """Deterministic, spreadsheet-safe CSV: UTF-8, LF line ends, quoting only where needed.

    Written with pyarrow's CSV writer (10x faster than pandas here): booleans
    as true/false, floats in shortest round-trip form, missing values empty.
    Text columns are neutralised first (see the module docstring).
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    text = _text_columns(df)
    if text:
        df = df.copy(deep=False)
        for c in text:
            df[c] = neutralise(df[c])
    table = pa.Table.from_pandas(df, preserve_index=False)
    header = (",".join(str(c) for c in df.columns) + "\n").encode("utf-8")  # fdnet's own names: no quoting needed
    buf = io.BytesIO()
    try:
        # no quotes at all when no value needs them: the plain form people expect
        pacsv.write_csv(table, buf, write_options=pacsv.WriteOptions(
            include_header=False, quoting_style="none", eol=b"\n"))
    except pa.ArrowInvalid:
        # some value holds a comma, quote or newline: quote every text value (RFC 4180)
        buf = io.BytesIO()
        pacsv.write_csv(table, buf, write_options=pacsv.WriteOptions(
            include_header=False, quoting_style="needed", eol=b"\n"))
    return header + buf.getvalue()


def read_csv_table(source: bytes | str | Path) -> pd.DataFrame:
    """Read an fdnet CSV (bytes or a path) as text columns with the raw values back (escapes undone).

    Every reader of a run folder's CSV files goes through this, so a person
    ID that began with ``=`` is matched as itself.
    """
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    df = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    for c in df.columns:
        col = df[c]
        if len(col) and np.any(col.str.startswith("'").to_numpy()):
            df[c] = unneutralise(col)
    return df
