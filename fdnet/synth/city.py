"""The synthetic city: a documented generative model of a city's police records.

``generate_city`` builds a city of street groups, people and incidents and
returns it as the input tables of CONTRACT section 1 (docs/data-format.md), plus
the *truth* the records only partly show: who is really in which group, and
the shootings of the months after the records end. ``write_city`` writes the
tables as a folder ``fdnet run`` reads, with the truth apart in ``truth/``.

The model, its parameters and what the truth is for are described for analysts
in docs/synthetic-city.md. In short, in the order the generator runs:

1. **Geography**: a square grid of police districts, each with a population
   weight and a "heat" (how much group activity it holds).
2. **Groups**: street groups of lognormal size, each with a territory (a
   district and a centre point), feuds and alliances with nearby groups.
   About 10% of people are members; the rest are in no group.
3. **People**: activity (a gamma-distributed offending propensity, higher for
   members), age, sex, race, ethnicity and home district.
4. **Background incidents**: a NIBRS offense mix over the period, with 0-5
   offenders drawn mostly from one group (group incidents) or from the
   district's non-members, plus victims (with victim-offender overlap),
   witnesses and "other" people.
5. **Shootings**: a self-exciting process run week by week over the period
   and the horizon. A person's hazard of being shot is a base rate times their
   risk plus an exposure that jumps when a co-offender or group-mate is shot, or
   when they or their group shot someone, and decays exponentially with mean
   125 days (Green, Horel & Papachristos, JAMA Internal Medicine 2017).
   Shooters come mostly from feuding groups, chosen by how hot the feud is.
6. **Records**: deaths and detentions end a person's later records; the group
   audit misses ~30% of members and mislabels ~10%; the relations list misses
   ~20% of feuds and alliances; IDs are formatted like a records system's.

Everything is vectorised over people and incidents; only the shooting process
loops, once per week. Randomness comes from one ``numpy.random.default_rng(seed)``
drawn in a fixed order, so a seed always gives the same city.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

__all__ = ["SynthCity", "CityParams", "generate_city", "generate_city_with", "write_city",
           "OFFENSES", "INPUT_TABLES"]

INPUT_TABLES = ("incidents", "involvements", "persons", "groups", "group_relations")

# --------------------------------------------------------------------------------------
# Offenses
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Offense:
    """One NIBRS offense of the background mix.

    share: fraction of background incidents; victim_p: chance the incident has a
    recorded victim; unknown_p: chance no offender is recorded; group_p: chance
    the incident is a group incident (offenders drawn from one group);
    arrest_p: chance a recorded offender is an arrestee; profile: the number-of-
    offenders distribution used outside groups (solo / duo / crew).
    """

    code: str
    name: str
    share: float
    violent: bool
    victim_p: float
    unknown_p: float
    group_p: float
    arrest_p: float
    profile: str
    gun: bool = False


OFFENSES: tuple[Offense, ...] = (
    Offense("13B", "Simple Assault", 0.19, True, 0.95, 0.10, 0.15, 0.30, "solo"),
    Offense("13A", "Aggravated Assault", 0.06, True, 0.95, 0.15, 0.35, 0.30, "duo"),
    Offense("13C", "Intimidation", 0.05, True, 0.95, 0.10, 0.15, 0.20, "solo"),
    Offense("120", "Robbery", 0.07, True, 0.95, 0.25, 0.45, 0.25, "crew"),
    Offense("35A", "Drug/Narcotic Violations", 0.17, False, 0.0, 0.0, 0.45, 0.75, "crew"),
    Offense("520", "Weapon Law Violations", 0.06, False, 0.0, 0.0, 0.50, 0.75, "duo", gun=True),
    Offense("220", "Burglary/Breaking & Entering", 0.10, False, 0.90, 0.40, 0.25, 0.15, "duo"),
    Offense("240", "Motor Vehicle Theft", 0.07, False, 0.90, 0.40, 0.30, 0.15, "duo"),
    Offense("23H", "All Other Larceny", 0.15, False, 0.75, 0.35, 0.10, 0.20, "solo"),
    Offense("290", "Destruction/Damage/Vandalism of Property", 0.08, False, 0.70, 0.40, 0.15,
            0.15, "duo"),
)
# The two offenses a shooting is recorded as (gun=true, at least one victim).
SHOOTING_NONFATAL = ("13A", "Aggravated Assault")
SHOOTING_FATAL = ("09A", "Murder & Nonnegligent Manslaughter")

# Number-of-offenders distributions, P(k = 1..5).
_PROFILES = {
    "solo": (0.80, 0.15, 0.04, 0.01, 0.00),
    "duo": (0.55, 0.30, 0.10, 0.04, 0.01),
    "crew": (0.40, 0.30, 0.17, 0.08, 0.05),
    "alone": (0.90, 0.08, 0.02, 0.00, 0.00),
}
_PROFILE_NAMES = ("alone", "solo", "duo", "crew")

# Roles, in alphabetical order: the code is the sort key for involvements.
ROLES = ("arrestee", "offender", "other", "suspect", "victim", "witness")
_R_ARRESTEE, _R_OFFENDER, _R_OTHER, _R_SUSPECT, _R_VICTIM, _R_WITNESS = range(6)
_OFFENDING_CODES = (_R_ARRESTEE, _R_OFFENDER, _R_SUSPECT)


def _code_index(code: str) -> int:
    return [o.code for o in OFFENSES].index(code)

# NIBRS-style person codes.
# White, Black, Asian, American Indian, Pacific Islander, Unknown
_RACES = ("W", "B", "A", "I", "P", "U")
_RACE_MEAN = (0.42, 0.45, 0.06, 0.01, 0.005, 0.055)  # city-wide mix; districts vary around it
_RACE_CONCENTRATION = 6.0                            # lower: more segregated districts
_ETHNICITIES = ("H", "N", "U")                   # Hispanic, Not Hispanic, Unknown

_GROUP_WORDS = (
    "Oak", "Elm", "Maple", "Cedar", "Pine", "Birch", "Walnut", "Chestnut", "Spruce", "Willow",
    "Ash", "Hickory", "Poplar", "Magnolia", "Laurel", "Holly", "Juniper", "Sycamore", "Cypress",
    "Aspen", "Alder", "Linden", "Hawthorn", "Dogwood", "Redwood", "Hemlock", "Locust",
    "Mulberry", "Cherry", "Peach", "Park", "Lake", "River", "Hill", "Ridge", "Grove", "Garden",
    "Market", "Bridge", "Mill", "Union", "Church", "Main", "Front", "Water", "Spring", "Summit",
    "Prospect", "Harbor", "Station",
)
_GROUP_KINDS = ("Crew", "Boys", "Block", "Gang", "Set", "Mob", "Squad", "Clique")
_GROUP_SIDES = ("", "North ", "South ", "East ", "West ")


# --------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CityParams:
    """Every knob of the generative model, with the defaults ``generate_city`` uses.

    Rates are per person; "per tie", "per victim" and so on are expected numbers
    of follow-on shooting victims ("offspring") over the whole exponential
    kernel. docs/synthetic-city.md explains each one.
    """

    # geography
    centre_lat: float = 40.0           # open prairie: no real neighbourhood is implied
    centre_lon: float = -100.0
    cell_lat: float = 0.03             # one district is ~3.3 km tall
    cell_lon: float = 0.04
    # groups
    member_share: float = 0.10         # share of people who are in a group
    group_size_median: float = 15.0
    group_size_sigma: float = 0.7      # lognormal sigma of group sizes
    group_size_min: int = 4
    group_size_max: int = 150
    feuds_per_group: float = 0.8       # conflicts each group starts (Poisson); ~1.5 feuds per group
    alliances_per_group: float = 0.5
    territory_sd: float = 0.2          # spread around the territory centre, in district cells
    member_home_in_territory: float = 0.85
    # people
    member_activity: float = 3.0       # mean offending activity of members (non-members: 1)
    member_activity_shape: float = 0.8
    nonmember_activity_shape: float = 0.5
    member_male: float = 0.93
    nonmember_male: float = 0.68
    # background incidents
    rows_per_person: float = 4.0       # involvement rows per person over 1,095 days
    seasonal_background: float = 0.15  # summer peak of background incidents
    group_slot_own: float = 0.84       # offender slot of a group incident: own group
    group_slot_ally: float = 0.06      # ... an allied group (own group when none)
    group_slot_district_member: float = 0.04  # ... another member from the district
    nongroup_slot_member: float = 0.05  # offender slot of a non-group incident: a member
    second_victim_p: float = 0.10
    witness_p: float = 0.15
    witness_p_violent: float = 0.25
    other_p: float = 0.05
    mutual_combat_p: float = 0.03      # assault offenders also recorded as victim
    double_role_p: float = 0.02        # offenders also recorded as arrestee
    suspect_p: float = 0.30            # non-arrested offender slots recorded as suspect
    jail_after_violent_arrest: float = 0.30  # last record a violent/weapon arrest -> jailed
    # shootings: base hazard
    base_victim_rate: float = 1.6      # base shooting victims per 1,000 people per year
    member_risk: float = 2.0           # risk multiplier of group members
    feud_risk: float = 0.5             # extra risk per feud of one's group
    female_risk: float = 0.25
    seasonal_amplitude: float = 0.30   # summer peak (mid-July) of shootings
    # shootings: contagion (Hawkes kernel, exponential delay)
    delay_mean_days: float = 125.0     # Green, Horel & Papachristos (2017)
    alpha_cooffender: float = 0.06     # per co-offending tie of a victim
    alpha_cooffender_max: float = 0.30  # cap over all ties of one victim
    alpha_group: float = 0.12          # spread over the victim's group
    alpha_retaliation: float = 0.20    # spread over the shooter's group
    alpha_shooter: float = 0.10        # on the shooter (retaliation against him or her)
    tie_lead_days: int | None = None   # a tie transmits from this long before its first
                                       # record; None: at any time (the association predates it)
    burn_in_days: int = 364            # the process runs this long before the period starts,
                                       # unrecorded, so the period opens in a steady state
    # shootings: who, how
    p_rival_shooter: float = 0.60      # victim in a feuding group: shooter from a rival
    p_acquaintance_shooter: float = 0.15  # otherwise: shooter is one of the victim's co-offenders
    feud_heat_decay_days: float = 180.0
    p_multi_victim: float = 0.12
    p_fatal: float = 0.17
    p_identified: float = 0.30         # shooter recorded (suspect/arrestee); fatal: below
    p_identified_fatal: float = 0.55
    p_arrested: float = 0.50           # identified shooter recorded as arrestee
    p_detained: float = 0.60           # arrested shooter held (no further records)
    shooting_witness_p: float = 0.25
    natural_death_p: float = 0.002
    # the group audit and the relations list
    audit_miss: float = 0.30           # true members not in the audit
    audit_mislabel: float = 0.10       # true members listed under another group
    audit_false_positive: float = 0.05  # non-member associates listed, per listed member
    relation_listed: float = 0.80      # true feuds/alliances in group_relations
    # supervision
    supervision_per_offense: float = 0.05
    supervision_per_arrest: float = 0.12
    supervision_max: float = 0.60


# --------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------


class _Lazy:
    """A table held as numbers and codes, its text made on demand: whole (a DataFrame) or a
    slice of rows at a time (so a 10M-person city is written without ever holding its text).

    ``columns`` maps each column name to a function of a row range ``(a, b)`` giving that
    slice as an Arrow string array or a NumPy array.
    """

    def __init__(self, n_rows: int, columns: dict):
        self.n = int(n_rows)
        self.columns = columns

    def frame(self, a: int = 0, b: int | None = None) -> pd.DataFrame:
        b = self.n if b is None else min(b, self.n)
        return pd.DataFrame({k: (_col(v) if isinstance(v, (pa.Array, pa.ChunkedArray)) else v)
                             for k, v in ((k, f(a, b)) for k, f in self.columns.items())})


def _take(values, codes: np.ndarray):
    """A column ``values[codes]`` (values: an Arrow string array or a list of strings)."""
    arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(list(values), type=pa.string())
    return lambda a, b: arr.take(pa.array(np.asarray(codes[a:b], dtype=np.int64)))


def _idcol(prefix: str, numbers, width: int):
    """A column of zero-padded IDs of ``numbers`` (an array, or None for 1, 2, 3, ...)."""
    if numbers is None:
        return lambda a, b: _ids(prefix, np.arange(a + 1, b + 1), width)
    return lambda a, b: _ids(prefix, numbers[a:b], width)


def _num(values: np.ndarray):
    return lambda a, b: values[a:b]


class SynthCity:
    """A generated city: the five input tables, the truth behind them, the period end.

    incidents, involvements, persons, groups (the audit) and group_relations are
    the inputs ``fdnet run`` reads (CONTRACT section 1). truth_membership (every
    person's planted group, "" for none) and truth_future (shootings in the
    horizon after ``end_date``: victims and the true shooter as ``suspect``) are
    never inputs: they are what tests score the engine against.

    The tables are held compactly (numbers and codes) and become DataFrames when
    first read; :func:`write_city` writes them in slices without making the frames,
    and :meth:`n_rows` counts rows without them either.
    """

    _NAMES = INPUT_TABLES + ("truth_membership", "truth_future")

    def __init__(self, incidents, involvements, persons, groups, group_relations,
                 truth_membership, truth_future, end_date: str, stats: dict | None = None):
        self._src = dict(zip(self._NAMES, (incidents, involvements, persons, groups, group_relations,
                                           truth_membership, truth_future)))
        self.end_date = end_date
        self.stats = dict(stats or {})
        # optional inputs (e.g. interventions, planted by fdnet.synth.interventions) and their truth,
        # written beside the five tables only when present: a plain city's folder is unchanged
        self.extra_inputs: dict[str, pd.DataFrame] = {}
        self.extra_truth: dict[str, pd.DataFrame] = {}

    def _frame(self, name: str) -> pd.DataFrame:
        src = self._src[name]
        if isinstance(src, _Lazy):
            src = self._src[name] = src.frame()
        return src

    incidents = property(lambda self: self._frame("incidents"))
    involvements = property(lambda self: self._frame("involvements"))
    persons = property(lambda self: self._frame("persons"))
    groups = property(lambda self: self._frame("groups"))
    group_relations = property(lambda self: self._frame("group_relations"))
    truth_membership = property(lambda self: self._frame("truth_membership"))
    truth_future = property(lambda self: self._frame("truth_future"))
    interventions = property(lambda self: self.extra_inputs.get("interventions"))
    truth_interventions = property(lambda self: self.extra_truth.get("interventions"))

    def n_rows(self, name: str) -> int:
        """Rows of table ``name`` (an input table or a truth table), without making its frame.

        >>> generate_city(500, seed=1).n_rows("persons")
        500
        """
        src = self._src[name] if name in self._src else self.extra_inputs[name]
        return src.n if isinstance(src, _Lazy) else len(src)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The five input tables by name."""
        return {name: getattr(self, name) for name in INPUT_TABLES}

    def __repr__(self) -> str:
        return (f"SynthCity({self.n_rows('persons'):,} people, {self.n_rows('incidents'):,} incidents, "
                f"{self.n_rows('involvements'):,} involvements, end_date={self.end_date!r})")


