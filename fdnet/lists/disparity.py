"""Disparity report: who is on each list, by race, sex, ethnicity, age band and district.

For every list, attribute and category the report (``disparity.csv``) sets
the people on the list beside two populations:

* the **network**: every person in scores.csv (anyone with a recorded
  involvement inside the window, as offender, victim, witness or other);
* the **offending population**: network people with at least one incident
  in an offending role inside the window (``offending > 0``).

Columns: ``listed`` / ``listed_share`` (share of the list),
``network_count`` / ``network_share``, ``offending_count`` /
``offending_share``, and three ratios:

``selection_rate_ratio``
    The four-fifths rule (US Uniform Guidelines on Employee Selection
    Procedures, 29 CFR 1607.4(D)): a category's *selection rate* divided by
    the highest selection rate among the known categories. The selection
    rate is ``listed / pool``, the pool being the people who could have
    been selected: the offending population for the enforcement lists
    (call_in, custom_notifications: the guardrails admit nobody without an
    offending incident) and the network for service_referrals. The
    reference (highest) category must itself have at least ``min_listed``
    people on the list, so a category of two people, one of them listed,
    cannot set the bar; "unknown" is never the reference.
``ratio_vs_network``, ``ratio_vs_offending``
    ``listed_share / network_share`` and ``listed_share / offending_share``:
    above 1 the category is over-represented on the list, below 1 under.

A row is **flagged** (``flag`` holds a sentence, empty otherwise) when the
category has at least ``min_listed`` people on the list and either its
selection-rate ratio lies outside ``[ratio_low, ratio_high]`` or its share
ratio against the list's pool (offending population for enforcement lists,
network for services) does. A flag is a prompt for human review, not a
finding of bias: police records measure police contact, which reflects
where and whom police patrol and stop as well as behaviour
(docs/disparity.md).

Two more columns say whether the list's own score uses a demographic
attribute: ``demographic_points`` names the demographic components (age,
sex, race, ethnicity, district: :data:`fdnet.policy.DEMOGRAPHIC_COMPONENTS`)
that add points to the score the list ranks by (by default none for the
enforcement lists, ``age`` for service referrals), and ``justification`` the
policy's written justification where a demographic component counts for an
enforcement list (a policy must give one; the summary repeats it under
``demographic_enforcement``).

Missing attribute values form the category ``unknown``, never dropped.
Age bands come from scores.age (age on as_of): ``under 18``, ``18-24``,
``25-34``, ``35-44``, ``45+``, ``unknown``; every band is always listed.

>>> import pandas as pd
>>> from fdnet.policy import Policy
>>> scores = pd.DataFrame({"person_id": ["a", "b", "c", "d"], "age": [17, 20, 30, None],
...                        "offending": [1, 1, 0, 2]})
>>> lists = {"call_in": pd.DataFrame({"person_id": ["a", "d"]})}
>>> t = disparity_table(scores, lists, None, Policy())
>>> print(t[t["listed"] > 0][["list", "category", "listed", "listed_share", "offending_share"]].to_string(index=False))
   list category  listed  listed_share  offending_share
call_in under 18       1           0.5         0.333333
call_in  unknown       1           0.5         0.333333
>>> disparity_summary(t)["notes"][0][:40]
'No persons table: only age bands are rep'
>>> disparity_summary(t)["demographic_enforcement"], sorted(set(t["demographic_points"]))
([], [''])
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..runfolder import ENFORCEMENT_LISTS, LIST_NAMES
from ..policy import is_demographic

# ENFORCEMENT_LISTS: the lists whose candidates must have an offending role (guardrails.min_offending_incidents >= 1)
AGE_BANDS = ("under 18", "18-24", "25-34", "35-44", "45+", "unknown")
UNKNOWN = "unknown"
COLUMNS = ["list", "attribute", "category", "listed", "listed_share", "network_count", "network_share",
           "offending_count", "offending_share", "selection_rate_ratio", "ratio_vs_network",
           "ratio_vs_offending", "flag", "demographic_points", "justification"]
FLOAT_COLUMNS = ("listed_share", "network_share", "offending_share", "selection_rate_ratio",
                 "ratio_vs_network", "ratio_vs_offending")
METHOD = ("selection_rate_ratio: the category's selection rate (listed / pool) over the highest known "
          "category's rate among categories with at least min_listed listed (four-fifths rule); pool: the "
          "offending population for call_in and custom_notifications, the network for service_referrals. "
          "ratio_vs_network / ratio_vs_offending: listed_share over the population share.")


def age_band(age) -> str:
    """The age band of an age in years on as_of (``unknown`` when missing).

    >>> [age_band(a) for a in (12, 18, 24.9, 25, 44, 45, 80, None, float("nan"), "")]
    ['under 18', '18-24', '18-24', '25-34', '35-44', '45+', '45+', 'unknown', 'unknown', 'unknown']
    """
    try:
        a = float(age)
    except (TypeError, ValueError):
        return UNKNOWN
    if math.isnan(a):
        return UNKNOWN
    if a < 18:
        return "under 18"
    if a < 25:
        return "18-24"
    if a < 35:
        return "25-34"
    if a < 45:
        return "35-44"
    return "45+"


def age_bands(ages: np.ndarray) -> np.ndarray:
    """:func:`age_band` of each age at once (NaN is ``unknown``).

    >>> age_bands(np.array([12, 18, 24.9, 25, 44, 45, 80, np.nan])).tolist()
    ['under 18', '18-24', '18-24', '25-34', '35-44', '45+', '45+', 'unknown']
    """
    a = np.asarray(ages, dtype=float)
    out = np.select([a < 18, a < 25, a < 35, a < 45, a >= 45], list(AGE_BANDS[:5]), UNKNOWN)
    return out.astype(object)


def _clean_array(values: pd.Series) -> np.ndarray:
    """:func:`_clean` at once: attribute values as category names, empty or missing as ``unknown``."""
    miss = values.isna().to_numpy()
    text = values.astype(str).str.strip().to_numpy(dtype=object)
    text[miss | (text == "")] = UNKNOWN
    return text


# the characters Python's str.strip() removes from ASCII text (str.isspace): Arrow's utf8_trim with these is
# the same strip on ASCII
_ASCII_SPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"


def _factorize_clean(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize(_clean_array(values), sort=False)``: codes in order of first appearance and the names.
    A column of ASCII text is cleaned and encoded in Arrow (no Python string per person: a persons column
    at a million people was about 60 MB of them, for a handful of categories); any other column as before.

    >>> c, n = _factorize_clean(pd.Series([" b", None, "a", "", "b "], dtype="str"))
    >>> c.tolist(), n.tolist()
    ([0, 1, 2, 1, 0], ['b', 'unknown', 'a'])
    """
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        arr = pa.array(values.array)
        arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
        if len(arr) and pc.all(pc.string_is_ascii(arr)).as_py() is not False:
            text = pc.utf8_trim(arr, characters=_ASCII_SPACE)
            text = pc.if_else(pc.fill_null(pc.equal(text, ""), True), pa.scalar(UNKNOWN, text.type), text)
            enc = pc.dictionary_encode(text)
            return (enc.indices.to_numpy(zero_copy_only=False).astype(np.int64),
                    np.asarray(enc.dictionary.to_pylist(), dtype=object))
    codes, names = pd.factorize(pd.Series(_clean_array(values), dtype=object), sort=False)
    return codes, np.asarray(names, dtype=object)


