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

With ``long``, the incidents and involvements tables are both taken from
that one export: the incident columns of all rows of an incident must agree.

>>> m = Mapping.model_validate({"roles": {"SUSP": "suspect", "VS": ["victim", "suspect"]}})
>>> m.role_map()["susp"], m.role_map()["vs"]
(('suspect',), ('victim', 'suspect'))
"""
from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import InputError
from .schema import ROLES, TABLES

MAPPING_FILE = "mapping.yaml"


def _each_source_once(columns: dict[str, str], where: str) -> None:
    """One of the user's columns may feed only one fdnet column."""
    srcs = [str(x).strip().lower() for x in columns.values()]
    dup = sorted({x for x in srcs if srcs.count(x) > 1})
    if dup:
        raise ValueError(f"{where}: source column {dup[0]!r} is mapped to two fdnet columns")


class TableMap(BaseModel):
    model_config = ConfigDict(extra="forbid")
    file: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)

    @field_validator("file")
    @classmethod
    def _plain_name(cls, v):
        if v is not None and (Path(v).name != v or v in ("", ".", "..")):
            raise ValueError(f"file must be a plain file name inside the data folder, got {v!r}")
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
                raise ValueError(f"unknown table {name!r}; allowed: {', '.join(TABLES)}")
            spec = TABLES[name]
            _each_source_once(tm.columns, f"tables.{name}.columns")
            for canon in tm.columns:
                if spec.col(canon.lower()) is None:
                    allowed = ", ".join(c.name for c in spec.columns)
                    raise ValueError(f"tables.{name}.columns: unknown column {canon!r}; allowed: {allowed}")
        return v

    @field_validator("long")
    @classmethod
    def _long_columns(cls, v):
        if v is not None:
            _each_source_once(v.columns, "long.columns")
        return v

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, v):
        for code, roles in v.items():
            for r in [roles] if isinstance(roles, str) else roles:
                if r.lower() not in ROLES:
                    raise ValueError(f"roles.{code}: unknown role {r!r}; allowed: {', '.join(ROLES)}")
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
            raise ValueError(f"booleans: keys must be 'true' and 'false', got {sorted(bad)}")
        return v

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


def load_mapping(data_dir: Path, path: Path | None = None) -> Mapping:
    """Read the mapping file (``path`` or ``data_dir/mapping.yaml``); empty if none."""
    p = Path(path) if path else Path(data_dir) / MAPPING_FILE
    if not p.exists():
        if path:
            raise InputError("mapping file not found", file=str(p))
        return Mapping()
    try:
        # BaseLoader keeps every scalar as text: records-system codes such as
        # OFF, NO, Y or 1 must not turn into booleans or numbers
        raw = yaml.load(p.read_text(encoding="utf-8-sig"), Loader=yaml.BaseLoader) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(f"mapping file is not valid YAML: {exc}", file=str(p)) from None
    if not isinstance(raw, dict):
        raise InputError("mapping file must be a YAML mapping (key: value)", file=str(p))
    try:
        return Mapping.model_validate(raw)
    except ValidationError as exc:
        msgs = "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise InputError(f"invalid mapping: {msgs}", file=str(p)) from None
