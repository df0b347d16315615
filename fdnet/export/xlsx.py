"""The lists as an Excel workbook for prosecutors and partners.

Sheet "About this export" holds the run's metadata (as_of, window, policy
hash, fdnet version, run manifest hash, list sizes, pseudonymisation) and
the notice that list status is not probable cause. Then one sheet per list
with every column of the list file, a frozen header row, an autofilter and
widths fitted to the content.

Cells are typed: numbers as numbers, true/false as booleans, and dates
(``YYYY-MM-DD`` columns such as last_offending_date, and the cover's as of)
as real Excel dates shown in the ISO form ``yyyy-mm-dd`` (a number format,
so they sort, filter and compute as dates and no locale misreads them; a
value that is not a real calendar date, or before 1900-03-01 where Excel's
calendar is wrong, stays text). Every text cell is written as a
literal string, never a formula: openpyxl would store ``=HYPERLINK(...)``
in a person ID as a live formula, so each text cell is forced to type
``s``, and cells that start like a formula (``= + - @``, tab, CR) also get
Excel's quote prefix, which keeps them text even when edited.

Characters XML cannot hold (control characters) become U+FFFD; a line
break is kept, though a CR LF pair reads back as LF (XML's rule).

The workbook is deterministic: document dates set to the run's as_of and
the zip entries stamped 1980-01-01, so a re-export is byte-identical.
"""
from __future__ import annotations

import datetime as dt
import io
import zipfile

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.writer.excel import ExcelWriter

from .runfolder import LIST_NAMES, column_kind, number_columns
from .text import starts_like_formula, xml_safe

NOTICE = ("List status is not probable cause. A place on a list means that a person's recorded police "
          "contacts scored above the thresholds of the policy named below; it is not evidence that the person "
          "committed a crime, and it does not establish probable cause, reasonable suspicion or membership of a "
          "group. Police records measure police contact as well as behaviour. Every entry must be reviewed by a "
          "person, against the underlying records, before any action.")
EXCEL_MAX_CELL = 32767
TEXT_ALWAYS = frozenset({"person_id", "group", "reasons"})
DATE_FORMAT = "yyyy-mm-dd"
_EXCEL_FIRST_DAY = dt.date(1900, 3, 1)   # before it, Excel's 1900 calendar has its phantom 29 February
SHEET_TITLES = {"call_in": "Call-in", "custom_notifications": "Custom notifications",
                "service_referrals": "Service referrals"}


def _text(ws, row: int, col: int, value: str):
    """Write ``value`` as a literal string cell (never a formula)."""
    s = xml_safe(value)
    if len(s) > EXCEL_MAX_CELL:
        s = s[:EXCEL_MAX_CELL - 14] + " [truncated]"
    c = ws.cell(row=row, column=col)
    c.value = s
    c.data_type = "s"
    if starts_like_formula(s):
        c.quotePrefix = True
    return c


def _typed_columns(df: pd.DataFrame) -> dict[str, str]:
    """``number`` (the column held numbers in the run's file), ``date``, ``bool`` or ``text``."""
    numbers = set(number_columns(df))
    kinds = {}
    for c in df.columns:
        kind = "text" if c in TEXT_ALWAYS else column_kind(df[c])
        if kind == "number" and c not in numbers:
            kind = "text"    # e.g. IDs such as "-5", escaped in the file: text that looks numeric
        kinds[c] = kind
    return kinds


def _dates(values: pd.Series) -> list:
    """Each ``YYYY-MM-DD`` cell as a ``datetime.date`` (None where it is no real date Excel can hold)."""
    parsed = pd.to_datetime(values.where(values != ""), format="%Y-%m-%d", errors="coerce")
    ok = parsed.notna() & (parsed >= pd.Timestamp(_EXCEL_FIRST_DAY))
    days = parsed.dt.date
    return [d if k else None for d, k in zip(days.tolist(), ok.tolist())]


def _date(ws, row: int, col: int, value: dt.date):
    c = ws.cell(row=row, column=col, value=value)
    c.number_format = DATE_FORMAT
    return c


def _number(s: str):
    f = float(s)
    return int(f) if f.is_integer() and abs(f) < 2**53 and "." not in s and "e" not in s.lower() else f


