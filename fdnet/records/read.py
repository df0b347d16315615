"""Read one input table (CSV or Parquet) into strings, keeping line numbers.

Every value is read as text: types are checked by :mod:`fdnet.records.validate`
so that a bad cell rejects its row (with file, line and column) instead of
failing the whole file. File-level problems raise :class:`InputError`.

CSV: UTF-8 (a byte-order mark is accepted), comma-separated, header row,
``"`` quoting (quoted commas, quotes and newlines), LF or CRLF line ends,
blank lines (empty or only whitespace) skipped. ``line`` is the physical line
on which a record starts (the header is line 1). Two parsers read CSV: a fast
one (pyarrow, quoting included) for files where every record is one line and
no line is blank, and an exact one (the ``csv`` module) for everything else;
both give the same table for the same bytes.

Parquet: ``line`` is the 1-based row number. Each column is turned into text
by its Arrow type, nulls becoming empty cells: integers stay integers
(``10``, never ``10.0``, even in a column with nulls), so an ID written as a
number in one file and as text in another still matches.

A cell longer than :data:`MAX_FIELD_CHARS` rejects its row; the rest of the
file is read. Only regular files are read: a named pipe, device, socket or
folder posing as an input is refused before it is opened for reading.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError
from .schema import clip, clip_text

MAX_FIELD_CHARS = 131_072        # 128 KiB: one cell longer than this rejects its row
# a Parquet file decompressing beyond these is refused (a decompression bomb: a few KB can declare
# billions of dictionary- or run-length-encoded cells)
MAX_PARQUET_BYTES = 8 << 30      # 8 GiB decompressed
MAX_PARQUET_CELLS = 1_000_000_000
_STR = pd.StringDtype("pyarrow")


@dataclass
class RawTable:
    """One table as read: canonical lower-case column names, all text."""

    name: str
    path: Path
    sha256: str
    df: pd.DataFrame                # text columns, canonical names
    lines: np.ndarray               # line (CSV) or row (Parquet) of each df row
    header: list[str]               # the original header, as written
    n_read: int                     # data records in the file
    bad_rows: list[tuple[int, str, str]] = field(default_factory=list)  # (line, reason, raw)
    nested: list[str] = field(default_factory=list)   # Parquet columns of list/struct/map type (as JSON text)

    def raw(self, i: int) -> str:
        """Row ``i`` of ``df`` as a CSV line in the file's own column order."""
        return raw_line([self.df.iat[i, k] for k in range(len(self.header))])


