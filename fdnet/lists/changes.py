"""changes.csv: who entered, left or stayed on each list since an earlier run, and why.

A run made with ``--previous RUN`` compares its three lists with that earlier run's (read through
:func:`open_previous`, which hash-checks the whole earlier folder: an edited or forged one is refused).
:func:`changes` gives one row per list and person on that list in either run:

- ``list``, ``person_id``, ``change`` (``entered``, ``left`` or ``stayed``);
- ``previous_rank`` and ``rank`` (empty where the person was not on the list), ``previous_score`` and
  ``score`` (the list's own score, enforcement or service; empty where the person was not in that run's
  network), ``group`` (this run's group, or the earlier one for someone no longer in the network);
- ``reason``: one sentence a reader can check against the two runs' scores.csv. For someone who
  entered, what changed (``Score 42 (was 18 in run r0): violent_offending +2 (+8 pts)...``) or that they
  are new to the network; for someone who left, why they are off the list now: no longer in the network
  (their records aged out of the window), a guardrail that now applies (incarcerated, deceased, no
  offending role in the window...), a score below the list's minimum, below the cut of a full list, a
  smaller list, or (call-in) a group not chosen.

Everything is built with merges and column operations over the listed people only (the two lists, a few
hundred rows, joined to the two runs' scores); the one loop is over the ~15 score components.

>>> import tempfile, pathlib, fdnet
>>> from fdnet.synth import generate_city, write_city
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = write_city(generate_city(n_people=1500, seed=2), d / "city")
>>> _ = fdnet.run(d / "city", as_of="2025-06-30").write(d / "r0")
>>> r1 = fdnet.run(d / "city", previous_run=d / "r0")
>>> list(r1.changes.columns) == list(CHANGES_COLUMNS)
True
>>> sorted(set(r1.changes["change"])) == ["entered", "left", "stayed"]
True
>>> r1.manifest["previous"]["as_of"]
'2025-06-30'
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UsageError
from ..runfolder import ENFORCEMENT_LISTS, LIST_FILES, LIST_NAMES, RunFolder, open_run
from ..scoring.features import FEATURES

CHANGES_COLUMNS = ("list", "person_id", "change", "previous_rank", "rank", "previous_score", "score", "group",
                   "reason")
CHANGE_ORDER = ("entered", "left", "stayed")
#: what the previous run must hold for a comparison (and all that is kept in memory of it)
PREVIOUS_FILES = ("groups.csv", "scores.csv", *LIST_FILES)
#: component deltas named in a reason, largest change in points first
TOP_DELTAS = 3
_LIST_SCORE = {"call_in": "enforcement_score", "custom_notifications": "enforcement_score",
               "service_referrals": "service_score"}
_RECENT_VICTIM = "recent shooting victim"


def open_previous(path: str | Path) -> RunFolder:
    """The earlier run of ``--previous``, opened with every file checked against its manifest.

    An altered folder (a file edited, added or removed after that run) is a UsageError naming
    ``--previous``; only the files a comparison reads are kept in memory (:data:`PREVIOUS_FILES`).

    >>> open_previous("/nonexistent")
    Traceback (most recent call last):
    ...
    fdnet.errors.UsageError: --previous /nonexistent: /nonexistent is not a run folder (no such folder)
    """
    try:
        return open_run(path, require=PREVIOUS_FILES, action="compare this run with", keep=PREVIOUS_FILES)
    except UsageError as exc:
        raise UsageError(f"--previous {path}: {exc}") from None


def previous_entry(previous: RunFolder) -> dict:
    """The manifest's ``previous``: the earlier run's folder, its manifest's SHA-256 and its as-of date."""
    return {"run_dir": str(Path(previous.path).resolve()), "manifest_sha256": previous.manifest_sha256,
            "as_of": previous.as_of}


# ---------------------------------------------------------------------------- column-wise text

def _obj(a) -> np.ndarray:
    return np.asarray(a).astype(str).astype(object)