def _list_sheet(ws, df: pd.DataFrame) -> None:
    kinds = _typed_columns(df)
    bold = Font(bold=True)
    widths = []
    for j, col in enumerate(df.columns, start=1):
        _text(ws, 1, j, str(col)).font = bold
        widths.append(len(str(col)))
    dates = {c: _dates(df[c]) for c in df.columns if kinds[c] == "date"}
    for i, rec in enumerate(df.itertuples(index=False), start=2):
        for j, (col, v) in enumerate(zip(df.columns, rec), start=1):
            kind = kinds[col]
            if v == "":
                continue
            if kind == "number":
                ws.cell(row=i, column=j, value=_number(v))
            elif kind == "bool":
                ws.cell(row=i, column=j, value=(v == "true"))
            elif kind == "date" and dates[col][i - 2] is not None:
                _date(ws, i, j, dates[col][i - 2])
            else:
                _text(ws, i, j, v)
            widths[j - 1] = max(widths[j - 1], len(v))
    for j, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(j)].width = min(max(w + 2, 8), 100)
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(max(len(df.columns), 1))}{len(df) + 1}"


def _cover(ws, meta: dict, sizes: dict[str, int]) -> None:
    ws.title = "About this export"
    _text(ws, 1, 1, f"fdnet lists, run as of {meta['as_of']}").font = Font(bold=True, size=14)
    _text(ws, 3, 1, NOTICE).alignment = Alignment(wrap_text=True, vertical="top")
    ws.merge_cells("A3:B3")
    ws.row_dimensions[3].height = 110
    rows = [
        ("as of", meta["as_of"]),
        ("window", f"{meta.get('window_start', '')} to {meta['as_of']}"),
        ("policy SHA-256", meta["policy_sha256"]),
        ("run made with fdnet", meta["run_fdnet_version"]),
        ("exported with fdnet", meta["fdnet_version"]),
        ("run manifest SHA-256", meta["run_manifest_sha256"]),
        *[(f"{name} (people)", str(sizes[name])) for name in LIST_NAMES],
        ("pseudonymised", "yes: person IDs are keyed pseudonyms (HMAC-SHA256)" if meta["pseudonymised"] else "no"),
    ]
    if meta["pseudonymised"]:
        rows.append(("key fingerprint", meta["key_fingerprint"]))
    for i, (k, v) in enumerate(rows, start=5):
        _text(ws, i, 1, k).font = Font(bold=True)
        day = _dates(pd.Series([v], dtype=object))[0] if k == "as of" else None
        if day is not None:
            _date(ws, i, 2, day).alignment = Alignment(horizontal="left")
        else:
            _text(ws, i, 2, v)
    ws.column_dimensions["A"].width = 26
    ws.column_dimensions["B"].width = 90


def _deterministic_zip(data: bytes) -> bytes:
    """Re-pack a zip with fixed entry timestamps (1980-01-01) in the same order."""
    src = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            zi = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o600 << 16
            dst.writestr(zi, src.read(info.filename))
    return buf.getvalue()


def lists_workbook(tables: dict[str, pd.DataFrame], meta: dict) -> bytes:
    """The workbook's bytes. ``meta``: as_of, window_start, policy_sha256, run_fdnet_version,
    fdnet_version, run_manifest_sha256, pseudonymised, key_fingerprint."""
    wb = Workbook()
    stamp = dt.datetime.fromisoformat(meta["as_of"]) if meta.get("as_of") else dt.datetime(1980, 1, 1)
    wb.properties.creator = "fdnet"
    wb.properties.title = f"fdnet lists, run as of {meta['as_of']}"
    wb.properties.created = wb.properties.modified = stamp
    _cover(wb.active, meta, {n: len(tables[n]) for n in LIST_NAMES})
    for name in LIST_NAMES:
        _list_sheet(wb.create_sheet(SHEET_TITLES[name]), tables[name])
    buf = io.BytesIO()
    archive = zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, allowZip64=True)
    ExcelWriter(wb, archive).save()  # not wb.save(): that stamps the current time as "modified"
    return _deterministic_zip(buf.getvalue())