# --------------------------------------------------------------------------------------
# Small vectorised tools
# --------------------------------------------------------------------------------------


class _Pool:
    """Weighted sampling of items inside segments (people inside a district, members
    inside a group), vectorised: one cumulative-weight array, one searchsorted."""

    def __init__(self, items: np.ndarray, keys: np.ndarray, n_keys: int):
        order = np.argsort(keys, kind="stable")
        self.items = np.asarray(items, dtype=np.int64)[order]
        sk = np.asarray(keys)[order]
        ar = np.arange(n_keys)
        self.lo = np.searchsorted(sk, ar, "left")
        self.hi = np.searchsorted(sk, ar, "right")
        self.cum = np.zeros(0)
        # items 0..n-1 in order: weights need no gather, and a cumulative sum over all
        # items (computed elsewhere) can serve as it is
        self.identity = bool(np.array_equal(self.items, np.arange(len(self.items))))

    def weigh(self, w_by_item: np.ndarray) -> "_Pool":
        """Set weights: ``w_by_item`` is indexed by item (e.g. person index)."""
        w = w_by_item[: len(self.items)] if self.identity else w_by_item[self.items]
        self.cum = np.cumsum(w, dtype=np.float64)
        return self

    def sample_uniform(self, keys: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One item per key, uniformly within the key's segment; -1 where empty."""
        keys = np.asarray(keys, dtype=np.int64)
        u = rng.random(len(keys))
        out = np.full(len(keys), -1, dtype=np.int64)
        if len(keys) == 0 or len(self.items) == 0:
            return out
        kk = np.maximum(keys, 0)
        lo, hi = self.lo[kk], self.hi[kk]
        ok = (keys >= 0) & (hi > lo)
        idx = np.minimum(lo + (u * (hi - lo)).astype(np.int64), len(self.items) - 1)
        out[ok] = self.items[idx[ok]]
        return out

    def sample(self, keys: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One item per key, drawn by weight within the key's segment; -1 where the
        segment is empty or weighs nothing."""
        keys = np.asarray(keys, dtype=np.int64)
        u = rng.random(len(keys))
        out = np.full(len(keys), -1, dtype=np.int64)
        if len(keys) == 0 or len(self.items) == 0:
            return out
        ok_key = keys >= 0
        kk = np.where(ok_key, keys, 0)
        lo, hi = self.lo[kk], self.hi[kk]
        c = self.cum
        base = np.where(lo > 0, c[np.maximum(lo - 1, 0)], 0.0)
        top = np.where(hi > 0, c[np.maximum(hi - 1, 0)], 0.0)
        ok = ok_key & (hi > lo) & (top > base)
        x = base + u * (top - base)
        idx = np.searchsorted(c, x, side="right")
        idx = np.clip(idx, lo, np.maximum(hi - 1, lo))
        idx = np.minimum(idx, len(self.items) - 1)
        out[ok] = self.items[idx[ok]]
        return out


def _order(*keys: tuple[np.ndarray, int]) -> np.ndarray:
    """Stable sort order by several non-negative integer keys, most significant first,
    each given with its bound: one argsort of a combined int64 key where it fits."""
    total = 1
    for _, bound in keys:
        total *= max(int(bound), 1)
    if total >= 2 ** 62:
        return np.lexsort(tuple(np.asarray(a) for a, _ in reversed(keys)))
    combined = np.zeros(len(keys[0][0]), dtype=np.int64)
    for a, bound in keys:
        combined *= max(int(bound), 1)
        combined += np.asarray(a, dtype=np.int64)
    return np.argsort(combined, kind="stable")


def _csr(src: np.ndarray, dst: np.ndarray, n: int, *extra: np.ndarray):
    """Adjacency lists: offsets (n+1), neighbours, and ``extra`` aligned with them."""
    order = _order((src, n), (dst, n))
    off = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=off[1:])
    return (off, dst[order].astype(np.int64), *[e[order] for e in extra])


def _random_neighbour(off: np.ndarray, nbr: np.ndarray, nodes: np.ndarray,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A uniformly random neighbour of each node (-1 for none), and its position."""
    u = rng.random(len(nodes))
    nodes = np.asarray(nodes, dtype=np.int64)
    if len(nodes) == 0 or len(nbr) == 0:
        return np.full(len(nodes), -1, np.int64), np.full(len(nodes), -1, np.int64)
    safe = np.maximum(nodes, 0)
    deg = off[safe + 1] - off[safe]
    deg = np.where(nodes >= 0, deg, 0)
    pos = off[safe] + (u * deg).astype(np.int64)
    pos = np.minimum(pos, len(nbr) - 1)
    got = deg > 0
    return np.where(got, nbr[pos], -1), np.where(got, pos, -1)


def _categorical(rng: np.random.Generator, cum: np.ndarray, size: int) -> np.ndarray:
    """Draws from a categorical distribution given its cumulative probabilities."""
    return np.minimum(np.searchsorted(cum, rng.random(size) * cum[-1], "right"), len(cum) - 1)


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """Zero-padded IDs (``P0000123``) built digit by digit, as an Arrow string array."""
    numbers = np.asarray(numbers, dtype=np.int64)
    buf = np.empty((len(numbers), len(prefix) + width), dtype=np.uint8)
    buf[:, : len(prefix)] = np.frombuffer(prefix.encode(), dtype=np.uint8)
    x = numbers.copy()
    for k in range(len(prefix) + width - 1, len(prefix) - 1, -1):
        buf[:, k] = 48 + x % 10
        x //= 10
    return pa.array(buf.view(f"S{len(prefix) + width}").ravel()).cast(pa.string())


def _col(values, codes: np.ndarray | None = None) -> pd.Series:
    """A pandas string column: ``values`` (Arrow array or list), optionally taken at
    ``codes``."""
    arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(
        list(values), type=pa.string())
    if codes is not None:
        arr = arr.take(pa.array(np.asarray(codes, dtype=np.int64)))
    s = arr.to_pandas()
    if s.dtype == object:  # pandas < 3
        s = s.astype("string")
    return s.reset_index(drop=True)


def _day_strings(start: np.datetime64, n_days: int) -> pa.Array:
    return pa.array((start + np.arange(n_days)).astype("datetime64[D]").astype(str).tolist(),
                    type=pa.string())


def _season(start: np.datetime64, day: np.ndarray, amplitude: float) -> np.ndarray:
    """1 + amplitude * cos(...) peaking on day-of-year 196 (mid-July)."""
    d = start + np.asarray(day, dtype=np.int64)
    doy = (d - d.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.int64)
    return 1.0 + amplitude * np.cos(2 * np.pi * (doy - 196) / 365.25)


# --------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------


@dataclass
class _Geo:
    side: int
    n: int
    names: list[str]
    lat0: float
    lon0: float
    clat: float
    clon: float
    pop_w: np.ndarray
    heat: np.ndarray

    def centre(self, d):
        d = np.asarray(d)
        return (self.lat0 + (d // self.side + 0.5) * self.clat,
                self.lon0 + (d % self.side + 0.5) * self.clon)

    def district_of(self, lat, lon):
        r = np.clip(np.floor((lat - self.lat0) / self.clat), 0, self.side - 1).astype(np.int64)
        c = np.clip(np.floor((lon - self.lon0) / self.clon), 0, self.side - 1).astype(np.int64)
        return r * self.side + c

    def uniform_in(self, d, rng):
        u = rng.random((len(d), 2))
        d = np.asarray(d)
        return (self.lat0 + (d // self.side + u[:, 0]) * self.clat,
                self.lon0 + (d % self.side + u[:, 1]) * self.clon)


def _geography(n_people: int, p: CityParams, rng: np.random.Generator) -> _Geo:
    side = int(np.clip(round(n_people ** 0.25 / 3), 2, 9))
    nd = side * side
    width = max(2, len(str(nd)))
    names = [f"D{i + 1:0{width}d}" for i in range(nd)]
    pop_w = rng.gamma(4.0, 0.25, nd)
    heat = rng.gamma(0.8, 1.25, nd)
    return _Geo(side, nd, names, p.centre_lat - side * p.cell_lat / 2,
                p.centre_lon - side * p.cell_lon / 2, p.cell_lat, p.cell_lon, pop_w, heat)


def _group_names(n_groups: int, rng: np.random.Generator) -> list[str]:
    words = list(_GROUP_WORDS) + [f"{k}{_ordinal(k)} St" for k in range(1, 100)]
    n_combo = len(_GROUP_SIDES) * len(words) * len(_GROUP_KINDS)
    pick = rng.permutation(n_combo)[: min(n_groups, n_combo)]
    names = []
    for c in pick.tolist():
        side, rest = divmod(c, len(words) * len(_GROUP_KINDS))
        w, k = divmod(rest, len(_GROUP_KINDS))
        names.append(f"{_GROUP_SIDES[side]}{words[w]} {_GROUP_KINDS[k]}")
    for i in range(len(names), n_groups):  # very large cities: numbered sets, still unique
        names.append(f"{names[i % n_combo]} {i // n_combo + 1}")
    return names


def _ordinal(k: int) -> str:
    if 10 <= k % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")


def _groups_and_relations(n_people: int, geo: _Geo, p: CityParams, rng: np.random.Generator):
    """Group sizes, territories, and the true conflict / alliance pairs."""
    target = int(round(p.member_share * n_people))
    sizes = np.clip(np.round(rng.lognormal(math.log(p.group_size_median), p.group_size_sigma,
                                           max(4, target // 8 + 8))),
                    p.group_size_min, p.group_size_max).astype(np.int64)
    cs = np.cumsum(sizes)
    n_groups = int(np.searchsorted(cs, target, "left")) + 1
    n_groups = min(n_groups, len(sizes))
    sizes = sizes[:n_groups].copy()
    if target == 0:
        sizes = np.zeros(0, np.int64)
    elif sizes.sum() > target:
        sizes[-1] -= sizes.sum() - target
        if sizes[-1] < 2 and len(sizes) > 1:
            sizes[-2] += sizes[-1]
            sizes = sizes[:-1]
    G = len(sizes)
    gw = geo.heat ** 1.5 + 1e-3
    gdist = _categorical(rng, np.cumsum(gw), G)
    clat, clon = geo.centre(gdist)
    off = (rng.random((G, 2)) - 0.5) * 0.6
    glat = clat + off[:, 0] * geo.clat
    glon = clon + off[:, 1] * geo.clon
    names = _group_names(G, rng)

    # Feuds and alliances with groups nearby in district order.
    order = np.lexsort((np.arange(G), gdist))
    pos = np.empty(G, np.int64)
    pos[order] = np.arange(G)

    def partners(rate):
        k = rng.poisson(rate, G)
        src = np.repeat(np.arange(G), k)
        step = 1 + rng.geometric(0.35, len(src))
        sign = np.where(rng.random(len(src)) < 0.5, -1, 1)
        if G == 0:
            return np.zeros(0, np.int64)
        dst = order[(pos[src] + sign * step) % G]
        a, b = np.minimum(src, dst), np.maximum(src, dst)
        keep = a != b
        return np.unique(a[keep] * G + b[keep])

    conf = partners(p.feuds_per_group) if G > 1 else np.zeros(0, np.int64)
    ally = partners(p.alliances_per_group) if G > 1 else np.zeros(0, np.int64)
    ally = ally[~np.isin(ally, conf)]
    return sizes, gdist, glat, glon, names, conf, ally


def _generate(n_people: int, seed: int, start: str, days: int, horizon_days: int,
              p: CityParams) -> SynthCity:
    if n_people < 50:
        raise ValueError(f"n_people must be at least 50, not {n_people}")
    if days < 28:
        raise ValueError("days must be at least 28")
    if horizon_days < 0:
        raise ValueError("horizon_days must be >= 0")
    rng = np.random.default_rng(seed)
    start_d = np.datetime64(start, "D")
    n = int(n_people)
    geo = _geography(n, p, rng)
    ND = geo.n

    # ---- groups ------------------------------------------------------------------
    sizes, gdist, glat, glon, gnames, conf_pairs, ally_pairs = _groups_and_relations(
        n, geo, p, rng)
    G = len(sizes)
    n_mem = int(sizes.sum())
    grp = np.full(n, -1, np.int64)
    grp[:n_mem] = np.repeat(np.arange(G), sizes)
    member = grp >= 0
    ca, cb = (conf_pairs // max(G, 1), conf_pairs % max(G, 1))
    aa, ab = (ally_pairs // max(G, 1), ally_pairs % max(G, 1))
    conf_off, conf_nbr, conf_eid = _csr(np.r_[ca, cb], np.r_[cb, ca], G,
                                        np.r_[np.arange(len(ca)), np.arange(len(ca))])
    ally_off, ally_nbr = _csr(np.r_[aa, ab], np.r_[ab, aa], G)
    n_feuds = np.diff(conf_off)
    feud_base = rng.gamma(2.0, 0.5, len(ca))       # baseline intensity of each feud

    # ---- people --------------------------------------------------------------------
    home = _categorical(rng, np.cumsum(geo.pop_w * (0.6 + 0.4 * geo.heat / geo.heat.mean())), n)
    stay = member & (rng.random(n) < p.member_home_in_territory)
    home[stay] = gdist[grp[stay]]
    age = np.where(member, 15 + rng.gamma(2.0, 4.5, n), 14 + rng.gamma(2.2, 11.0, n))
    age = np.clip(age, 12, 92)
    shape_m, shape_n = p.member_activity_shape, p.nonmember_activity_shape
    act = np.where(member, rng.gamma(shape_m, p.member_activity / shape_m, n),
                   rng.gamma(shape_n, 1.0 / shape_n, n))
    act *= np.clip(np.exp(-np.maximum(age - 24, 0) / 20.0), 0.15, 1.0)
    act = np.minimum(act, 5.0 * p.member_activity)   # no one is arrested every week
    u = rng.random(n)
    male_p = np.where(member, p.member_male, p.nonmember_male)
    sex = np.where(u < male_p, 0, np.where(u < 0.995, 1, 2))   # M, F, U
    race_mix = rng.dirichlet(np.array(_RACE_MEAN) * _RACE_CONCENTRATION, ND)
    race = (rng.random(n)[:, None] > np.cumsum(race_mix, axis=1)[home]).sum(axis=1)
    race = np.minimum(race, len(_RACES) - 1)
    hisp = rng.beta(1.2, 5.0, ND)
    u = rng.random(n)
    eth = np.where(u < 0.03, 2, np.where(u < 0.03 + 0.97 * hisp[home], 0, 1))
    # shooting risk: activity, membership, feuds, sex, youth; mean 1
    risk = (act ** 0.7) * np.where(member, p.member_risk, 1.0)
    risk *= np.where(member, 1.0 + p.feud_risk * n_feuds[np.maximum(grp, 0)], 1.0)
    risk *= np.where(sex == 1, p.female_risk, 1.0)
    risk *= np.exp(-np.maximum(age - 27, 0) / 10.0)
    risk /= risk.mean()
    # internally people are numbered by home district (their IDs are drawn at random
    # later), so each district is one contiguous range of indices
    perm = np.argsort(home, kind="stable")
    grp, home, age, act, sex, race, eth, risk = (
        a[perm] for a in (grp, home, age, act, sex, race, eth, risk))
    member = grp >= 0

    # ---- background incidents -----------------------------------------------------
    off_share = np.array([o.share for o in OFFENSES])
    off_violent = np.array([o.violent for o in OFFENSES])
    off_vic = np.array([o.victim_p for o in OFFENSES])
    off_unknown = np.array([o.unknown_p for o in OFFENSES])
    off_group = np.array([o.group_p for o in OFFENSES])
    off_arrest = np.array([o.arrest_p for o in OFFENSES])
    off_prof = np.array([_PROFILE_NAMES.index(o.profile) for o in OFFENSES])
    prof_cum = np.cumsum(np.array([_PROFILES[k] for k in _PROFILE_NAMES]), axis=1)

    # expected rows per incident -> number of incidents for the row target
    ek = np.array([np.dot(np.arange(1, 6), _PROFILES[k]) for k in _PROFILE_NAMES])
    k_mean = off_group * ek[3] + (1 - off_group) * ek[off_prof - 1]
    rows_inc = ((1 - off_unknown) * k_mean + off_vic * (1 + p.second_victim_p)
                + np.where(off_violent, p.witness_p_violent, p.witness_p) * 1.25 + p.other_p)
    mean_rows = float(np.dot(off_share, rows_inc))
    target_rows = p.rows_per_person * n * days / 1095.0 * 0.965  # the rest: shootings, fix-up
    n_inc = max(10, int(round(target_rows / mean_rows)))

    day_w = _season(start_d, np.arange(days), p.seasonal_background)
    inc_day = _categorical(rng, np.cumsum(day_w), n_inc)
    inc_off = _categorical(rng, np.cumsum(off_share), n_inc)
    gsum = np.bincount(grp[member], weights=act[member], minlength=G)
    is_grp = (rng.random(n_inc) < off_group[inc_off]) & (G > 0)
    inc_grp = np.full(n_inc, -1, np.int64)
    if G:
        inc_grp[is_grp] = _categorical(rng, np.cumsum(gsum), int(is_grp.sum()))
    dw = geo.pop_w * (0.5 + geo.heat)
    d0 = _categorical(rng, np.cumsum(dw), n_inc)
    lat, lon = geo.uniform_in(d0, rng)
    gi = inc_grp[is_grp]
    z = rng.normal(0.0, p.territory_sd, (len(gi), 2))
    lat[is_grp] = glat[gi] + z[:, 0] * geo.clat
    lon[is_grp] = glon[gi] + z[:, 1] * geo.clon
    inc_dist = geo.district_of(lat, lon)
    inc_lat, inc_lon = lat, lon

    # outside groups offenders act alone more often: one step down the profile ladder
    prof = np.where(is_grp, 3, off_prof[inc_off] - 1)
    k = 1 + (rng.random(n_inc)[:, None] > prof_cum[prof][:, :4]).sum(axis=1)
    k[rng.random(n_inc) < off_unknown[inc_off]] = 0

    # pools
    everyone = np.arange(n)
    pool_grp = _Pool(everyone[member], grp[member], max(G, 1)).weigh(act)
    pool_dmem = _Pool(everyone[member], home[member], ND).weigh(act)
    pool_dnon = _Pool(everyone[~member], home[~member], ND).weigh(act)
    pool_dall = _Pool(everyone, home, ND)
    pool_all = _Pool(everyone, np.zeros(n, np.int64), 1).weigh(act)

    slot_inc = np.repeat(np.arange(n_inc), k)
    S = len(slot_inc)
    s_grp = inc_grp[slot_inc]
    s_dist = inc_dist[slot_inc]
    u = rng.random(S)
    in_g = s_grp >= 0
    c1 = p.group_slot_own
    c2 = c1 + p.group_slot_ally
    c3 = c2 + p.group_slot_district_member
    use_own = in_g & (u < c1)
    use_ally = in_g & (u >= c1) & (u < c2)
    use_dmem = (in_g & (u >= c2) & (u < c3)) | (~in_g & (u < p.nongroup_slot_member))
    use_dnon = ~(use_own | use_ally | use_dmem)
    off_person = np.full(S, -1, np.int64)
    ally_pick, _ = _random_neighbour(ally_off, ally_nbr, s_grp[use_ally], rng)
    ally_pick = np.where(ally_pick >= 0, ally_pick, s_grp[use_ally])
    off_person[use_own] = pool_grp.sample(s_grp[use_own], rng)
    off_person[use_ally] = pool_grp.sample(ally_pick, rng)
    off_person[use_dmem] = pool_dmem.sample(s_dist[use_dmem], rng)
    off_person[use_dnon] = pool_dnon.sample(s_dist[use_dnon], rng)
    miss = off_person < 0
    pool_dall.weigh(act)
    off_person[miss] = pool_dall.sample(s_dist[miss], rng)
    miss = off_person < 0
    off_person[miss] = pool_all.sample(np.zeros(int(miss.sum()), np.int64), rng)
    u = rng.random(S)
    a_p = off_arrest[inc_off[slot_inc]]
    off_role = np.where(u < a_p, _R_ARRESTEE,
                        np.where(u < a_p + (1 - a_p) * p.suspect_p, _R_SUSPECT, _R_OFFENDER)).astype(np.int8)
    # (large temporaries are freed as soon as they are spent: a 10M-person city holds ~40M rows)
    del s_grp, s_dist, u, in_g, use_own, use_ally, use_dmem, use_dnon, ally_pick, miss, a_p
    del pool_grp, pool_dmem, pool_dnon, pool_all, is_grp, inc_grp, prof, k, d0, gi, z

    # victims, witnesses, others
    nv = (rng.random(n_inc) < off_vic[inc_off]) * (1 + (rng.random(n_inc) < p.second_victim_p))
    wp = np.where(off_violent[inc_off], p.witness_p_violent, p.witness_p)
    nw = (rng.random(n_inc) < wp) * (1 + (rng.random(n_inc) < 0.25))
    no = (rng.random(n_inc) < p.other_p).astype(np.int64)
    v_inc = np.repeat(np.arange(n_inc), nv)
    viol_v = off_violent[inc_off[v_inc]]
    v_person = np.full(len(v_inc), -1, np.int64)
    pool_dall.weigh(0.3 + act)                    # victim-offender overlap
    v_person[viol_v] = pool_dall.sample(inc_dist[v_inc[viol_v]], rng)
    v_person[~viol_v] = pool_dall.sample_uniform(inc_dist[v_inc[~viol_v]], rng)
    w_inc = np.repeat(np.arange(n_inc), nw)
    w_person = pool_dall.sample_uniform(inc_dist[w_inc], rng)
    o_inc = np.repeat(np.arange(n_inc), no)
    o_person = pool_dall.sample_uniform(inc_dist[o_inc], rng)

    r_inc = np.concatenate([slot_inc, v_inc, w_inc, o_inc])
    r_per = np.concatenate([off_person, v_person, w_person, o_person])
    r_role = np.concatenate([off_role, np.full(len(v_inc), _R_VICTIM, np.int8),
                             np.full(len(w_inc), _R_WITNESS, np.int8), np.full(len(o_inc), _R_OTHER, np.int8)])
    r_prio = np.concatenate([np.zeros(S, np.int8), np.ones(len(v_inc), np.int8),
                             np.full(len(w_inc), 2, np.int8), np.full(len(o_inc), 3, np.int8)])
    del slot_inc, v_inc, w_inc, o_inc, off_person, v_person, w_person, o_person, off_role, viol_v, pool_dall
    ok = r_per >= 0
    r_inc, r_per, r_role, r_prio = r_inc[ok], r_per[ok], r_role[ok], r_prio[ok]
    # one row per (incident, person): the most "offending" role wins
    key = r_inc * n + r_per
    o = _order((key, n_inc * n), (r_prio, 4))
    del r_prio
    kso = key[o]
    del key
    first = np.ones(len(o), bool)
    first[1:] = kso[1:] != kso[:-1]
    del kso
    keep = o[first]
    del o, first, ok
    r_inc, r_per, r_role = r_inc[keep], r_per[keep], r_role[keep]
    del keep
    # rarely, one person holds two roles in one incident
    offending = np.isin(r_role, _OFFENDING_CODES)
    assault = np.isin(inc_off[r_inc], [_code_index("13A"), _code_index("13B")])
    mc = offending & assault & (rng.random(len(r_inc)) < p.mutual_combat_p)
    dr = (r_role == _R_OFFENDER) & (rng.random(len(r_inc)) < p.double_role_p)
    r_inc = np.concatenate([r_inc, r_inc[mc], r_inc[dr]])
    r_per = np.concatenate([r_per, r_per[mc], r_per[dr]])
    r_role = np.concatenate([r_role, np.full(int(mc.sum()), _R_VICTIM, np.int8),
                             np.full(int(dr.sum()), _R_ARRESTEE, np.int8)])
    del offending, assault, mc, dr
    r_day = inc_day[r_inc]

    # people whose last record is a violent or weapon arrest may be jailed from then
    unavail = np.full(n, np.iinfo(np.int64).max // 4, np.int64)   # last day a person is about
    jailed_day = np.full(n, -1, np.int64)
    o = _order((r_per, n), (r_day, days), (r_role == _R_ARRESTEE, 2))  # arrest last on a tie
    last = np.ones(len(o), bool)
    last[:-1] = r_per[o][1:] != r_per[o][:-1]
    lo_ = o[last]
    lp = r_per[lo_]
    off_code = inc_off[r_inc[lo_]]
    jail = ((r_role[lo_] == _R_ARRESTEE)
            & (off_violent[off_code] | (off_code == _code_index("520")))
            & (rng.random(len(lo_)) < p.jail_after_violent_arrest))
    unavail[lp[jail]] = r_day[lo_][jail]
    jailed_day[lp[jail]] = r_day[lo_][jail]
    del o, last, lo_, lp, off_code, jail

    # a few die of other causes (illness, overdose, accidents) some time after their
    # last record; they are gone before the shooting process starts
    last_bg = np.full(n, -1, np.int64)
    np.maximum.at(last_bg, r_per, r_day)
    nat = ((last_bg >= 0) & (last_bg < days - 180) & (jailed_day < 0)
           & (rng.random(n) < p.natural_death_p))
    nat_day = np.full(n, -1, np.int64)
    gap = (rng.random(int(nat.sum())) * (days - 2 - last_bg[nat])).astype(np.int64)
    nat_day[nat] = last_bg[nat] + 1 + gap
    unavail[nat] = nat_day[nat]

    # co-offending ties (person -> co-offender, first day of the tie)
    offending = np.isin(r_role, _OFFENDING_CODES)
    oi, op = r_inc[offending], r_per[offending]
    o = _order((oi, n_inc), (op, n))
    oi, op = oi[o], op[o]
    bound = np.flatnonzero(np.r_[True, oi[1:] != oi[:-1], True])
    end_of = np.repeat(bound[1:], np.diff(bound))
    m = end_of - np.arange(len(oi)) - 1
    a_idx = np.repeat(np.arange(len(oi)), m)
    b_idx = a_idx + 1 + (np.arange(len(a_idx)) - np.repeat(np.cumsum(m) - m, m))
    ea, eb, ed = op[a_idx], op[b_idx], inc_day[oi[a_idx]]
    keep = ea != eb
    ea, eb, ed = ea[keep], eb[keep], ed[keep]
    src, dst, dd = np.r_[ea, eb], np.r_[eb, ea], np.r_[ed, ed]
    o = _order((src, n), (dst, n), (dd, days))
    src, dst, dd = src[o], dst[o], dd[o]
    first = np.ones(len(src), bool)
    first[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])
    src, dst, dd = src[first], dst[first], dd[first]
    del oi, op, bound, end_of, m, a_idx, b_idx, ea, eb, ed, keep, o, first, offending, r_day
    tie_off, tie_nbr, tie_day = _csr(src, dst, n, dd)
    del dd
    # the group audit's candidate associates (drawn from much later): non-members who
    # offended with a member, each with the first such member's group
    if G and len(src):
        assoc = (member[src] & ~member[dst])
        cand_p, cand_g = dst[assoc], grp[src[assoc]]
        cand_p, first_ix = np.unique(cand_p, return_index=True)
        cand_g = cand_g[first_ix]
        del assoc, first_ix
    n_src = len(src)
    del src, dst

    # ---- shootings: a weekly self-exciting process -------------------------------------
    sh = _simulate_shootings(
        n=n, days=days, horizon_days=horizon_days, start_d=start_d, p=p, rng=rng, geo=geo,
        grp=grp, home=home, risk=risk, member=member, G=G, glat=glat, glon=glon,
        conf_off=conf_off, conf_nbr=conf_nbr, conf_eid=conf_eid, feud_base=feud_base,
        tie_off=tie_off, tie_nbr=tie_nbr, tie_day=tie_day, unavail=unavail, jailed_day=jailed_day)

    # ---- assemble the records -----------------------------------------------------------
    n_sh_in = sh["n_in"]
    # incidents: background then input-period shootings (local index)
    all_day = np.concatenate([inc_day, sh["day"][:n_sh_in]])
    all_code = np.concatenate([inc_off, np.where(sh["fatal"][:n_sh_in], -2, -1)])
    all_dist = np.concatenate([inc_dist, sh["dist"][:n_sh_in]])
    all_lat = np.concatenate([inc_lat, sh["lat"][:n_sh_in]])
    all_lon = np.concatenate([inc_lon, sh["lon"][:n_sh_in]])
    in_rows = sh["row_inc"] < n_sh_in
    x_inc = np.concatenate([r_inc, n_inc + sh["row_inc"][in_rows]])
    x_per = np.concatenate([r_per, sh["row_per"][in_rows]])
    x_role = np.concatenate([r_role, sh["row_role"][in_rows]])
    # the dead and the detained leave no later records
    alive_row = all_day[x_inc] <= unavail[x_per]
    x_inc, x_per, x_role = x_inc[alive_row], x_per[alive_row], x_role[alive_row]

    deceased = (sh["death_day"] < days) | (nat_day >= 0)

    # everyone in the persons table appears at least once: each person the process
    # above left out reports a property crime of their own (victim, offender unknown)
    seen = np.zeros(n, bool)
    seen[x_per] = True
    unseen = np.flatnonzero(~seen)
    prop = np.flatnonzero((off_vic > 0) & ~off_violent)
    s_off = prop[_categorical(rng, np.cumsum(off_share[prop]), len(unseen))]
    s_day = _categorical(rng, np.cumsum(day_w), len(unseen))
    s_day = np.minimum(s_day, unavail[unseen])        # (the unseen are all about; safety)
    s_lat, s_lon = geo.uniform_in(home[unseen], rng)
    s_inc = len(all_day) + np.arange(len(unseen))
    all_day = np.concatenate([all_day, s_day])
    all_code = np.concatenate([all_code, s_off])
    all_dist = np.concatenate([all_dist, home[unseen]])
    all_lat = np.concatenate([all_lat, s_lat])
    all_lon = np.concatenate([all_lon, s_lon])
    x_inc = np.concatenate([x_inc, s_inc])
    x_per = np.concatenate([x_per, unseen])
    x_role = np.concatenate([x_role, np.full(len(unseen), _R_VICTIM)])

    # drop incidents left with no one (all participants dead or detained before it)
    used = np.zeros(len(all_day), bool)
    used[x_inc] = True

    # ---- IDs and ordering ---------------------------------------------------------------
    inc_keep = np.flatnonzero(used)
    tiebreak = rng.random(len(all_day))
    order_inc = inc_keep[np.lexsort((tiebreak[inc_keep], all_day[inc_keep]))]
    del inc_keep, tiebreak, used
    fut_n = len(sh["day"]) - n_sh_in
    n_inc_out = len(order_inc)
    total_inc = n_inc_out + fut_n
    inc_num = np.full(len(all_day), -1, np.int64)
    inc_num[order_inc] = np.arange(1, n_inc_out + 1)
    iw = max(8, len(str(total_inc)))
    pw = max(7, len(str(n)))
    person_num = rng.permutation(n).astype(np.int64) + 1

    day_str = _day_strings(start_d, days + horizon_days + 1)
    codes = [o_.code for o_ in OFFENSES] + [SHOOTING_FATAL[0], SHOOTING_NONFATAL[0]]
    names = [o_.name for o_ in OFFENSES] + [SHOOTING_FATAL[1], SHOOTING_NONFATAL[1]]
    oc = (all_code[order_inc] % (len(OFFENSES) + 2)).astype(np.int8)   # -2 -> fatal, -1 -> nonfatal shooting
    gun = np.concatenate([np.array([o_.gun for o_ in OFFENSES]), [True, True]])[oc]
    violent = np.concatenate([off_violent, [True, True]])[oc]
    fatal = all_code[order_inc] == -2
    tf = pa.array(["false", "true"])
    incidents = _Lazy(n_inc_out, {
        "incident_id": _idcol("I", None, iw),
        "date": _take(day_str, all_day[order_inc].astype(np.int32)),
        "offense": _take(names, oc),
        "nibrs_code": _take(codes, oc),
        "gun": _take(tf, gun.astype(np.int8)),
        "fatal": _take(tf, fatal.astype(np.int8)),
        "violent": _take(tf, violent.astype(np.int8)),
        "district": _take(geo.names, all_dist[order_inc].astype(np.int32)),
        "lat": _num(np.round(all_lat[order_inc], 6)),
        "lon": _num(np.round(all_lon[order_inc], 6)),
    })
    del oc, gun, violent, fatal, all_code, all_dist, all_lat, all_lon, order_inc

    xn = inc_num[x_inc]
    del inc_num
    o = _order((xn, total_inc + 1), (person_num[x_per], n + 1), (x_role, len(ROLES)))
    involvements = _Lazy(len(o), {
        "incident_id": _idcol("I", xn[o].astype(np.int32 if total_inc < 2 ** 31 else np.int64), iw),
        "person_id": _idcol("P", person_num[x_per[o]].astype(np.int32 if n < 2 ** 31 else np.int64), pw),
        "role": _take(list(ROLES), x_role[o].astype(np.int8)),
    })
    del xn, o

    # ---- persons ------------------------------------------------------------------------
    incarcerated = (jailed_day >= 0) & (jailed_day < days) & ~deceased
    n_offend = np.bincount(x_per[np.isin(x_role, _OFFENDING_CODES)], minlength=n)
    arr_rows = x_role == _R_ARRESTEE
    n_arrest = np.bincount(x_per[arr_rows], minlength=n)
    last_arrest = np.full(n, -1, np.int64)
    np.maximum.at(last_arrest, x_per[arr_rows], all_day[x_inc[arr_rows]])
    del x_inc, x_per, x_role, arr_rows, all_day
    p_sup = np.minimum(p.supervision_max, 1 - np.exp(-p.supervision_per_offense * n_offend
                                                     - p.supervision_per_arrest * n_arrest))
    p_sup = np.where(deceased | incarcerated, 0.0, p_sup)
    sup = rng.random(n) < p_sup
    u = rng.random(n)
    recent = (last_arrest >= 0) & (last_arrest >= days - 150)
    # 1 probation, 2 parole, 3 pretrial (after a recent arrest)
    kind = np.where(recent & (u < 0.6), 3, np.where(rng.random(n) < 0.75, 1, 2))
    kind = np.where(sup, kind, 0)
    sup_end = (days - 1) + rng.integers(30, 731, n)
    far = _day_strings(start_d, int(days + 731))
    far_or_blank = pa.concat_arrays([far, pa.array([""], pa.string())])
    end_year = int(str(start_d + days - 1)[:4])
    birth_year = (end_year - np.floor(age)).astype(np.int64)
    o = np.argsort(person_num, kind="stable")          # persons in ID order
    persons = _Lazy(n, {
        "person_id": _idcol("P", None, pw),
        "birth_year": _num(birth_year[o]),
        "sex": _take(["M", "F", "U"], sex[o].astype(np.int8)),
        "race": _take(list(_RACES), race[o].astype(np.int8)),
        "ethnicity": _take(list(_ETHNICITIES), eth[o].astype(np.int8)),
        "district": _take(geo.names, home[o].astype(np.int32)),
        "supervision": _take(["none", "probation", "parole", "pretrial"], kind[o].astype(np.int8)),
        "supervision_end": _take(far_or_blank, np.where(sup, sup_end, len(far))[o].astype(np.int32)),
        "deceased": _take(tf, deceased[o].astype(np.int8)),
        "incarcerated": _take(tf, incarcerated[o].astype(np.int8)),
    })
    del o, birth_year, kind, sup_end, p_sup, n_offend, n_arrest, last_arrest, recent

    # ---- the group audit ------------------------------------------------------------------
    gnames_arr = pa.array(gnames, type=pa.string()) if G else pa.array([], type=pa.string())
    mem_idx = np.flatnonzero(member)
    u = rng.random(len(mem_idx))
    listed = u >= p.audit_miss
    mislab = listed & (u < p.audit_miss + p.audit_mislabel) & (G > 1)
    label = grp[mem_idx].copy()
    if G > 1:
        g_m = grp[mem_idx[mislab]]
        rel_off, rel_nbr = _csr(np.r_[ca, cb, aa, ab], np.r_[cb, ca, ab, aa], G)
        near, _ = _random_neighbour(rel_off, rel_nbr, g_m, rng)
        other = (g_m + 1 + rng.integers(0, G - 1, len(g_m))) % G
        use_near = (near >= 0) & (rng.random(len(g_m)) < 0.5)
        label[mislab] = np.where(use_near, near, other)
    a_person = mem_idx[listed]
    a_group = label[listed]
    # a few non-members who offend with members are listed as associates of their group
    if G and n_src:
        n_fp = min(len(cand_p), int(round(p.audit_false_positive * len(a_person))))
        pick = (np.sort(rng.choice(len(cand_p), n_fp, replace=False)) if n_fp
                else np.zeros(0, np.int64))
        a_person = np.concatenate([a_person, cand_p[pick]])
        a_group = np.concatenate([a_group, cand_g[pick]])
    a_src = _categorical(rng, np.cumsum([0.55, 0.35, 0.10]), len(a_person))
    a_day = rng.integers(0, days, len(a_person))
    o = np.lexsort((a_group, person_num[a_person]))
    groups = pd.DataFrame({
        "person_id": _col(_ids("P", person_num[a_person[o]], pw)),
        "group": _col(gnames_arr, a_group[o]),
        "source": _col(["gang_unit", "field_interview", "social_media"], a_src[o]),
        "date": _col(day_str, a_day[o]),
    })

    # ---- relations ----------------------------------------------------------------------
    ra = np.r_[ca, aa]
    rb = np.r_[cb, ab]
    rk = np.r_[np.zeros(len(ca), np.int64), np.ones(len(aa), np.int64)]
    shown = rng.random(len(ra)) < p.relation_listed
    r_src = _categorical(rng, np.cumsum([0.7, 0.3]), len(ra))
    r_dayv = rng.integers(0, days, len(ra))
    ra, rb, rk, r_src, r_dayv = ra[shown], rb[shown], rk[shown], r_src[shown], r_dayv[shown]
    gname_np = np.array(gnames, dtype=object)
    swap = gname_np[ra] > gname_np[rb] if len(ra) else np.zeros(0, bool)
    ra, rb = np.where(swap, rb, ra), np.where(swap, ra, rb)
    o = sorted(range(len(ra)), key=lambda i: (gnames[ra[i]], gnames[rb[i]], int(rk[i])))
    o = np.asarray(o, dtype=np.int64)
    group_relations = pd.DataFrame({
        "group_a": _col(gnames_arr, ra[o]),
        "group_b": _col(gnames_arr, rb[o]),
        "relation": _col(["conflict", "alliance"], rk[o]),
        "date": _col(day_str, r_dayv[o]),
        "source": _col(["gang_unit", "intelligence_bulletin"], r_src[o]),
    })

    # ---- truth ----------------------------------------------------------------------------
    o = np.argsort(person_num, kind="stable")
    tm_names = pa.array([""] + gnames, type=pa.string())
    truth_membership = _Lazy(n, {
        "person_id": _idcol("P", None, pw),
        "group": _take(tm_names, (grp[o] + 1).astype(np.int32)),
    })
    fut_rows = ~in_rows
    f_inc = sh["row_inc"][fut_rows] - n_sh_in
    f_per = sh["row_per"][fut_rows]
    f_role = sh["row_role"][fut_rows]
    truth_sel = (f_role == _R_VICTIM) | (sh["row_true_shooter"][fut_rows])
    f_inc, f_per, f_role = f_inc[truth_sel], f_per[truth_sel], f_role[truth_sel]
    f_role = np.where(f_role == _R_VICTIM, 1, 0)           # 0 suspect, 1 victim
    f_day = sh["day"][n_sh_in:]
    f_order = np.lexsort((np.arange(fut_n), f_day))         # future incidents by date
    f_num = np.empty(fut_n, np.int64)
    f_num[f_order] = n_inc_out + 1 + np.arange(fut_n)
    o = np.lexsort((person_num[f_per], f_role, f_num[f_inc]))
    truth_future = pd.DataFrame({
        "incident_id": _col(_ids("I", f_num[f_inc][o], iw)),
        "date": _col(day_str, f_day[f_inc][o]),
        "person_id": _col(_ids("P", person_num[f_per[o]], pw)),
        "role": _col(["suspect", "victim"], f_role[o]),
    })
    end_date = str(start_d + days - 1)
    exp_total = sh["expected_total"]
    stats = {
        "districts": ND,
        "groups": G,
        "members": n_mem,
        "feuds": int(len(ca)),
        "alliances": int(len(aa)),
        "background_incidents": int(n_inc),
        "self_reported_incidents": int(len(unseen)),
        "shootings": int(n_sh_in),
        "shooting_victims": int(((sh["row_role"] == _R_VICTIM) & in_rows).sum()),
        "future_shootings": int(fut_n),
        "contagion_share": round(max(0.0, float(1.0 - sh["expected_base"] / exp_total)), 4)
        if exp_total > 0 else 0.0,
        "horizon_days": int(horizon_days),
    }
    return SynthCity(incidents, involvements, persons, groups, group_relations,
                     truth_membership, truth_future, end_date, stats)


def _simulate_shootings(*, n, days, horizon_days, start_d, p: CityParams, rng, geo: _Geo, grp,
                        home, risk, member, G, glat, glon, conf_off, conf_nbr, conf_eid,
                        feud_base, tie_off, tie_nbr, tie_day, unavail, jailed_day):
    """Run the shooting process week by week over the period and the horizon.

    Mutates ``unavail`` (deaths, detentions) and ``jailed_day``. Returns the
    shootings (local index, input-period ones first) and their rows.
    """
    T = days + horizon_days
    tau = p.delay_mean_days
    base_day = p.base_victim_rate / 1000.0 / 365.25
    X = np.zeros(n)                        # individual exposure (victim hazard per day)
    V = np.zeros(max(G, 1))                # group exposure, spread over members by risk
    R = np.bincount(grp[member], weights=risk[member], minlength=max(G, 1))
    R = np.where(R > 0, R, 1.0)
    mem_idx = np.flatnonzero(member)
    mem_grp = grp[mem_idx]
    mem_share = risk[mem_idx] / R[mem_grp]
    heat = feud_base.copy()
    n_conf = len(feud_base)
    conf_src = np.repeat(np.arange(max(G, 1))[: len(conf_off) - 1], np.diff(conf_off))
    pool_conf = _Pool(np.arange(len(conf_nbr)), conf_src, max(G, 1))
    pool_grp = _Pool(mem_idx, mem_grp, max(G, 1))
    everyone = np.arange(n)
    pool_dist = _Pool(everyone, home, geo.n)
    death_day = np.full(n, np.iinfo(np.int64).max // 4, np.int64)
    out_day, out_fatal, out_dist, out_lat, out_lon = [], [], [], [], []
    rows_inc, rows_per, rows_role, rows_true = [], [], [], []
    n_events = 0
    step = 7
    n_burn = (max(p.burn_in_days, 0) + step - 1) // step
    n_steps = n_burn + (T + step - 1) // step
    lead = 10 ** 9 if p.tie_lead_days is None else p.tie_lead_days
    stats_base = stats_total = 0.0
    week_season = _season(start_d, (np.arange(n_steps) - n_burn) * step + step // 2,
                          p.seasonal_amplitude)
    for s in range(n_steps):
        t0 = (s - n_burn) * step
        t1 = min(t0 + step, T)
        burn = t0 < 0
        L = t1 - t0
        avail = unavail >= t1 - 1
        lam = base_day * week_season[s] * risk
        if G:
            lam[mem_idx] += V[mem_grp] * mem_share
        lam += X
        lam *= avail
        total = float(lam.sum()) * L
        if 0 <= t0 < days:
            base_part = float(np.dot(risk, avail)) * base_day * week_season[s] * L
            stats_base += base_part
            stats_total += total
        nv = int(rng.poisson(total)) if total > 0 else 0
        decay = math.exp(-L / tau)
        if nv:
            cum = np.cumsum(lam)
            vic = np.searchsorted(cum, rng.random(nv) * cum[-1], "right")
            vic = np.unique(np.minimum(vic, n - 1))
            vic = vic[avail[vic]]
            nv = len(vic)
        if nv:
            vday = t0 + rng.integers(0, L, nv)
            taken = np.zeros(n, bool)
            taken[vic] = True
            # companions: a second (rarely third) victim, a co-offender or group-mate
            comp_ev, comp_per = [], []
            pool_grp.weigh(lam)
            for extra in range(2):
                want = rng.random(nv) < (p.p_multi_victim if extra == 0 else p.p_multi_victim * 0.2)
                ev = np.flatnonzero(want)
                cand, pos = _random_neighbour(tie_off, tie_nbr, vic[ev], rng)
                ok = cand >= 0
                ok[ok] &= (tie_day[pos[ok]] - lead <= vday[ev[ok]])
                gm = pool_grp.sample(np.where(~ok, grp[vic[ev]], -1), rng)
                cand = np.where(ok, cand, gm)
                ok = cand >= 0
                ok[ok] &= avail[cand[ok]] & ~taken[cand[ok]]
                ev, cand = ev[ok], cand[ok]
                cand, ui = np.unique(cand, return_index=True)
                ev = ev[ui]
                taken[cand] = True
                comp_ev.append(ev)
                comp_per.append(cand)
            comp_ev = np.concatenate(comp_ev)
            comp_per = np.concatenate(comp_per)
            # the shooter
            gv = grp[vic]
            has_feud = (gv >= 0)
            if G:
                has_feud &= np.diff(conf_off)[np.maximum(gv, 0)] > 0
            u = rng.random(nv)
            rival = has_feud & (u < p.p_rival_shooter)
            acq = ~rival & (rng.random(nv) < p.p_acquaintance_shooter)
            shooter = np.full(nv, -1, np.int64)
            if rival.any():
                hw = heat[conf_eid]
                pool_conf.weigh(hw)
                e = pool_conf.sample(gv[rival], rng)
                h = np.where(e >= 0, conf_nbr[np.maximum(e, 0)], -1)
                shooter[rival] = pool_grp.sample(h, rng)
            if acq.any():
                a_s, _ = _random_neighbour(tie_off, tie_nbr, vic[acq], rng)
                shooter[acq] = a_s
            if pool_dist.identity:
                pool_dist.cum = cum           # people are in district order: reuse it
            else:
                pool_dist.weigh(lam)
            for _ in range(3):
                bad = shooter < 0
                bad[~bad] = ~avail[shooter[~bad]] | taken[shooter[~bad]]
                if not bad.any():
                    break
                shooter[bad] = pool_dist.sample(home[vic[bad]], rng)
            bad = shooter < 0
            bad[~bad] = ~avail[shooter[~bad]] | taken[shooter[~bad]]
            shooter[bad] = -1
            # outcomes
            all_ev = np.concatenate([np.arange(nv), comp_ev])
            all_vic = np.concatenate([vic, comp_per])
            fatal_v = rng.random(len(all_vic)) < p.p_fatal
            fatal_ev = np.zeros(nv, bool)
            fatal_ev[all_ev[fatal_v]] = True
            ident = (shooter >= 0) & (rng.random(nv) < np.where(fatal_ev, p.p_identified_fatal,
                                                               p.p_identified))
            arrested = ident & (rng.random(nv) < p.p_arrested)
            detained = arrested & (rng.random(nv) < p.p_detained)
            wit = rng.random(nv) < p.shooting_witness_p
            wit_per = pool_dist.sample_uniform(home[vic[wit]], rng)
            wit_ev = np.flatnonzero(wit)
            okw = (wit_per >= 0)
            okw[okw] &= (avail[wit_per[okw]] & ~taken[wit_per[okw]]
                         & (wit_per[okw] != shooter[wit_ev[okw]]))
            wit_ev, wit_per = wit_ev[okw], wit_per[okw]
            # place: the victim's territory, or his home district
            in_terr = (gv >= 0) & (rng.random(nv) < 0.7)
            lat, lon = geo.uniform_in(home[vic], rng)
            z = rng.normal(0.0, p.territory_sd, (nv, 2))
            gi = np.maximum(gv, 0)
            if G:
                lat = np.where(in_terr, glat[gi] + z[:, 0] * geo.clat, lat)
                lon = np.where(in_terr, glon[gi] + z[:, 1] * geo.clon, lon)
            dist = geo.district_of(lat, lon)
            if not burn:   # burn-in shootings excite but leave no record
                ev_id = n_events + np.arange(nv)
                out_day.append(vday)
                out_fatal.append(fatal_ev)
                out_dist.append(dist)
                out_lat.append(lat)
                out_lon.append(lon)
                # rows: victims; shooter (role by outcome, recorded only if identified); witnesses
                rows_inc.append(ev_id[all_ev])
                rows_per.append(all_vic)
                rows_role.append(np.full(len(all_vic), _R_VICTIM))
                rows_true.append(np.zeros(len(all_vic), bool))
                sh_ev = np.flatnonzero(shooter >= 0)
                rows_inc.append(ev_id[sh_ev])
                rows_per.append(shooter[sh_ev])
                rows_role.append(np.where(arrested[sh_ev], _R_ARRESTEE,
                                          np.where(ident[sh_ev], _R_SUSPECT, -1)))
                rows_true.append(np.ones(len(sh_ev), bool))
                rows_inc.append(ev_id[wit_ev])
                rows_per.append(wit_per)
                rows_role.append(np.full(len(wit_per), _R_WITNESS))
                rows_true.append(np.zeros(len(wit_per), bool))
                n_events += nv

            # ---- excitation -----------------------------------------------------------
            X *= decay
            V *= decay
            heat = feud_base + (heat - feud_base) * math.exp(-L / p.feud_heat_decay_days)
            vday_all = vday[all_ev]
            # co-offenders of every victim
            deg = tie_off[all_vic + 1] - tie_off[all_vic]
            e_src = np.repeat(np.arange(len(all_vic)), deg)
            e_pos = np.repeat(tie_off[all_vic], deg) + (np.arange(len(e_src))
                                                        - np.repeat(np.cumsum(deg) - deg, deg))
            valid = tie_day[e_pos] - lead <= vday_all[e_src]
            e_src, e_pos = e_src[valid], e_pos[valid]
            vdeg = np.bincount(e_src, minlength=len(all_vic))
            per_tie = np.minimum(p.alpha_cooffender,
                                 p.alpha_cooffender_max / np.maximum(vdeg, 1)) / tau
            np.add.at(X, tie_nbr[e_pos], per_tie[e_src])
            # the victim's group, the shooter's group, the shooter, the feud
            if G:
                gvv = grp[all_vic]
                np.add.at(V, gvv[gvv >= 0], p.alpha_group / tau)
                hs = np.where(shooter >= 0, grp[np.maximum(shooter, 0)], -1)
                ret = (hs >= 0) & (hs != gv)
                np.add.at(V, hs[ret], p.alpha_retaliation / tau)
                fe = ret & (gv >= 0)
                if fe.any() and n_conf:
                    a_, b_ = np.minimum(gv[fe], hs[fe]), np.maximum(gv[fe], hs[fe])
                    cpair_a = np.minimum(conf_src, conf_nbr)
                    cpair_b = np.maximum(conf_src, conf_nbr)
                    keys = cpair_a * G + cpair_b
                    ko = np.argsort(keys, kind="stable")
                    q = a_ * G + b_
                    j = np.searchsorted(keys[ko], q)
                    j = np.minimum(j, len(keys) - 1)
                    hit = keys[ko][j] == q
                    np.add.at(heat, conf_eid[ko][j][hit], 1.0)
            np.add.at(X, shooter[shooter >= 0], p.alpha_shooter / tau)
            # deaths and detentions (not in the burn-in: those people have records)
            if burn:
                fatal_v[:] = False
                detained[:] = False
            dv = all_vic[fatal_v]
            death_day[dv] = np.minimum(death_day[dv], vday_all[fatal_v])
            unavail[dv] = np.minimum(unavail[dv], vday_all[fatal_v])
            ds = shooter[detained]
            dday = np.zeros(n, np.int64)
            np.maximum.at(dday, ds, vday[detained])
            ds = np.unique(ds)
            unavail[ds] = np.minimum(unavail[ds], dday[ds])
            newly = jailed_day[ds] < 0
            jailed_day[ds[newly]] = dday[ds[newly]]
        else:
            X *= decay
            V *= decay
            heat = feud_base + (heat - feud_base) * math.exp(-L / p.feud_heat_decay_days)

    def cat(parts, dtype):
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    day = cat(out_day, np.int64)
    # input-period events first (they are generated in time order already)
    in_mask = day < days
    order = np.r_[np.flatnonzero(in_mask), np.flatnonzero(~in_mask)]
    remap = np.empty(len(day), np.int64)
    remap[order] = np.arange(len(day))
    r_inc = remap[cat(rows_inc, np.int64)] if len(day) else np.zeros(0, np.int64)
    r_per = cat(rows_per, np.int64)
    r_role = cat(rows_role, np.int64)
    r_true = cat(rows_true, bool)
    n_in = int(in_mask.sum())
    # unidentified shooters leave no input record but stay in the truth (horizon)
    keep = (r_role >= 0) | ((r_inc >= n_in) & r_true)
    r_inc, r_per, r_role, r_true = r_inc[keep], r_per[keep], r_role[keep], r_true[keep]
    r_role = np.where(r_role < 0, _R_SUSPECT, r_role)
    # future rows: the true shooter is always "suspect" in the truth
    return {
        "n_in": n_in,
        "day": day[order],
        "fatal": cat(out_fatal, bool)[order],
        "dist": cat(out_dist, np.int64)[order],
        "lat": cat(out_lat, np.float64)[order],
        "lon": cat(out_lon, np.float64)[order],
        "row_inc": r_inc,
        "row_per": r_per,
        "row_role": r_role,
        "row_true_shooter": r_true,
        "death_day": death_day,
        "expected_base": stats_base,
        "expected_total": stats_total,
    }


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


def generate_city(n_people: int = 20_000, seed: int = 0, *, start: str = "2023-01-01",
                  days: int = 1095, horizon_days: int = 180) -> SynthCity:
    """Generate a synthetic city's police records, and the truth behind them.

    ``n_people`` (at least 50) people live in the city; the input period is ``days`` days from
    ``start`` (``end_date`` is its last day); ``truth_future`` holds the
    shootings of the ``horizon_days`` after it, from the same process. The same
    ``seed`` always gives the same city. The model is described in
    docs/synthetic-city.md; its parameters are :class:`CityParams` (use
    :func:`generate_city_with` to change them).

    >>> city = generate_city(n_people=500, seed=1)
    >>> city.end_date
    '2025-12-30'
    >>> len(city.persons), city.persons["person_id"].is_unique
    (500, True)
    >>> city.persons["person_id"].iloc[0]
    'P0000001'
    >>> sorted(city.involvements["role"].unique())
    ['arrestee', 'offender', 'other', 'suspect', 'victim', 'witness']
    >>> shootings = city.incidents[(city.incidents["gun"] == "true")
    ...                            & city.incidents["incident_id"].isin(
    ...                                city.involvements.loc[city.involvements["role"] == "victim",
    ...                                                      "incident_id"])]
    >>> bool((shootings["violent"] == "true").all())
    True
    """
    return _generate(n_people, seed, start, days, horizon_days, CityParams())


def generate_city_with(params: CityParams, n_people: int = 20_000, seed: int = 0, *,
                       start: str = "2023-01-01", days: int = 1095,
                       horizon_days: int = 180) -> SynthCity:
    """:func:`generate_city` with other model parameters, e.g. contagion switched off:

    >>> from dataclasses import replace
    >>> quiet = replace(CityParams(), alpha_cooffender=0.0, alpha_group=0.0,
    ...                 alpha_retaliation=0.0, alpha_shooter=0.0)
    >>> len(generate_city_with(quiet, n_people=500, seed=1).persons)
    500
    """
    return _generate(n_people, seed, start, days, horizon_days, params)


_TRUTH_README = """\
# truth/ -- NOT an input

These files are the synthetic city's ground truth. `fdnet run` must never read them;
they exist so that tests and analysts can score the engine's output.

- `membership.csv`: person_id, group -- every person's true (planted) group, "" for
  people in no group. The input `groups` table is the police audit: it misses about
  30% of true members, lists about 10% under another group, and adds a few
  non-member associates.
- `future_shootings.csv`: incident_id, date, person_id, role -- the shootings of the
  {horizon} days after the input period ends ({end_date}), simulated by the same
  process. role is `victim`, or `suspect` for the true shooter (whether or not the
  police would have identified them). None of these incidents is in the input tables.

See docs/synthetic-city.md for the generative model.
"""

_TRUTH_CALL_IN = """
- `interventions.csv`: person_id, attended, prior_offending, incidents_removed -- every person
  invited to the planted call-in of {date} (planted effect {effect}: each later incident in
  which an attendee offends or is a victim was removed with probability 1 - effect; see
  fdnet/synth/interventions.py). The input `interventions` table records the invitations and
  attendances; this file says what the planting did.
"""


# rows made and written at a time: Parquet's default row group, so a table written in slices
# has the row groups (and the bytes) of the same table written whole
WRITE_CHUNK_ROWS = 1024 * 1024


def _write_table(src, path: Path, fmt: str) -> None:
    """Write a DataFrame or a :class:`_Lazy` table, the latter one slice of rows at a time."""
    n = src.n if isinstance(src, _Lazy) else len(src)
    starts = range(0, max(n, 1), WRITE_CHUNK_ROWS)

    def piece(a: int) -> pa.Table:
        df = src.frame(a, a + WRITE_CHUNK_ROWS) if isinstance(src, _Lazy) else src.iloc[a:a + WRITE_CHUNK_ROWS]
        return pa.Table.from_pandas(df, preserve_index=False)

    if fmt == "parquet":
        first = piece(0)
        with pq.ParquetWriter(path, first.schema) as w:
            w.write_table(first, row_group_size=WRITE_CHUNK_ROWS)
            for a in starts[1:]:
                w.write_table(piece(a), row_group_size=WRITE_CHUNK_ROWS)
    else:
        # no quoting at all (no value holds a comma, quote or newline): plain, fast CSV
        with open(path, "wb") as f:
            for a in starts:
                t = piece(a)
                if a == 0:
                    f.write((",".join(t.column_names) + "\n").encode("utf-8"))
                pacsv.write_csv(t, f, pacsv.WriteOptions(include_header=False, quoting_style="none"))


def write_city(city: SynthCity, out_dir, fmt: str = "csv") -> dict[str, Path]:
    """Write the city as an input folder ``fdnet run`` reads, and its truth apart.

    The five input tables go to ``out_dir/<table>.<fmt>`` (``fmt`` is ``csv`` or
    ``parquet``); the truth goes to ``out_dir/truth/membership.csv`` and
    ``out_dir/truth/future_shootings.csv``, with ``out_dir/truth/README.md``
    saying they are not inputs. Creates ``out_dir`` if needed; returns the
    written paths by name (the table names, ``truth_membership``,
    ``truth_future`` and ``truth_readme``).

    >>> import tempfile
    >>> paths = write_city(generate_city(500, seed=2), tempfile.mkdtemp())
    >>> sorted(p.name for p in paths.values())  # doctest: +NORMALIZE_WHITESPACE
    ['README.md', 'future_shootings.csv', 'group_relations.csv', 'groups.csv',
     'incidents.csv', 'involvements.csv', 'membership.csv', 'persons.csv']
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt must be 'csv' or 'parquet', not {fmt!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    truth = out / "truth"
    truth.mkdir(exist_ok=True)
    paths: dict[str, Path] = {}
    for name in INPUT_TABLES:
        path = out / f"{name}.{fmt}"
        _write_table(city._src[name], path, fmt)
        paths[name] = path
    paths["truth_membership"] = truth / "membership.csv"
    _write_table(city._src["truth_membership"], paths["truth_membership"], "csv")
    paths["truth_future"] = truth / "future_shootings.csv"
    _write_table(city._src["truth_future"], paths["truth_future"], "csv")
    for name in sorted(city.extra_inputs):
        paths[name] = out / f"{name}.{fmt}"
        _write_table(city.extra_inputs[name], paths[name], fmt)
    for name in sorted(city.extra_truth):
        paths[f"truth_{name}"] = truth / f"{name}.csv"
        _write_table(city.extra_truth[name], paths[f"truth_{name}"], "csv")
    horizon = city.stats.get("horizon_days")
    paths["truth_readme"] = truth / "README.md"
    paths["truth_readme"].write_text(_TRUTH_README.format(
        horizon=horizon if horizon is not None else "horizon", end_date=city.end_date)
        + (_TRUTH_CALL_IN.format(**city.stats["call_in"]) if "call_in" in city.stats else ""),
        encoding="utf-8")
    return paths