def _fmt(fmt: str, v) -> np.ndarray:
    return np.char.mod(fmt, np.asarray(v, dtype=float)).astype(object)


def _num(s: pd.Series) -> np.ndarray:
    """A column read as text (or numbers) as floats, NaN where empty or not a number."""
    return pd.to_numeric(pd.Series(s, dtype=object), errors="coerce").to_numpy(dtype=float)


def _flag(s: pd.Series) -> np.ndarray:
    """A boolean column of either run (True/False, or their text) as bools; missing is False."""
    return pd.Series(s, dtype=object).astype(str).str.strip().str.lower().isin(["true", "1", "yes"]).to_numpy()


def _text(s: pd.Series) -> np.ndarray:
    return pd.Series(s, dtype=object).fillna("").astype(str).to_numpy(dtype=object)


def _deltas(cur: pd.DataFrame, prev: pd.DataFrame, names: list[str]) -> np.ndarray:
    """Per row, the components whose points changed between the runs, largest change first:
    ``violent_offending +2 (+8 pts)``, joined with ", " (the top :data:`TOP_DELTAS`)."""
    m = len(cur)
    names = [n for n in names if f"points_{n}" in cur and f"points_{n}" in prev]
    if m == 0 or not names:
        return np.full(m, "", dtype=object)
    dp = np.column_stack([np.nan_to_num(_num(cur[f"points_{n}"])) - np.nan_to_num(_num(prev[f"points_{n}"]))
                          for n in names])
    dv = np.column_stack([np.nan_to_num(_num(cur[n]) if n in cur else np.zeros(m))
                          - np.nan_to_num(_num(prev[n]) if n in prev else np.zeros(m)) for n in names])
    dp = np.round(dp, 6)
    dv = np.round(dv, 6)
    ok = dp != 0
    order = np.argsort(np.where(ok, -np.abs(dp), np.inf), axis=1, kind="stable")
    count = ok.sum(axis=1)
    parts = np.empty((m, len(names)), dtype=object)
    for c, n in enumerate(names):
        parts[:, c] = n + " " + _fmt("%+.4g", dv[:, c]) + " (" + _fmt("%+g", dp[:, c]) + " pts)"
    rows = np.arange(m)
    out = np.full(m, "", dtype=object)
    for j in range(min(TOP_DELTAS, len(names))):
        piece = parts[rows, order[:, j]]
        out = np.where(count > j, np.where(j == 0, piece, out + ", " + piece), out)
    return out


def _rule(policy_dict: dict, name: str) -> dict:
    lists = policy_dict.get("lists") if isinstance(policy_dict, dict) else None
    r = lists.get(name) if isinstance(lists, dict) else None
    return r if isinstance(r, dict) else {}


# ---------------------------------------------------------------------------- the table

