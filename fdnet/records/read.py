"""Read one input table (CSV or Parquet) into strings, keeping line numbers.

Every value is read as text: types are checked by :mod:`fdnet.records.validate`
so that a bad cell rejects its row (with file, line and column) instead of
failing the whole file. File-level problems raise :class:`InputError`.

CSV: UTF-8 (a byte-order mark is accepted), comma-separated, header row,
``"`` quoting (quoted commas, quotes and newlines), LF or CRLF line ends,
blank lines skipped. ``line`` is the physical line on which a record starts
(the header is line 1). Parquet: ``line`` is the 1-based row number.
"""
from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError


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

    def raw(self, i: int) -> str:
        """Row ``i`` of ``df`` as a CSV line in the file's own column order."""
        buf = io.StringIO()
        csv.writer(buf, lineterminator="").writerow(
            [self.df.iat[i, k] for k in range(len(self.header))])
        return buf.getvalue()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _decode(path: Path, data: bytes) -> str:
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
        if n in seen:
            raise InputError(
                f"header names column {header[i]!r} twice (columns {seen[n] + 1} and {i + 1}; "
                "names are compared case-insensitively)", file=path.name, line=1)
        seen[n] = i
    return names


def _fast_csv(data: bytes, names: list[str]) -> pd.DataFrame | None:
    """pyarrow's multi-threaded reader, for files where one record is one line.

    Returns None when any row has the wrong number of fields: the exact
    path then reads the file and names those rows.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
            parse_options=pacsv.ParseOptions(quote_char=False, newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    return table.to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get)


def read_csv(path: Path, name: str) -> RawTable:
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    text = _decode(path, data)
    if not text.strip():
        raise InputError("is empty (expected a header row and data rows)", file=path.name)
    first_nl = text.find("\n")
    simple = '"' not in text and "\n\n" not in text.replace("\r\n", "\n") and "\r" not in text.replace("\r\n", "")
    if simple:
        # Fast path: no quoting, no blank lines, so every record is one line.
        header = text[: first_nl if first_nl >= 0 else len(text)].rstrip("\r").split(",")
        names = _check_header(path, header)
        df = _fast_csv(data[3:] if data.startswith(b"\xef\xbb\xbf") else data, names)
        if df is not None:
            lines = np.arange(2, len(df) + 2, dtype=np.int64)
            return RawTable(name, path, digest, df, lines, header, len(df), [])
    # Exact path: the csv module knows quoting and reports physical lines.
    reader = csv.reader(io.StringIO(text, newline=""), strict=False)
    try:
        header = next(reader)
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
                out = io.StringIO()
                csv.writer(out, lineterminator="").writerow(row)
                bad.append((start, f"has {len(row)} fields, the header has {width}", out.getvalue()))
                continue
            for k in range(width):
                cols[k].append(row[k])
            lines_l.append(start)
    except csv.Error as exc:
        raise InputError(f"cannot be read as CSV: {exc}", file=path.name, line=reader.line_num) from None
    df = pd.DataFrame({n: pd.Series(c, dtype=object) for n, c in zip(names, cols)})
    lines = np.asarray(lines_l, dtype=np.int64)
    return RawTable(name, path, digest, df, lines, header, len(df) + len(bad), bad)


def _to_text(s: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s):
        out = s.dt.strftime("%Y-%m-%dT%H:%M:%S").str.replace("T00:00:00", "", regex=False)
    elif pd.api.types.is_bool_dtype(s):
        out = s.map({True: "true", False: "false"})
    else:
        out = s.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else
                    (v.isoformat() if hasattr(v, "isoformat") else str(v)))
    return out.fillna("").astype(object)


def read_parquet(path: Path, name: str) -> RawTable:
    digest = sha256_file(path)
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for corrupt files
        raise InputError(f"cannot be read as Parquet: {exc}", file=path.name) from None
    header = [str(c) for c in df.columns]
    names = _check_header(path, header)
    out = pd.DataFrame({n: _to_text(df[c]).to_numpy(dtype=object)
                        for n, c in zip(names, df.columns)})
    lines = np.arange(1, len(out) + 1, dtype=np.int64)
    return RawTable(name, path, digest, out, lines, header, len(out))


def read_table(path: Path, name: str) -> RawTable:
    """Read ``path`` by its extension (.csv or .parquet)."""
    if path.is_dir():
        raise InputError("is a folder, expected a file", file=path.name)
    try:
        if path.suffix.lower() == ".parquet":
            return read_parquet(path, name)
        return read_csv(path, name)
    except PermissionError:
        raise InputError("cannot be read (permission denied)", file=path.name) from None
    except OSError as exc:
        raise InputError(f"cannot be read: {exc.strerror or exc}", file=path.name) from None
