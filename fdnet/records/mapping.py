"""The mapping file: a records system's column names and codes onto fdnet's.

A mapping is YAML, found as ``mapping.yaml`` in the data folder (or given
with ``--mapping``). Every part is optional::

    tables:
      incidents:
        file: rms_incidents.csv          # a file name inside the data folder
        columns: {incident_id: CASE_NO, date: REPORT_DT, gun: FIREARM_USED}
      involvements:
        file: rms_people.csv
        columns: {incident_id: CASE_NO, person_id: NAME_ID, role: INV_TYPE}
    roles:                               # records-system code -> fdnet role(s)
      SUSP: suspect
      ARR: arrestee
      VIC: victim
      WIT: witness
      "VIC+SUSP": [victim, suspect]      # one row holding two roles
    booleans: {true: [Y, X], false: [N, ""]}
    long:                                # one row per person per incident
      file: rms_export.csv
      columns: {incident_id: CASE_NO, date: REPORT_DT, person_id: NAME_ID, role: INV_TYPE}
      constants: {gun: true}             # a column the export lacks, the same on every row

With ``long``, the incidents and involvements tables are both taken from
that one export: the incident columns of all rows of an incident must agree.
``constants`` (under any table or ``long``) gives a column one value for
every row (a fixed role, date or flag); it is checked like a cell, and may
not name a column the file already has nor an ID column.

The file must be a regular file of at most 1 MiB, and YAML anchors and
aliases (``&a`` / ``*a``) are refused: they are the tool of "billion laughs"
expansion, and a mapping never needs them.

>>> m = Mapping.model_validate({"roles": {"SUSP": "suspect", "VS": ["victim", "suspect"]}})
>>> m.role_map()["susp"], m.role_map()["vs"]
(('suspect',), ('victim', 'suspect'))
"""
from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import InputError
from .read import read_regular
from .schema import ROLES, TABLES, clip, clip_text

MAPPING_FILE = "mapping.yaml"
MAX_MAPPING_BYTES = 1 << 20
MAX_MESSAGES = 5          # mapping problems listed in one error


def _each_source_once(columns: dict[str, str], where: str) -> None:
    """One of the user's columns may feed only one fdnet column."""
    srcs = [str(x).strip().lower() for x in columns.values()]
    dup = sorted({x for x in srcs if srcs.count(x) > 1})
    if dup:
        raise ValueError(f"{where}: source column {clip(dup[0])} is mapped to two fdnet columns")


def _check_constants(constants: dict[str, str], where: str, tables: tuple[str, ...],
                     mapped: dict[str, str]) -> None:
    for canon in constants:
        specs = [TABLES[t] for t in tables if TABLES[t].col(canon.lower()) is not None]
        if not specs:
            allowed = ", ".join(dict.fromkeys(c.name for t in tables for c in TABLES[t].columns))
            raise ValueError(f"{where}: unknown column {clip(canon)}; allowed: {allowed}")
        if specs[0].col(canon.lower()).kind == "id":
            raise ValueError(f"{where}.{canon}: an ID column cannot be a constant (every row would be one "
                             "incident, person or group)")
        if canon.lower() in {k.lower() for k in mapped}:
            raise ValueError(f"{where}.{canon}: the column is also mapped in columns; give one of the two")