def _clean(values) -> list[str]:
    """Attribute values as category names; empty or missing is ``unknown``."""
    out = []
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out.append(UNKNOWN)
            continue
        s = str(v).strip()
        out.append(s if s else UNKNOWN)
    return out


def _counts(codes: np.ndarray, names: np.ndarray) -> dict:
    """Category -> how many of ``codes`` (only the categories present, as value_counts gives them)."""
    n = np.bincount(codes, minlength=len(names)) if len(codes) else np.zeros(len(names), dtype=np.int64)
    return {names[i]: int(n[i]) for i in np.flatnonzero(n)}


def _id_array(values) -> pa.Array:
    """Person IDs as one Arrow string array (as ``astype(str)`` gives them).

    >>> _id_array(pd.Series(["b", "a"])).to_pylist()
    ['b', 'a']
    """
    arr = pa.array(pd.Series(values).astype(str), type=pa.string())
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _positions(values: pa.Array, universe: pa.Array) -> np.ndarray:
    """Position in ``universe`` (distinct IDs) of each of ``values`` (-1 when absent)."""
    return pc.index_in(values, value_set=universe).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _last_position(universe: pa.Array, values: pa.Array) -> np.ndarray:
    """For each ID of ``universe``: the position of its last occurrence in ``values``, -1 when absent
    (what a pandas Series indexed by ``values``, duplicates dropped keeping the last, reindexed gives).

    >>> _last_position(pa.array(["a", "b", "c"]), pa.array(["b", "a", "b"])).tolist()
    [1, 2, -1]
    """
    n = len(values)
    if n == 0:
        return np.full(len(universe), -1, dtype=np.int64)
    rev = _positions(universe, values[::-1])
    return np.where(rev >= 0, n - 1 - rev, -1)


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.nan


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f}%"