def raw_line(fields) -> str:
    """Fields as one CSV line; a cell over :data:`MAX_FIELD_CHARS` is cut (its length said).

    >>> raw_line(["a", "b,c"])
    'a,"b,c"'
    >>> len(raw_line(["x" * 200_000])) < 100
    True
    """
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(
        [f"{v[:64]}… [cut: {len(v)} characters]" if isinstance(v, str) and len(v) > MAX_FIELD_CHARS else v
         for v in fields])
    return out.getvalue()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def _not_regular(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    return next((k for test, k in _KINDS if test(mode)), "not a regular file")


def read_regular(path: Path, *, label: str | None = None, max_bytes: int | None = None) -> bytes:
    """The bytes of ``path``, which must be a regular file (symbolic links are followed).

    A named pipe, device, socket or folder is refused from its ``stat``
    before any ``open`` (opening a FIFO for reading blocks until a writer
    comes), and the opened descriptor is checked again, so a file swapped
    for a pipe in between is refused too.

    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); os.mkfifo(os.path.join(d, "incidents.csv"))
    >>> read_regular(Path(d) / "incidents.csv")
    Traceback (most recent call last):
    ...
    fdnet.errors.InputError: incidents.csv: is a named pipe (FIFO), not a regular file; fdnet reads input only from regular files
    """
    label = label or path.name
    try:
        kind = _not_regular(os.stat(path).st_mode)
        if kind == "a folder":
            raise InputError("is a folder, expected a file", file=label)
        if kind:
            raise InputError(f"is {kind}, not a regular file; fdnet reads input only from regular files", file=label)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            kind = _not_regular(st.st_mode)
            if kind:
                raise InputError(f"is {kind}, not a regular file; fdnet reads input only from regular files",
                                 file=label)
            if max_bytes is not None and st.st_size > max_bytes:
                raise InputError(f"is {st.st_size} bytes, more than the {max_bytes} fdnet accepts here", file=label)
            return f.read()
    except FileNotFoundError:
        raise InputError("does not exist (or is a broken symbolic link)", file=label) from None
    except PermissionError:
        raise InputError("cannot be read (permission denied)", file=label) from None
    except IsADirectoryError:
        raise InputError("is a folder, expected a file", file=label) from None
    except OSError as exc:
        raise InputError(f"cannot be read: {exc.strerror or exc}", file=label) from None


def _decode(path: Path, data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError("is UTF-16 text (Excel's \"Unicode text\"); save the export as UTF-8 CSV",
                         file=path.name, line=1)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save the export as UTF-8 CSV", file=path.name, line=line) from None


def _check_header(path: Path, header: list[str]) -> list[str]:
    names = [h.strip().lower() for h in header]
    if not any(names):
        raise InputError("has an empty header row", file=path.name, line=1)
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        if n == "":
            raise InputError(f"header column {i + 1} has no name", file=path.name, line=1)
        if len(n) > 1000:
            raise InputError(f"header column {i + 1} has a name of {len(n)} characters ({clip(header[i])}); "
                             "is the first line really a header?", file=path.name, line=1)
        if n in seen:
            raise InputError(
                f"header names column {clip(header[i])} twice (columns {seen[n] + 1} and {i + 1}; "
                "names are compared case-insensitively)", file=path.name, line=1)
        seen[n] = i
    return names


# a line that is empty or holds only whitespace (the exact path skips it as blank)
# Excel's separator declaration, a first line such as `sep=,`
_SEP_LINE = re.compile(r"(?i)sep=(.?)\r?(\n|$)")
_SEP_LINE_B = re.compile(rb"(?i)sep=")
_NOT_SPACE = re.compile(rb"\S")
_BLANK_LINE = re.compile(r"(?m)^[^\S\n]*$")
# how a line that may be blank starts, in UTF-8: a newline right after a newline, or a character
# Python counts as whitespace (str.isspace: ASCII ones, NEL, no-break and the other Unicode spaces)
_LINE_MAY_BE_BLANK = (b"\n\n", b"\n ", b"\n\t", b"\n\r", b"\n\x0b", b"\n\x0c", b"\n\x1c", b"\n\x1d",
                      b"\n\x1e", b"\n\x1f", b"\n\xc2\x85", b"\n\xc2\xa0", b"\n\xe1\x9a\x80", b"\n\xe2\x80",
                      b"\n\xe2\x81\x9f", b"\n\xe3\x80\x80")
_LINE_START_MAY_BE_BLANK = re.compile(rb"\n[\n \t\r\x0b\x0c\x1c-\x1f\xc2\xe1\xe2\xe3]")    # one scan for all of them


def _fast_csv(data, names: list[str], *, quoted: bool = False) -> pd.DataFrame | None:
    """pyarrow's multi-threaded reader, for files where one record is one line.

    Returns None when any row has the wrong number of fields: the exact
    path then reads the file and names those rows. ``quoted`` reads ``"``
    quoting as the csv module does (the caller checks that no record spans
    lines, so line numbers stay exact).
    """
    import pyarrow.csv as pacsv

    try:
        table = pacsv.read_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
            parse_options=(pacsv.ParseOptions(quote_char='"', double_quote=True, newlines_in_values=True) if quoted
                           else pacsv.ParseOptions(quote_char=False, newlines_in_values=False)),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    return table.to_pandas(types_mapper={pa.string(): _STR}.get)


def _is_simple(text: str) -> bool:
    """No lone CR, no blank line, no sep= line: the fast path may read it (quotes are checked after)."""
    if "\r" in text.replace("\r\n", "") or _SEP_LINE.match(text):
        return False
    body = text.replace("\r\n", "\n")
    body = body.removesuffix("\n")
    return _BLANK_LINE.search(body) is None


def text_array(s: pd.Series) -> pa.ChunkedArray:
    """A text column's Arrow array, without a copy for an Arrow-backed column.

    >>> text_array(pd.Series(["a", "b"], dtype="string[pyarrow]")).to_pylist()
    ['a', 'b']
    """
    a = getattr(s.array, "_pa_array", None)          # pandas' Arrow-backed arrays hold a ChunkedArray
    if isinstance(a, pa.ChunkedArray):
        return a
    x = pa.array(s, pa.string()) if s.dtype == object else pa.array(s)
    return x if isinstance(x, pa.ChunkedArray) else pa.chunked_array([x])


def _is_simple_bytes(data: bytes, start: int = 0) -> bool:
    r""":func:`_is_simple` on the undecoded bytes from ``start``, without copying them (a few C-speed scans).

    Lines that might be blank are found by how they start; only those few are decoded and
    looked at (a file where many lines start with a space goes to the text check).

    >>> _is_simple_bytes(b"a,b\r\n1,2\r\n"), _is_simple_bytes(b"a,b\n\n1,2\n"), _is_simple_bytes(b"a\rb\n")
    (True, False, False)
    >>> _is_simple_bytes("a,b\n\u00a0\n1,2\n".encode()), _is_simple_bytes(b"a,b\n 1,2\n")
    (False, True)
    """
    if (data.find(b"\r", start) >= 0 and data.count(b"\r", start) != data.count(b"\r\n", start)) \
            or _SEP_LINE_B.match(data, start):
        return False
    stop = len(data) - (2 if data.endswith(b"\r\n") else 1 if data.endswith(b"\n") else 0)
    if stop <= start:
        return False
    probe = b"\n" + data[start:start + 4]
    if any(probe.startswith(pat) for pat in _LINE_MAY_BE_BLANK):
        end = data.find(b"\n", start, stop)
        if not data[start: end if end >= 0 else stop].decode("utf-8", "replace").strip():
            return False
    for hits, m in enumerate(_LINE_START_MAY_BE_BLANK.finditer(data, start, stop)):
        if hits >= 1000:         # many lines start with whitespace: look at the text
            return _is_simple(data[start:].decode("utf-8", "replace"))
        end = data.find(b"\n", m.start() + 1, stop)
        if not data[m.start() + 1: end if end >= 0 else stop].decode("utf-8", "replace").strip():
            return False
    return True


def _exact_csv(path: Path, text: str):
    """The csv module: quoting, physical line numbers, rows of the wrong width named."""
    old_limit = csv.field_size_limit()
    # no cap while parsing: an over-long cell rejects its row afterwards (see _oversize)
    csv.field_size_limit(max(old_limit, len(text) + 1))
    try:
        reader = csv.reader(io.StringIO(text, newline=""), strict=False)
        try:
            header = next(reader)
            sep = _SEP_LINE.match(text)
            if sep and reader.line_num == 1:
                if sep.group(1) != ",":
                    raise InputError(f"declares {sep.group(1)!r} as its separator (Excel's sep= line); fdnet reads "
                                     "comma-separated CSV (re-export as CSV, or save as Parquet)", file=path.name, line=1)
                header = next(reader)     # `sep=,` says what fdnet reads anyway: skipped like a blank line
            while not any(h.strip() for h in header):
                header = next(reader)
        except StopIteration:
            raise InputError("is empty (expected a header row and data rows)", file=path.name) from None
        except csv.Error as exc:
            raise InputError(f"cannot be read as CSV: {exc}", file=path.name, line=1) from None
        names = _check_header(path, header)
        width = len(names)
        cols: list[list[str]] = [[] for _ in range(width)]
        lines_l: list[int] = []
        bad = []
        prev = reader.line_num
        try:
            for row in reader:
                start = prev + 1
                prev = reader.line_num
                if not row or (len(row) == 1 and row[0].strip() == ""):
                    continue  # blank line
                if len(row) != width:
                    bad.append((start, f"has {len(row)} fields, the header has {width}", raw_line(row)))
                    continue
                for k in range(width):
                    cols[k].append(row[k])
                lines_l.append(start)
        except csv.Error as exc:
            raise InputError(f"cannot be read as CSV: {exc}", file=path.name, line=reader.line_num) from None
    finally:
        csv.field_size_limit(old_limit)
    df = pd.DataFrame({n: pd.Series(c, dtype=_STR) for n, c in zip(names, cols)})
    return header, df, np.asarray(lines_l, dtype=np.int64), bad


def parse_csv(path: Path, name: str, data: bytes, *, fast: bool = True) -> RawTable:
    """A CSV file's bytes as a :class:`RawTable` (``fast=False`` forces the exact parser).

    The fast path works on the bytes as they are (pyarrow checks they are UTF-8); the text is
    decoded only for the exact path, which also names the first byte that is not UTF-8.
    """
    digest = hashlib.sha256(data).hexdigest()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        _decode(path, data)                                  # raises: UTF-16
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    t = None
    if fast and _NOT_SPACE.search(data, start) and _is_simple_bytes(data, start):
        first_nl = data.find(b"\n", start)
        try:
            first = data[start: first_nl if first_nl >= 0 else len(data)].decode("utf-8").rstrip("\r")
        except UnicodeDecodeError:
            first = None                                     # the exact path says where
        quoted = data.find(b'"', start) >= 0
        if first is not None:
            header = next(csv.reader([first], strict=False)) if quoted else first.split(",")
        # with quotes: the header must fit on its line, and a one-column file goes to the exact
        # path (which skips a quoted blank cell as a blank line)
        if first is not None and (not quoted or (first.count('"') % 2 == 0 and len(header) > 1)):
            names = _check_header(path, header)
            df = _fast_csv(pa.py_buffer(data).slice(start), names, quoted=quoted)
            if df is not None and quoted:
                # every record on one line (none spans lines) keeps line numbers exact
                n_lines = data.count(b"\n", start) - (1 if data.endswith(b"\n") else 0)   # data lines, no blank ones
                if len(df) != n_lines:
                    df = None
            if df is not None:
                t = RawTable(name, path, digest, df, np.arange(2, len(df) + 2, dtype=np.int64), header, len(df), [])
    if t is None:
        text = _decode(path, data)
        if not text.strip():
            raise InputError("is empty (expected a header row and data rows)", file=path.name)
        header, df, lines, bad = _exact_csv(path, text)
        t = RawTable(name, path, digest, df, lines, header, len(df) + len(bad), bad)
    return _oversize(t)


def read_csv(path: Path, name: str) -> RawTable:
    return parse_csv(path, name, read_regular(path))


def _oversize(t: RawTable) -> RawTable:
    """Rows with a cell over MAX_FIELD_CHARS go to ``bad_rows`` with the column and length."""
    if not len(t.df):
        return t
    # a cell holds no more characters than bytes: only columns with a long cell in bytes are counted
    nbytes = [pc.max(pc.binary_length(text_array(t.df[c]))).as_py() or 0 for c in t.df.columns]
    if max(nbytes) <= MAX_FIELD_CHARS:
        return t
    lens = np.column_stack([t.df[c].str.len().fillna(0).to_numpy(dtype=np.int64) if nb > MAX_FIELD_CHARS
                            else np.zeros(len(t.df), np.int64) for c, nb in zip(t.df.columns, nbytes)])
    over = lens > MAX_FIELD_CHARS
    rows = np.flatnonzero(over.any(axis=1))
    if not rows.size:
        return t
    for i in rows.tolist():
        k = int(np.argmax(over[i]))
        t.bad_rows.append((int(t.lines[i]),
                           (f"{t.df.columns[k]} is {int(lens[i, k])} characters long, more than the "
                            f"{MAX_FIELD_CHARS} (128 KiB) fdnet accepts in one cell"),
                           t.raw(i)))
    keep = np.ones(len(t.df), bool)
    keep[rows] = False
    t.df = t.df[keep].reset_index(drop=True)
    t.lines = t.lines[keep]
    t.bad_rows.sort(key=lambda b: b[0])
    return t


def arrow_text(col: pa.ChunkedArray, column: str, file: str) -> pa.ChunkedArray:
    """One Parquet column as text by its Arrow type; nulls (and float NaN) become empty.

    Integers keep their digits and floats holding whole numbers lose the
    ``.0`` (a nullable integer ID column that a writer stored as float
    still reads ``10``); timestamps become ``YYYY-MM-DDTHH:MM:SS`` in their
    own time zone (``YYYY-MM-DD`` at midnight); booleans ``true``/``false``.

    >>> arrow_text(pa.chunked_array([[10, None, 12]]), "person_id", "p.parquet").to_pylist()
    ['10', '', '12']
    >>> arrow_text(pa.chunked_array([[10.0, float("nan"), 1.5]]), "person_id", "p.parquet").to_pylist()
    ['10', '', '1.5']
    """
    typ = col.type
    if pa.types.is_dictionary(typ):
        col = pc.cast(col, typ.value_type)
        typ = col.type
    if pa.types.is_null(typ):
        out = pa.chunked_array([pa.array([""] * len(col), pa.string())])
    elif pa.types.is_boolean(typ):
        out = pc.if_else(col, "true", "false")
    elif pa.types.is_integer(typ) or pa.types.is_decimal(typ) or pa.types.is_date(typ) or pa.types.is_time(typ):
        out = pc.cast(col, pa.string())
    elif pa.types.is_floating(typ):
        v = col.to_numpy().astype(np.float64)          # nulls are NaN
        txt = np.asarray(pc.cast(col, pa.string()).to_numpy(zero_copy_only=False), dtype=object)
        whole = np.isfinite(v) & (np.floor(v) == v) & (np.abs(v) < 2.0 ** 53)
        txt[whole] = v[whole].astype(np.int64).astype(str).astype(object)
        txt[np.isnan(v)] = ""
        out = pa.chunked_array([pa.array(txt.tolist(), pa.string())])
    elif pa.types.is_timestamp(typ):
        sec = pc.cast(col, pa.timestamp("s", typ.tz), safe=False)
        out = pc.replace_substring_regex(pc.strftime(sec, format="%Y-%m-%dT%H:%M:%S"), r"T00:00:00$", "")
    elif pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_binary(typ) \
            or pa.types.is_large_binary(typ) or str(typ) in ("string_view", "binary_view"):
        try:
            out = pc.cast(col, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InputError("holds bytes that are not UTF-8 text", file=file, column=column) from None
    else:
        # lists, structs, maps: JSON text, so an extra column is kept in the raw row; a column
        # fdnet reads may not be nested (refused by the caller once the mapping is applied)
        import json
        vals = [("" if v is None else json.dumps(v, default=str, ensure_ascii=False)) for v in col.to_pylist()]
        out = pa.chunked_array([pa.array(vals, pa.string())])
    return pc.fill_null(pc.cast(out, pa.string()), "")


def _is_nested(typ: pa.DataType) -> bool:
    return pa.types.is_nested(typ) or (pa.types.is_dictionary(typ) and pa.types.is_nested(typ.value_type))


def read_parquet(path: Path, name: str) -> RawTable:
    import pyarrow.parquet as pq

    data = read_regular(path)
    digest = hashlib.sha256(data).hexdigest()
    try:
        md = pq.ParquetFile(pa.BufferReader(data)).metadata
        size = sum(md.row_group(i).total_byte_size for i in range(md.num_row_groups))
        cells = md.num_rows * md.num_columns
        if size > MAX_PARQUET_BYTES or cells > MAX_PARQUET_CELLS:
            raise InputError(f"would hold {cells:,} cells and {size:,} bytes once decompressed, more than the "
                             f"{MAX_PARQUET_CELLS:,} cells or {MAX_PARQUET_BYTES:,} bytes fdnet reads from one "
                             "Parquet file", file=path.name)
        table = pq.read_table(pa.BufferReader(data))
    except InputError:
        raise
    except Exception as exc:  # pyarrow raises many types for corrupt files
        raise InputError(f"cannot be read as Parquet: {clip_text(exc, 300)}", file=path.name) from None
    header = [str(c) for c in table.column_names]
    names = _check_header(path, header)
    cols = {n: arrow_text(table.column(k), header[k], path.name) for k, n in enumerate(names)}
    out = pa.table(cols).to_pandas(types_mapper={pa.string(): _STR}.get) if cols else pd.DataFrame()
    lines = np.arange(1, len(out) + 1, dtype=np.int64)
    nested = [n for k, n in enumerate(names) if _is_nested(table.schema.field(k).type)]
    return _oversize(RawTable(name, path, digest, out, lines, header, len(out), nested=nested))


def read_table(path: Path, name: str) -> RawTable:
    """Read ``path`` by its extension (.csv or .parquet)."""
    if path.suffix.lower() == ".parquet":
        return read_parquet(path, name)
    return read_csv(path, name)