class TableMap(BaseModel):
    model_config = ConfigDict(extra="forbid")
    file: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    constants: dict[str, str] = Field(default_factory=dict)

    @field_validator("constants", mode="before")
    @classmethod
    def _constants_text(cls, v):
        if isinstance(v, dict):
            return {k: (str(x).lower() if isinstance(x, bool) else str(x)) if isinstance(x, (bool, int, float))
                    else x for k, x in v.items()}
        return v

    @field_validator("file")
    @classmethod
    def _plain_name(cls, v):
        if v is not None and (Path(v).name != v or v in ("", ".", "..")):
            raise ValueError(f"file must be a plain file name inside the data folder, got {clip(v)}")
        return v


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tables: dict[str, TableMap] = Field(default_factory=dict)
    roles: dict[str, str | list[str]] = Field(default_factory=dict)
    booleans: dict[str, list[str]] = Field(default_factory=dict)
    long: TableMap | None = None

    @field_validator("tables")
    @classmethod
    def _known_tables(cls, v):
        for name, tm in v.items():
            if name not in TABLES:
                raise ValueError(f"unknown table {clip(name)}; allowed: {', '.join(TABLES)}")
            spec = TABLES[name]
            _each_source_once(tm.columns, f"tables.{name}.columns")
            for canon in tm.columns:
                if spec.col(canon.lower()) is None:
                    allowed = ", ".join(c.name for c in spec.columns)
                    raise ValueError(f"tables.{name}.columns: unknown column {clip(canon)}; allowed: {allowed}")
            _check_constants(tm.constants, f"tables.{name}.constants", (name,), tm.columns)
        return v

    @field_validator("long")
    @classmethod
    def _long_columns(cls, v):
        if v is not None:
            _each_source_once(v.columns, "long.columns")
            both = ("incidents", "involvements")
            for canon in v.columns:
                if not any(TABLES[t].col(canon.lower()) for t in both):
                    allowed = ", ".join(dict.fromkeys(c.name for t in both for c in TABLES[t].columns))
                    raise ValueError(f"long.columns: unknown column {clip(canon)}; allowed: {allowed}")
            _check_constants(v.constants, "long.constants", both, v.columns)
        return v

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, v):
        for code, roles in v.items():
            for r in [roles] if isinstance(roles, str) else roles:
                if r.lower() not in ROLES:
                    raise ValueError(f"roles.{clip(code)}: unknown role {clip(r)}; allowed: {', '.join(ROLES)}")
        return v

    @field_validator("roles", "booleans", mode="before")
    @classmethod
    def _yaml_scalars_to_text(cls, v):
        # YAML reads `true:`, `1:` or `[N, 0]` as booleans/numbers; codes are text
        def txt(x):
            return str(x).lower() if isinstance(x, bool) else str(x)
        if isinstance(v, dict):
            return {txt(k): ([txt(x) for x in val] if isinstance(val, list) else
                             (txt(val) if isinstance(val, (bool, int, float)) else val))
                    for k, val in v.items()}
        return v

    @field_validator("booleans")
    @classmethod
    def _bool_keys(cls, v):
        bad = set(v) - {"true", "false"}
        if bad:
            raise ValueError(f"booleans: keys must be 'true' and 'false', got {', '.join(clip(b) for b in sorted(bad))}")
        return v

    @model_validator(mode="after")
    def _constants_where_used(self):
        if self.long:
            for t in ("incidents", "involvements"):
                if t in self.tables and self.tables[t].constants:
                    raise ValueError(f"tables.{t}.constants: with `long`, incidents and involvements come from the "
                                     "long export; give the constants under long.constants")
        return self

    def role_map(self) -> dict[str, tuple[str, ...]]:
        """Lower-cased code -> tuple of fdnet roles."""
        out = {}
        for code, roles in self.roles.items():
            rs = [roles] if isinstance(roles, str) else roles
            out[code.strip().lower()] = tuple(r.lower() for r in rs)
        return out

    def renames(self, table: str) -> dict[str, str]:
        """Lower-cased source column name -> canonical name, for one table."""
        tm = self.long if (self.long and table in ("incidents", "involvements")) else self.tables.get(table)
        if tm is None:
            return {}
        return {src.strip().lower(): canon.lower() for canon, src in tm.columns.items()}

    def file_for(self, table: str) -> str | None:
        tm = self.tables.get(table)
        return tm.file if tm else None

    def constants_for(self, table: str) -> dict[str, str]:
        """Canonical column -> constant text, for one table (the long export's for both of its tables)."""
        if self.long and table in ("incidents", "involvements"):
            tm = self.long
        else:
            tm = self.tables.get(table)
        return {k.lower(): v for k, v in tm.constants.items()} if tm else {}

    def constants(self) -> list[tuple[str, str, str, str]]:
        """Every constant as (mapping key path, table, canonical column, value), in file order.

        >>> m = Mapping.model_validate({"long": {"file": "x.csv", "constants": {"role": "offender", "gun": True}}})
        >>> m.constants()
        [('long.constants.role', 'involvements', 'role', 'offender'), ('long.constants.gun', 'incidents', 'gun', 'true')]
        """
        out = []
        if self.long:
            for k, v in self.long.constants.items():
                t = "incidents" if TABLES["incidents"].col(k.lower()) else "involvements"
                out.append((f"long.constants.{k}", t, k.lower(), v))
        for name, tm in self.tables.items():
            for k, v in tm.constants.items():
                out.append((f"tables.{name}.constants.{k}", name, k.lower(), v))
        return out


