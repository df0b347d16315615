"""The input tables as data: columns, types, roles and the violent set.

Everything the validator checks is declared here, so the documentation
(docs/data-format.md) and the code read from one place.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# --- roles ---------------------------------------------------------------
OFFENDING_ROLES = ("offender", "suspect", "arrestee")
ROLES = OFFENDING_ROLES + ("victim", "witness", "other")

# --- values --------------------------------------------------------------
TRUE_WORDS = frozenset({"true", "1", "yes", "t", "y"})
FALSE_WORDS = frozenset({"false", "0", "no", "f", "n"})
SUPERVISION = ("none", "probation", "parole", "pretrial")
RELATIONS = ("conflict", "alliance")
# The interventions table's documented kinds (CONTRACT.md section 1). Any other lower-case code
# (letters, digits, underscores) is accepted as a local kind, reported in the run's notes, and
# evaluated as a kind of its own.
INTERVENTION_KINDS = ("call_in_invited", "call_in_attended", "custom_notification_delivered",
                      "outreach_contacted", "services_accepted", "services_declined")

# --- sex codes ------------------------------------------------------------------
# One reading of the persons table's free-text `sex` column for every stage that uses it
# (features, calibration): case-insensitive, surrounding spaces ignored; ISO/IEC 5218's
# numeric codes (1 male, 2 female) read too. Anything else is unknown.
MALE_WORDS = frozenset({"m", "male", "man", "1"})
FEMALE_WORDS = frozenset({"f", "female", "woman", "2"})


def normalise_sex(values) -> "pd.Series":
    """The persons table's ``sex`` values as ``"M"``, ``"F"`` or ``""`` (unknown), same index.

    >>> import pandas as pd
    >>> normalise_sex(pd.Series(["M", " female", "1", "2", "U", None, "x"])).tolist()
    ['M', 'F', 'M', 'F', '', '', '']
    """
    import numpy as np
    import pandas as pd

    s = pd.Series(values)
    low = s.astype(object).where(s.notna(), "").astype(str).str.strip().str.lower()
    out = np.where(low.isin(MALE_WORDS), "M", np.where(low.isin(FEMALE_WORDS), "F", ""))
    return pd.Series(out, index=s.index, dtype=object)


# --- the documented violent set ----------------------------------------------
# Used only where the incidents table has no `violent` column. NIBRS Group A
# crimes against persons that involve force or its threat (FBI NIBRS User
# Manual, 2023): homicide, kidnapping, sex offences by force, robbery and
# assault offences, plus weapon-law violations are *not* violent.
VIOLENT_NIBRS = frozenset({
    "09A", "09B", "100", "11A", "11B", "11C", "11D", "120", "13A", "13B", "13C",
    "64A", "64B",
})
# Offense names, compared case-insensitively after trimming.
VIOLENT_OFFENSES = frozenset({
    "murder", "homicide", "manslaughter", "non-negligent manslaughter",
    "negligent manslaughter", "kidnapping", "abduction", "kidnapping/abduction",
    "rape", "sodomy", "sexual assault", "sexual assault with an object", "fondling",
    "robbery", "armed robbery", "aggravated assault", "simple assault", "assault",
    "intimidation", "shooting", "non-fatal shooting", "fatal shooting",
    "human trafficking", "carjacking", "domestic violence",
})


@dataclass(frozen=True)
class Col:
    """One column of an input table.

    kind: ``id`` (non-empty string), ``date``, ``bool``, ``float``, ``int``,
    ``enum`` (one of ``choices``), ``code`` (a lower-case word of letters, digits and
    underscores, read case-insensitively: an open set of kinds), ``text`` (free, may be empty).
    """

    name: str
    kind: str = "text"
    required: bool = False
    choices: tuple[str, ...] = ()
    lo: float | None = None
    hi: float | None = None


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[Col, ...]
    key: tuple[str, ...] = ()          # unique key (later duplicates rejected)
    optional_file: bool = False
    date_column: str | None = None     # records dated after as_of are ignored
    aliases: dict = field(default_factory=dict)

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def col(self, name: str) -> Col | None:
        for c in self.columns:
            if c.name == name:
                return c
        return None


INCIDENTS = TableSpec(
    "incidents",
    (
        Col("incident_id", "id", required=True),
        Col("date", "date", required=True),
        Col("offense"), Col("nibrs_code"),
        Col("gun", "bool"), Col("fatal", "bool"), Col("violent", "bool"),
        Col("district"),
        Col("lat", "float", lo=-90, hi=90), Col("lon", "float", lo=-180, hi=180),
    ),
    key=("incident_id",),
    date_column="date",
)

INVOLVEMENTS = TableSpec(
    "involvements",
    (
        Col("incident_id", "id", required=True),
        Col("person_id", "id", required=True),
        Col("role", "enum", required=True, choices=ROLES),
    ),
    key=("incident_id", "person_id", "role"),
)

PERSONS = TableSpec(
    "persons",
    (
        Col("person_id", "id", required=True),
        Col("birth_date", "date"), Col("birth_year", "int", lo=1900, hi=2100),
        Col("sex"), Col("race"), Col("ethnicity"), Col("district"),
        Col("supervision", "enum", choices=SUPERVISION),
        Col("supervision_end", "date"),
        Col("deceased", "bool"), Col("incarcerated", "bool"),
        # for entity resolution (CONTRACT.md section 5): the agency that issued the ID, and the identity
        Col("source"), Col("first_name"), Col("last_name"), Col("middle_name"), Col("address"),
    ),
    key=("person_id",),
    optional_file=True,
)

GROUPS = TableSpec(
    "groups",
    (
        Col("person_id", "id", required=True),
        Col("group", "id", required=True),
        Col("source"), Col("date", "date"),
    ),
    key=("person_id", "group"),
    optional_file=True,
    date_column="date",
)

GROUP_RELATIONS = TableSpec(
    "group_relations",
    (
        Col("group_a", "id", required=True),
        Col("group_b", "id", required=True),
        Col("relation", "enum", required=True, choices=RELATIONS),
        Col("date", "date"), Col("source"),
    ),
    key=("group_a", "group_b", "relation"),
    optional_file=True,
    date_column="date",
)

INTERVENTIONS = TableSpec(
    "interventions",
    (
        Col("person_id", "id", required=True),
        Col("kind", "code", required=True),
        Col("date", "date", required=True),
        Col("source"), Col("list"), Col("run_id"), Col("notes"),
    ),
    key=("person_id", "kind", "date", "source"),
    optional_file=True,
    date_column="date",
)

PLACE_FEATURES = TableSpec(
    "place_features",
    (
        Col("feature_id", "id", required=True),
        Col("kind", "code", required=True),
        Col("lat", "float", required=True, lo=-90, hi=90),
        Col("lon", "float", required=True, lo=-180, hi=180),
        Col("date", "date"), Col("source"),
    ),
    key=("feature_id",),
    optional_file=True,
    date_column="date",
)

TABLES: dict[str, TableSpec] = {
    t.name: t for t in (INCIDENTS, INVOLVEMENTS, PERSONS, GROUPS, GROUP_RELATIONS, INTERVENTIONS, PLACE_FEATURES)
}


# --- quoting input in messages -----------------------------------------------------
QUOTE_LIMIT = 80        # characters of an input value quoted in a reason or an error message


def clip(value, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)``, cut to ``limit`` characters of the value with the length said.

    Every message that quotes input goes through this, so a hostile cell or
    mapping value cannot turn one error line into megabytes.

    >>> clip("P001")
    "'P001'"
    >>> clip("x" * 1000, 5)
    "'xxxxx'… (1000 characters)"
    """
    s = str(value)
    if len(s) <= limit:
        return repr(s)
    return f"{s[:limit]!r}… ({len(s)} characters)"


def clip_text(text: str, limit: int = 400) -> str:
    """A message on one line, cut to ``limit`` characters (for messages made by libraries, e.g. YAML's).

    >>> clip_text("abc" * 200, 10)
    'abcabcabca… (message cut: 600 characters)'
    >>> clip_text("while parsing\\n  in line 1")
    'while parsing in line 1'
    """
    text = " ".join(str(text).split())
    return text if len(text) <= limit else f"{text[:limit]}… (message cut: {len(text)} characters)"


# --- null markers ------------------------------------------------------------------
# Text that exports write for a missing value. An ID cell holding one of these
# (compared case-insensitively) is rejected like an empty one: otherwise every
# row with a missing person_id would become one person tied to everyone.
NULL_MARKERS = frozenset({"null", "na", "n/a", "nan", "none", "nil", "<na>", "nat", "\\n", "#n/a",
                          "undefined"})