def changes(previous: RunFolder, current_lists: Mapping[str, pd.DataFrame], current_scores: pd.DataFrame,
            policy, *, as_of: str, previous_label: str | None = None) -> pd.DataFrame:
    """changes.csv's rows (:data:`CHANGES_COLUMNS`): every person on a list in ``previous`` or now.

    ``previous``: the earlier run (:func:`open_previous`); ``current_lists`` and ``current_scores``: this
    run's lists and scores; ``policy``: this run's :class:`~fdnet.policy.Policy`; ``as_of``: this run's
    as-of date; ``previous_label`` names the earlier run in the reasons (default ``run <folder name>``).
    Sorted by list (:data:`~fdnet.runfolder.LIST_NAMES`), change (:data:`CHANGE_ORDER`), rank (the
    earlier rank for those who left), person_id.
    """
    label = previous_label or f"run {Path(previous.path).name if previous.path is not None else 'previous'}"
    prev_policy = previous.policy
    pairs = []
    for name in LIST_NAMES:
        p = previous.table(name)
        c = current_lists[name]
        p = pd.DataFrame({"person_id": _text(p["person_id"]), "previous_rank": _num(p["rank"])})
        c = pd.DataFrame({"person_id": _text(c["person_id"]), "rank": _num(c["rank"])})
        m = p.merge(c, on="person_id", how="outer", sort=False)
        m.insert(0, "list", name)
        pairs.append(m)
    rows = pd.concat(pairs, ignore_index=True)
    if not len(rows):
        return _empty()
    people = pd.unique(rows["person_id"].to_numpy(dtype=object))
    from ..scoring.explain import _isin
    cur = current_scores[_isin(current_scores["person_id"], people)]
    cur = cur.assign(person_id=_text(cur["person_id"]), _in=True)
    ps = previous.table("scores")
    ps = ps[_isin(ps["person_id"], people)]
    ps = ps.assign(person_id=_text(ps["person_id"]), _in=True)
    rows = (rows.merge(cur.add_prefix("c_").rename(columns={"c_person_id": "person_id"}), on="person_id",
                       how="left", sort=False)
            .merge(ps.add_prefix("p_").rename(columns={"p_person_id": "person_id"}), on="person_id", how="left",
                   sort=False))
    out = []
    for name in LIST_NAMES:
        sub = rows[rows["list"].to_numpy() == name].reset_index(drop=True)
        if len(sub):
            out.append(_list_changes(name, sub, current_lists, previous, policy, prev_policy, as_of, label))
    df = pd.concat(out, ignore_index=True) if out else _empty()
    return _sorted(df)


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in zip(
        CHANGES_COLUMNS, (object, object, object, "Int64", "Int64", float, float, object, object))})


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    lst = df["list"].map({n: i for i, n in enumerate(LIST_NAMES)}).to_numpy(dtype=np.int64)
    chg = df["change"].map({n: i for i, n in enumerate(CHANGE_ORDER)}).to_numpy(dtype=np.int64)
    r = np.where(df["change"].to_numpy() == "left", df["previous_rank"].to_numpy(dtype=float, na_value=np.nan),
                 df["rank"].to_numpy(dtype=float, na_value=np.nan))
    pid_code = pd.factorize(df["person_id"].to_numpy(dtype=object), sort=True)[0]
    order = np.lexsort((pid_code, np.nan_to_num(r, nan=np.inf), chg, lst))
    return df.iloc[order].reset_index(drop=True)