def disparity_table(scores: pd.DataFrame, lists: dict[str, pd.DataFrame], persons: pd.DataFrame | None,
                    policy) -> pd.DataFrame:
    """The disparity report as a frame with :data:`COLUMNS` (see the module docstring).

    ``scores`` is scores.csv (person_id, age, offending), ``lists`` maps list
    names to frames with a person_id column, ``persons`` the validated
    persons table or ``None``, ``policy`` a :class:`fdnet.policy.Policy`
    (its ``disparity`` section). Notes on what could not be reported are in
    ``table.attrs["notes"]`` (and in :func:`disparity_summary`).
    """
    cfg = policy.disparity
    notes: list[str] = []
    demo_enf = policy.demographic_enforcement()
    list_kind = {n: ("enforcement" if n in ENFORCEMENT_LISTS else "service") for n in LIST_NAMES}
    demo_points = {n: ";".join(k for k, c in policy.components.items()
                               if is_demographic(k) and list_kind[n] in c.counts_for and not c.is_zero())
                   for n in LIST_NAMES}
    why = {n: " | ".join(f"{d['component']}: {d['justification']}" for d in demo_enf)
           if n in ENFORCEMENT_LISTS else "" for n in LIST_NAMES}
    for d in demo_enf:
        notes.append(f"The enforcement lists' scores include the demographic component {d['component']} (up to "
                     f"{d['max_points']:g} points), which the policy justifies as: {d['justification']}")
    # everything below works on integer codes; person IDs are matched in Arrow (hash joins in C++), never as
    # a million Python strings with pandas indexes over them
    net_ids = _id_array(scores["person_id"])
    offending = pd.to_numeric(scores["offending"], errors="coerce").fillna(0).to_numpy() > 0
    ages = pd.to_numeric(scores["age"], errors="coerce").to_numpy(dtype=float) if "age" in scores \
        else np.full(len(scores), np.nan)

    # attribute -> category code of each person of `everyone` (the network, then anyone listed outside it)
    listed_ids = {name: pc.unique(_id_array(df["person_id"]))
                  for name, df in lists.items() if name in LIST_NAMES}
    everyone = pc.unique(pa.chunked_array([net_ids, *listed_ids.values()], type=pa.string())) if listed_ids \
        else pc.unique(net_ids)
    everyone = everyone.combine_chunks() if isinstance(everyone, pa.ChunkedArray) else everyone
    # the run's scores hold each person once: `everyone` (distinct values in order of first appearance) then
    # begins with them, so their positions are the identity and no hash join over a million IDs is needed
    # (two of them took 1.1 s and about 80 MB at a million people)
    n_ids = len(net_ids)
    identity = len(everyone) >= n_ids and pc.count_distinct(net_ids).as_py() == n_ids
    net_last = np.where(np.arange(len(everyone)) < n_ids, np.arange(len(everyone)), -1) if identity \
        else _last_position(everyone, net_ids)
    factored: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    person_row = None        # each person's persons row: one hash join for every attribute (0.4 s each at 1M)
    for attr in cfg.attributes:
        if attr == "age_band":
            age = np.full(len(everyone), np.nan)
            age[net_last >= 0] = ages[net_last[net_last >= 0]]
            # pd.factorize(age_bands(age)) on the bands' numbers, not a million Python strings (135 MB at the
            # peak at a million people): the same codes, in order of first appearance, and the same names
            a = np.asarray(age, dtype=float)
            band = np.select([a < 18, a < 25, a < 35, a < 45, a >= 45], [0, 1, 2, 3, 4], 5)
            codes, seen = pd.factorize(band, sort=False)
            factored[attr] = (codes, np.asarray(list(AGE_BANDS[:5]) + [UNKNOWN], dtype=object)[seen])
        elif persons is None:
            continue
        elif attr not in persons.columns:
            notes.append(f"The persons table has no '{attr}' column: {attr} is not reported.")
        else:
            # each person's category as a code: the persons table's rows factorized once (few categories),
            # the last row of a repeated person_id, `unknown` for people with no row
            pcodes, pnames = _factorize_clean(persons[attr])
            pnames = np.asarray(pnames, dtype=object)
            unknown = np.flatnonzero(pnames == UNKNOWN)
            if len(unknown):
                u = int(unknown[0])
            else:
                u = len(pnames)
                pnames = np.append(pnames, np.array([UNKNOWN], dtype=object))
            if person_row is None:
                person_row = _last_position(everyone, _id_array(persons["person_id"]))
            row = person_row
            codes = np.full(len(everyone), u, dtype=np.int64)
            codes[row >= 0] = pcodes[row[row >= 0]]
            factored[attr] = (codes, pnames)
    net_pos = np.arange(n_ids, dtype=np.int64) if identity else _positions(net_ids, everyone)
    list_pos = {name: _positions(ids, everyone) for name, ids in listed_ids.items()}
    if persons is None:
        wanted = [a for a in cfg.attributes if a != "age_band"]
        notes.append("No persons table: only age bands are reported"
                     + (f" ({', '.join(wanted)} need a persons file with those columns, docs/data-format.md)"
                        if wanted else "")
                     + "; without birth dates or years every age band is unknown.")

    # each attribute's categories counted once over the network and the offending population (per list only
    # the listed people are counted)
    network_counts = {}
    for attr, (codes, names) in factored.items():
        net_codes = codes[net_pos]
        network_counts[attr] = (_counts(net_codes, names), _counts(net_codes[offending], names))
    attributes = factored
    rows = []
    n_net = len(net_ids)
    n_off = int(offending.sum())
    for lname in sorted(listed_ids):
        ids = listed_ids[lname]
        n_listed = len(ids)
        pool_is_offending = lname in ENFORCEMENT_LISTS
        pool_label = "offending population" if pool_is_offending else "network"
        for attr in sorted(attributes):
            codes, names = factored[attr]
            label = attr.replace("_", " ")
            net_counts, off_counts = network_counts[attr]
            lst_counts = _counts(codes[list_pos[lname]], names)
            cats = set(net_counts) | set(lst_counts)
            if attr == "age_band":
                cats |= set(AGE_BANDS)
            stats = {}
            for c in cats:
                k = int(lst_counts.get(c, 0))
                nn = int(net_counts.get(c, 0))
                no = int(off_counts.get(c, 0))
                pool = no if pool_is_offending else nn
                stats[c] = (k, nn, no, _ratio(k, pool))
            # the reference: highest selection rate among known categories with >= min_listed listed
            known = [c for c in cats if c != UNKNOWN and not math.isnan(stats[c][3])]
            eligible = [c for c in known if stats[c][0] >= cfg.min_listed] or known
            ref = max(sorted(eligible), key=lambda c: stats[c][3]) if eligible else None
            ref_rate = stats[ref][3] if ref is not None else math.nan
            for c in sorted(cats):
                k, nn, no, rate = stats[c]
                ls, ns, os_ = _ratio(k, n_listed), _ratio(nn, n_net), _ratio(no, n_off)
                srr = rate / ref_rate if ref_rate > 0 and not math.isnan(rate) else math.nan
                rvn, rvo = _ratio(ls, ns), _ratio(ls, os_)
                # thresholds apply to the numbers as reported (6 decimals), so 0.8 is never "below 0.8"
                ls, ns, os_, srr, rvn, rvo = (round(x, 6) for x in (ls, ns, os_, srr, rvn, rvo))
                flag = ""
                if k >= cfg.min_listed and k > 0:
                    parts = []
                    pool_ratio, pool_share = (rvo, os_) if pool_is_offending else (rvn, ns)
                    if not math.isnan(pool_ratio) and not (cfg.ratio_low <= pool_ratio <= cfg.ratio_high):
                        side = "above" if pool_ratio > cfg.ratio_high else "below"
                        parts.append(f"{_pct(ls)} of {lname} against {_pct(pool_share)} of the {pool_label} "
                                     f"(ratio {pool_ratio:.2f}, {side} "
                                     f"{cfg.ratio_high if side == 'above' else cfg.ratio_low:g})")
                    if not math.isnan(srr) and not (cfg.ratio_low <= srr <= cfg.ratio_high):
                        side = "above" if srr > cfg.ratio_high else "below"
                        parts.append(f"selection rate {_pct(rate)} of the {pool_label} against {_pct(ref_rate)} "
                                     f"for {label} {ref}, the highest (ratio {srr:.2f}, {side} "
                                     f"{cfg.ratio_high if side == 'above' else cfg.ratio_low:g})")
                    if parts:
                        flag = f"{label.capitalize()} {c}: " + "; ".join(parts) + "."
                rows.append((lname, attr, c, k, ls, nn, ns, no, os_, srr, rvn, rvo, flag, demo_points[lname],
                             why[lname]))
    table = pd.DataFrame(rows, columns=COLUMNS)
    for col in ("listed", "network_count", "offending_count"):
        table[col] = table[col].astype(np.int64)
    for col in FLOAT_COLUMNS:
        table[col] = table[col].astype(float).round(6)
    table = table.sort_values(["list", "attribute", "category"], kind="stable").reset_index(drop=True)
    table.attrs["notes"] = notes
    table.attrs["demographic_enforcement"] = demo_enf
    return table


def disparity_summary(table: pd.DataFrame) -> dict:
    """For manifest.json: the method, the number of flags, the flagged rows and any notes.

    >>> disparity_summary(pd.DataFrame(columns=COLUMNS))["flags"]
    0
    """
    flagged = table[table["flag"].astype(str) != ""]
    rows = []
    for r in flagged.to_dict("records"):
        rows.append({k: (None if isinstance(v, float) and math.isnan(v) else
                         int(v) if isinstance(v, (np.integer,)) else
                         float(v) if isinstance(v, (np.floating,)) else v)
                     for k, v in r.items()})
    return {"method": METHOD, "rows": int(len(table)), "flags": int(len(flagged)), "flagged": rows,
            "notes": list(table.attrs.get("notes", [])),
            "demographic_enforcement": list(table.attrs.get("demographic_enforcement", []))}