def mapping_file(data_dir: Path, path: Path | None = None) -> Path:
    """The mapping file a run reads: ``path``, or ``data_dir/mapping.yaml``."""
    return Path(path) if path else Path(data_dir) / MAPPING_FILE


def _refuse_aliases(text: str, where: str) -> None:
    """YAML anchors/aliases are refused before anything is built from them (no alias bomb)."""
    try:
        for tok in yaml.scan(text, Loader=yaml.BaseLoader):
            if isinstance(tok, (yaml.AliasToken, yaml.AnchorToken)):
                mark = tok.start_mark
                raise InputError(
                    f"mapping file uses a YAML {'alias' if isinstance(tok, yaml.AliasToken) else 'anchor'} "
                    f"(line {mark.line + 1}, column {mark.column + 1}); anchors and aliases (&name, *name) are "
                    "not accepted in mapping files: write each value out", file=where, line=mark.line + 1)
    except yaml.YAMLError as exc:
        raise InputError(f"mapping file is not valid YAML: {clip_text(exc, 300)}", file=where) from None


def load_mapping(data_dir: Path, path: Path | None = None) -> Mapping:
    """Read the mapping file (``path`` or ``data_dir/mapping.yaml``); empty if none.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "mapping.yaml").write_text("a: &x [1, 2]\\nb: [*x, *x]\\n")
    >>> load_mapping(d)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fdnet.errors.InputError: ...mapping.yaml, line 1: mapping file uses a YAML anchor (line 1, column 4); ...
    """
    p = mapping_file(data_dir, path)
    if not p.exists() and not p.is_symlink():
        if path:
            raise InputError("mapping file not found", file=str(p))
        return Mapping()
    data = read_regular(p, label=str(p), max_bytes=MAX_MAPPING_BYTES)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"mapping file is not UTF-8 text (byte offset {exc.start})", file=str(p)) from None
    _refuse_aliases(text, str(p))
    try:
        # BaseLoader keeps every scalar as text: records-system codes such as
        # OFF, NO, Y or 1 must not turn into booleans or numbers
        raw = yaml.load(text, Loader=yaml.BaseLoader) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"mapping file is not valid YAML: {clip_text(exc, 300)}", file=str(p)) from None
    except RecursionError:
        raise InputError("mapping file is nested too deeply to be a mapping", file=str(p)) from None
    if not isinstance(raw, dict):
        raise InputError("mapping file must be a YAML mapping (key: value)", file=str(p))
    try:
        return Mapping.model_validate(raw)
    except ValidationError as exc:
        errs = exc.errors()
        msgs = "; ".join(
            f"{clip_text('.'.join(str(x) for x in e['loc']) or '(top)', 120)}: {clip_text(e['msg'], 300)}"
            for e in errs[:MAX_MESSAGES])
        more = f"; and {len(errs) - MAX_MESSAGES} more problems" if len(errs) > MAX_MESSAGES else ""
        raise InputError(f"invalid mapping: {msgs}{more}", file=str(p)) from None