def _list_changes(name: str, s: pd.DataFrame, current_lists, previous: RunFolder, policy, prev_policy: dict,
                  as_of: str, label: str) -> pd.DataFrame:
    """The rows of one list: change, scores, group and the reason sentence, column-wise."""
    n = len(s)
    col = _LIST_SCORE[name]
    enforcement = name in ENFORCEMENT_LISTS
    kind = "enforcement" if enforcement else "service"
    was_on = ~np.isnan(s["previous_rank"].to_numpy(dtype=float))
    is_on = ~np.isnan(s["rank"].to_numpy(dtype=float))
    change = np.where(was_on & is_on, "stayed", np.where(is_on, "entered", "left")).astype(object)
    in_cur = s["c__in"].fillna(False).to_numpy(dtype=bool)
    in_prev = s["p__in"].fillna(False).to_numpy(dtype=bool)
    score = np.where(in_cur, _num(s[f"c_{col}"]) if f"c_{col}" in s else np.nan, np.nan)
    pscore = np.where(in_prev, _num(s[f"p_{col}"]) if f"p_{col}" in s else np.nan, np.nan)
    group = np.where(in_cur, _text(s["c_group"]), _text(s["p_group"]) if "p_group" in s else "").astype(object)

    rule = getattr(policy.lists, name)
    prule = _rule(prev_policy, name)
    cur_min, cur_size = float(rule.min_score), int(rule.size)
    prev_min = float(prule.get("min_score", cur_min))
    prev_size = int(prule.get("size", cur_size))
    sc, ps = _fmt("%g", score), _fmt("%g", pscore)
    score_was = "score " + sc + np.where(in_prev, " (was " + ps + " in " + label + ")",
                                         f" (not in the network of {label})").astype(object)
    names = [c for c in FEATURES if c in policy.components and kind in policy.components[c].counts_for]
    cur_cols = s[[c for c in s.columns if c.startswith("c_")]].rename(columns=lambda c: c[2:])
    prev_cols = s[[c for c in s.columns if c.startswith("p_")]].rename(columns=lambda c: c[2:])
    deltas = _deltas(cur_cols, prev_cols, names)
    deltas = np.where(in_cur & in_prev, deltas, "")
    with_deltas = score_was + np.where(deltas != "", ": " + deltas, "").astype(object)
    cur_excl = _text(s["c_enforcement_exclusion"]) if "c_enforcement_exclusion" in s else np.full(n, "", object)
    prev_excl = _text(s["p_enforcement_exclusion"]) if "p_enforcement_exclusion" in s else np.full(n, "", object)
    deceased = _flag(s["c_deceased"]) if "c_deceased" in s else np.zeros(n, bool)
    reason = np.full(n, "", dtype=object)

    # ---- entered
    e = change == "entered"
    new = e & ~in_prev
    reason[new] = (f"New to the network since {label} (new to the records, or no involvement inside that "
                   "run's window); score " + sc[new])
    old = e & in_prev
    reason[old] = with_deltas[old]
    unexcluded = old & (prev_excl != "") & (cur_excl == "") if enforcement else np.zeros(n, bool)
    reason[unexcluded] = reason[unexcluded] + "; no longer excluded (was: " + prev_excl[unexcluded] + ")"
    reached = old & ~unexcluded & (np.nan_to_num(pscore, nan=-np.inf) < prev_min) & (score >= cur_min)
    reason[reached] = reason[reached] + f"; now reaches the list's minimum of {cur_min:g}"
    other = old & ~unexcluded & ~reached
    if name == "call_in":
        prev_groups = set(_text(previous.table("call_in")["group"]).tolist())
        g_new = other & ~np.isin(group, sorted(prev_groups))
        reason[g_new] = reason[g_new] + "; group " + group[g_new] + " chosen for the call-in this cycle"
        g_old = other & ~g_new
        reason[g_old] = reason[g_old] + "; chosen among the invitees of group " + group[g_old] + " this cycle"
    else:
        places = f"{cur_size} places" + (f", was {prev_size}" if prev_size != cur_size else "")
        if name == "service_referrals":
            places = "; " + places + " after the recent shooting victims"
        else:
            places = " of " + places
        reason[other] = (reason[other] + "; within the cut now (rank " + _fmt("%d", np.nan_to_num(
            s["rank"].to_numpy(dtype=float)[other])) + places + ")")
    if name == "service_referrals":
        basis = pd.Series(_text(current_lists[name]["referral_basis"]),
                          index=_text(current_lists[name]["person_id"]))
        b = basis.reindex(s["person_id"].to_numpy(dtype=object)).fillna("").to_numpy(dtype=object)
        last = _text(s["c_last_victimization_date"]) if "c_last_victimization_date" in s else np.full(n, "", object)
        victim = e & (b == _RECENT_VICTIM)
        # a recent shooting victim is referred whatever the score: that, not the score, is why
        reason[victim] = ("Shot on " + last[victim] + " (a recent shooting victim, referred whatever the "
                          "score); " + np.where(in_prev[victim], with_deltas[victim],
                                                "new to the network since " + label).astype(object))

    # ---- left
    left = change == "left"
    gone = left & ~in_cur
    window = getattr(policy, "window_days", None)
    reason[gone] = (f"No longer in the network: no involvement inside the window ({window} days to {as_of}); "
                    "their records aged out of the window or were removed")
    here = left & in_cur
    done = ~here
    if enforcement:
        g = here & (cur_excl != "")
        reason[g] = "Guardrail now applies: " + cur_excl[g] + "; " + with_deltas[g]
        done = done | g
    else:
        g = here & deceased
        reason[g] = "Recorded as deceased; " + with_deltas[g]
        done = done | g
    below = here & ~done & ~(score >= cur_min)
    reason[below] = with_deltas[below] + f"; below the list's minimum of {cur_min:g}"
    if prev_min != cur_min:
        reason[below] = reason[below] + f" (was {prev_min:g})"
    done = done | below
    rest = here & ~done
    if name == "call_in":
        cur_groups = sorted(set(_text(current_lists["call_in"]["group"]).tolist()))
        nog = rest & (group == "")
        reason[nog] = with_deltas[nog] + "; no longer in a group"
        notc = rest & ~nog & ~np.isin(group, cur_groups)
        reason[notc] = with_deltas[notc] + "; group " + group[notc] + " not chosen for the call-in this cycle"
        seats = rest & ~nog & ~notc
        reason[seats] = (with_deltas[seats] + "; not among the invitees of group " + group[seats] + " this cycle "
                         f"(at most {int(rule.invites_per_group)} per group, chosen for the reach of the message)")
    else:
        cl = current_lists[name]
        ranked = cl if name != "service_referrals" else cl[_text(cl["referral_basis"]) != _RECENT_VICTIM]
        last_score = _num(ranked["score"])[-1] if len(ranked) else np.nan
        last_rank = int(_num(ranked["rank"])[-1]) if len(ranked) else 0
        cut = (f"; below the cut: the list is full and its last place (rank {last_rank}) scored {last_score:g}"
               if len(ranked) else "; below the cut")
        reason[rest] = with_deltas[rest] + cut
        if cur_size < prev_size:
            reason[rest] = reason[rest] + f"; the list is smaller ({cur_size} places, was {prev_size})"
    if name == "service_referrals":
        pb = pd.Series(_text(previous.table(name)["referral_basis"]) if "referral_basis" in previous.table(name)
                       else np.full(len(previous.table(name)), "", object),
                       index=_text(previous.table(name)["person_id"]))
        pbv = pb.reindex(s["person_id"].to_numpy(dtype=object)).fillna("").to_numpy(dtype=object)
        lastv = _text(s["c_last_victimization_date"]) if "c_last_victimization_date" in s else np.full(n, "", object)
        aged = here & (pbv == _RECENT_VICTIM) & ~deceased
        days = int(policy.lists.service_referrals.victim_recent_days)
        reason[aged] = ("No longer a recent shooting victim (last shot " + lastv[aged]
                        + f", more than {days} days before {as_of}); " + reason[aged])

    # ---- stayed
    st = change == "stayed"
    reason[st] = ("On the list in both runs: rank " + _fmt("%d", np.nan_to_num(s["rank"].to_numpy(dtype=float)[st]))
                  + " (was " + _fmt("%d", np.nan_to_num(s["previous_rank"].to_numpy(dtype=float)[st]))
                  + "), " + with_deltas[st])

    reason = _sentence(reason)
    return pd.DataFrame({
        "list": name, "person_id": s["person_id"].to_numpy(dtype=object), "change": change,
        "previous_rank": pd.array(np.where(was_on, s["previous_rank"].to_numpy(dtype=float), np.nan),
                                  dtype="Float64").astype("Int64"),
        "rank": pd.array(np.where(is_on, s["rank"].to_numpy(dtype=float), np.nan), dtype="Float64").astype("Int64"),
        "previous_score": np.round(pscore, 6), "score": np.round(score, 6), "group": group, "reason": reason,
    }, columns=list(CHANGES_COLUMNS))


def _sentence(s: np.ndarray) -> np.ndarray:
    """First letter upper-cased, a full stop at the end."""
    if not len(s):
        return np.asarray(s, dtype=object)
    ser = pd.Series(s, dtype=object)
    return (ser.str[0].str.upper() + ser.str[1:] + ".").to_numpy(dtype=object)
