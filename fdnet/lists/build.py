"""The three lists: ranked cuts of the scores under the policy's guardrails.

- **call_in**: groups chosen by recent violence and active conflicts; inside
  each, the attendees who maximise the expected share of members who hear
  the message (a member is reached if invited, or directly tied to an
  attendee; invitees attend with their show-up probability), chosen among
  enforcement-eligible members reaching the policy's minimum
  (:mod:`fdnet.lists.reach`, Wheeler et al. 2019). ``call_in_groups.csv``
  reports each chosen group's members, invitations and expected reach, with
  the greedy choice beside the exact one.
- **custom_notifications**: enforcement-eligible people, ranked by
  enforcement score.
- **service_referrals**: every recent shooting victim (whatever their
  record), then others ranked by service score (victimization and
  exposure to it).

Victims are never put on an enforcement list for being victims: the
enforcement score leaves victimization out, and enforcement eligibility
requires an offending role in the window. Victimization appears as a
reason only on service_referrals.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..scoring.features import FEATURES
from ..policy import Policy


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


PHRASES = {
    "violent_offending": lambda v, pol: _plural(int(v), "violent incident") + " in an offending role",
    "gun_offending": lambda v, pol: _plural(int(v), "shooting") + " in an offending role",
    "offending": lambda v, pol: _plural(int(v), "incident") + " in an offending role",
    "recent_offending": lambda v, pol: (_plural(int(v), "incident") + " in an offending role in the last "
                                        f"{pol.features.recent_days} days"),
    "degree": lambda v, pol: _plural(int(v), "co-offender"),
    "core_number": lambda v, pol: f"in a {int(v)}-core of co-offenders",
    "exposure_1": lambda v, pol: _plural(int(v), "co-offender") + " shot",
    "exposure_2": lambda v, pol: _plural(int(v), "shooting victim") + " two steps away",
    "exposure_decayed": lambda v, pol: f"recent shootings among co-offenders (weight {v:.2f})",
    "shooter_exposure": lambda v, pol: _plural(int(v), "co-offender") + " suspected in shootings",
    "group_violence": lambda v, pol: (f"{_plural(int(v), 'shooting')} involving the group in the last "
                                      f"{pol.features.group_recent_days} days"),
    "group_conflicts": lambda v, pol: f"group in {_plural(int(v), 'active conflict')}",
    "age": lambda v, pol: f"age {int(v)}",
    "shooting_victimization": lambda v, pol: f"shot {_plural(int(v), 'time')} in the window",
    "contagion_risk": lambda v, pol: f"contagion risk {v:.1f} per 1,000 per year",
}


def _reason(r, policy: Policy, kind: str, limit: int = 5) -> str:
    """The components that scored on the ``kind`` score, largest first (with their points).

    The one-row reference for :func:`reasons` (which builds the same text column-wise).
    """
    items = []
    for name in FEATURES:
        comp = policy.components[name]
        if kind not in comp.counts_for:
            continue
        pts = float(getattr(r, f"points_{name}"))
        v = getattr(r, name)
        if pts > 0 and v == v:
            items.append((-pts, FEATURES.index(name), name, v, pts))
    items.sort()
    parts = [f"{PHRASES[name](v, policy)} ({pts:g} pts)" for _, _, name, v, pts in items[:limit]]
    if len(items) > limit:
        parts.append(_plural(len(items) - limit, "more component") + " (fdnet explain)")
    return "; ".join(parts)


def enforcement_reason(r, policy: Policy) -> str:
    """A short sentence from the enforcement components that scored points (never victimization).

    The one-row reference for :func:`enforcement_reasons`.
    """
    s = _reason(r, policy, "enforcement") or "no scored activity"
    if r.last_offending_date:
        s += f" (last offending {r.last_offending_date})"
    if r.juvenile and policy.guardrails.juveniles == "flag":
        s += "; JUVENILE: review before any contact"
    return s[0].upper() + s[1:] + "."


def service_reason(r, policy: Policy) -> str:
    """The one-row reference for :func:`service_reasons`."""
    s = _reason(r, policy, "service") or "no victimization risk recorded"
    if r.shooting_victimization and r.last_victimization_date:
        s += f" (last shot {r.last_victimization_date})"
    return s[0].upper() + s[1:] + "."


# --------------------------------------------------------------------------- column-wise text

def _obj(a) -> np.ndarray:
    """A 1-d object array of Python str (so that ``+`` concatenates element-wise without truncation)."""
    return np.asarray(a).astype(str).astype(object)


def _plurals(n: np.ndarray, one: str, many: str | None = None) -> np.ndarray:
    """Element-wise :func:`_plural`.

    >>> _plurals(np.array([0, 1, 2]), "shooting").tolist()
    ['0 shootings', '1 shooting', '2 shootings']
    """
    n = np.asarray(n, dtype=np.int64)
    return _obj(n) + np.where(n == 1, " " + one, " " + (many or one + "s")).astype(object)


def _fmt(fmt: str, v: np.ndarray) -> np.ndarray:
    """``fmt % x`` for every x (Python's own formatting, so the text equals an f-string's)."""
    return np.char.mod(fmt, np.asarray(v, dtype=float)).astype(object)


def _phrase_column(name: str, v: np.ndarray, policy: Policy) -> np.ndarray:
    """:data:`PHRASES` ``[name]`` for every value of ``v`` (NaN rows give any text: they never score)."""
    iv = np.where(v == v, v, 0).astype(np.int64)      # int(v): truncation, as the one-row phrase
    f = policy.features
    if name == "violent_offending":
        return _plurals(iv, "violent incident") + " in an offending role"
    if name == "gun_offending":
        return _plurals(iv, "shooting") + " in an offending role"
    if name == "offending":
        return _plurals(iv, "incident") + " in an offending role"
    if name == "recent_offending":
        return _plurals(iv, "incident") + f" in an offending role in the last {f.recent_days} days"
    if name == "degree":
        return _plurals(iv, "co-offender")
    if name == "core_number":
        return "in a " + _obj(iv) + "-core of co-offenders"
    if name == "exposure_1":
        return _plurals(iv, "co-offender") + " shot"
    if name == "exposure_2":
        return _plurals(iv, "shooting victim") + " two steps away"
    if name == "exposure_decayed":
        return "recent shootings among co-offenders (weight " + _fmt("%.2f", np.where(v == v, v, 0)) + ")"
    if name == "shooter_exposure":
        return _plurals(iv, "co-offender") + " suspected in shootings"
    if name == "group_violence":
        return _plurals(iv, "shooting") + f" involving the group in the last {f.group_recent_days} days"
    if name == "group_conflicts":
        return "group in " + _plurals(iv, "active conflict")
    if name == "age":
        return "age " + _obj(iv)
    if name == "shooting_victimization":
        return "shot " + _plurals(iv, "time") + " in the window"
    if name == "contagion_risk":
        return "contagion risk " + _fmt("%.1f", np.where(v == v, v, 0)) + " per 1,000 per year"
    raise KeyError(name)


def reasons(df: pd.DataFrame, policy: Policy, kind: str, limit: int = 5) -> np.ndarray:
    """:func:`_reason` for every row of ``df``, built column-wise.

    One phrase column per component (a loop over the ~15 components, not the
    rows), the components ordered per row by one stable argsort of a points
    matrix (largest first, ties in :data:`FEATURES` order), the top ``limit``
    joined with "; ".

    >>> from fdnet.policy import Policy
    >>> df = pd.DataFrame({n: [0.0, 0.0] for n in FEATURES} | {f"points_{n}": [0.0, 0.0] for n in FEATURES})
    >>> df.loc[0, ["offending", "points_offending", "degree", "points_degree"]] = [3, 6.0, 1, 6.5]
    >>> reasons(df, Policy(), "enforcement").tolist()
    ['1 co-offender (6.5 pts); 3 incidents in an offending role (6 pts)', '']
    """
    names = [n for n in FEATURES if kind in policy.components[n].counts_for]
    m = len(df)
    if m == 0 or not names:
        return np.full(m, "", dtype=object)
    vals = np.column_stack([df[n].to_numpy(dtype=float) for n in names])
    pts = np.column_stack([df[f"points_{n}"].to_numpy(dtype=float) for n in names])
    ok = (pts > 0) & (vals == vals)
    order = np.argsort(np.where(ok, -pts, np.inf), axis=1, kind="stable")
    count = ok.sum(axis=1)
    parts = np.empty((m, len(names)), dtype=object)
    for c, n in enumerate(names):
        parts[:, c] = _phrase_column(n, vals[:, c], policy) + " (" + _fmt("%g", pts[:, c]) + " pts)"
    rows = np.arange(m)
    out = np.full(m, "", dtype=object)
    for j in range(min(limit, len(names))):
        piece = parts[rows, order[:, j]]
        out = np.where(count > j, np.where(j == 0, piece, out + "; " + piece), out)
    more = count > limit
    if more.any():
        out[more] = out[more] + "; " + _plurals(count[more] - limit, "more component") + " (fdnet explain)"
    return out


def _sentence(s: np.ndarray) -> np.ndarray:
    """First letter upper-cased, a full stop at the end (element-wise ``s[0].upper() + s[1:] + "."``)."""
    if not len(s):
        return np.asarray(s, dtype=object)
    ser = pd.Series(s, dtype=object)
    return (ser.str[0].str.upper() + ser.str[1:] + ".").to_numpy(dtype=object)


def enforcement_reasons(df: pd.DataFrame, policy: Policy) -> np.ndarray:
    """:func:`enforcement_reason` for every row of ``df``, column-wise.

    >>> from fdnet.policy import Policy
    >>> df = pd.DataFrame({n: [0.0] for n in FEATURES} | {f"points_{n}": [0.0] for n in FEATURES})
    >>> df[["offending", "points_offending"]] = [[2, 4.0]]
    >>> df = df.assign(last_offending_date=["2025-03-01"], juvenile=[True])
    >>> enforcement_reasons(df, Policy()).tolist()
    ['2 incidents in an offending role (4 pts) (last offending 2025-03-01); JUVENILE: review before any contact.']
    """
    s = reasons(df, policy, "enforcement")
    s = np.where(s == "", "no scored activity", s).astype(object)
    last = df["last_offending_date"].to_numpy(dtype=object)
    has = _nonempty(last)
    s[has] = s[has] + " (last offending " + _obj(last[has]) + ")"
    if policy.guardrails.juveniles == "flag":
        j = df["juvenile"].to_numpy(dtype=bool)
        s[j] = s[j] + "; JUVENILE: review before any contact"
    return _sentence(s)


def service_reasons(df: pd.DataFrame, policy: Policy) -> np.ndarray:
    """:func:`service_reason` for every row of ``df``, column-wise.

    >>> from fdnet.policy import Policy
    >>> df = pd.DataFrame({n: [0.0] for n in FEATURES} | {f"points_{n}": [0.0] for n in FEATURES})
    >>> df = df.assign(last_victimization_date=["2025-03-01"])
    >>> service_reasons(df, Policy()).tolist()
    ['No victimization risk recorded.']
    """
    s = reasons(df, policy, "service")
    s = np.where(s == "", "no victimization risk recorded", s).astype(object)
    last = df["last_victimization_date"].to_numpy(dtype=object)
    has = (df["shooting_victimization"].to_numpy() != 0) & _nonempty(last)
    s[has] = s[has] + " (last shot " + _obj(last[has]) + ")"
    return _sentence(s)


def _nonempty(a) -> np.ndarray:
    """Date cells that hold a date: not "" and not missing (scores hold "" when there is none)."""
    a = np.asarray(a, dtype=object)
    return (a != "") & ~pd.isna(a)


# What each list's `score` column is and how its `rank` is ordered (the `ranked_by` column).
CALL_IN_RANKED_BY = "group_rank, then enforcement_score within the group"
CUSTOM_NOTIFICATIONS_RANKED_BY = "enforcement_score"
SERVICE_REFERRALS_RANKED_BY = ("referral_basis (recent shooting victims first, latest shooting first), "
                               "then service_score")


def _ranked(df: pd.DataFrame, score_col: str) -> pd.DataFrame:
    return df.sort_values([score_col, "person_id"], ascending=[False, True], kind="stable")


def _pid_order(scores: pd.DataFrame) -> np.ndarray:
    """Each row's position in person_id order (the row number itself when scores are sorted, as scores.csv)."""
    pid = scores["person_id"]
    if pid.is_monotonic_increasing:
        return np.arange(len(scores), dtype=np.int64)
    codes, _ = pd.factorize(pid.to_numpy(dtype=object), sort=True)
    return codes.astype(np.int64)


def _top(idx: np.ndarray, score: np.ndarray, pid_order: np.ndarray, size: int) -> np.ndarray:
    """The ``size`` rows of ``idx`` with the highest ``score``, ties by person_id (one stable sort)."""
    order = np.lexsort((pid_order[idx], -score[idx]))
    return idx[order[:size]]


def _group_stats(scores: pd.DataFrame, gone: np.ndarray, can_invite: np.ndarray):
    """Per group, in one pass over the people sorted by group: the groups' names (sorted), their
    members (network indices, not deceased or incarcerated, in index order, as CSR ``ptr``/``members``),
    and group_violence / group_conflicts as read on each group's first member."""
    grp = scores["group"]
    idx = np.flatnonzero((grp != "").to_numpy(dtype=bool, na_value=False) & ~gone)
    codes, names = pd.factorize(grp.iloc[idx], sort=True)
    names = np.asarray(names, dtype=object)
    perm = np.argsort(codes, kind="stable")            # members of each group, in index order
    members = idx[perm]
    size = np.bincount(codes, minlength=len(names))
    ptr = np.concatenate([[0], np.cumsum(size)]).astype(np.int64)
    first = members[ptr[:-1]] if len(names) else np.zeros(0, dtype=np.int64)
    any_invite = np.bincount(codes, weights=can_invite[idx], minlength=len(names)) > 0
    gv = scores["group_violence"].to_numpy()[first].astype(np.int64)
    gc = scores["group_conflicts"].to_numpy()[first].astype(np.int64)
    return names, ptr, members, size, gv, gc, any_invite


def _person_column(persons: pd.DataFrame | None, pids, column: str) -> np.ndarray | None:
    """The persons table's ``column`` of each of ``pids`` ("" when none), looked up for those
    people only (one Arrow membership test over the table, then a reindex of the few)."""
    if persons is None or column not in persons:
        return None
    from ..scoring.explain import _isin
    pids = np.asarray(pids, dtype=object)
    sub = persons[_isin(persons["person_id"], pids.tolist())]
    return sub.set_index("person_id")[column].reindex(pids).fillna("").astype(str) \
        .to_numpy(dtype=object)


def _supervision_end(persons: pd.DataFrame | None, pids) -> np.ndarray | None:
    """The persons table's supervision_end of each of ``pids`` ("" when none)."""
    return _person_column(persons, pids, "supervision_end")


def _round6(x: np.ndarray) -> np.ndarray:
    """Python's ``round(x, 6)`` of every value (correctly rounded, as the CSVs always had), per distinct value."""
    x = np.asarray(x, dtype=float)
    u, inv = np.unique(x, return_inverse=True)
    return np.array([round(float(v), 6) for v in u], dtype=float)[inv].reshape(x.shape)


def call_in(scores: pd.DataFrame, policy: Policy, indptr: np.ndarray, indices: np.ndarray,
            supervision_end: np.ndarray | None = None, as_of: str | None = None, *,
            persons: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(call_in rows, call_in_groups rows). ``scores`` must be in network index order (as scores.csv).

    Supervision end dates come from ``supervision_end`` (aligned with ``scores``) or, looked up for
    the chosen groups' members only, from ``persons``.

    The groups' statistics come from one sort of the people by group; only the
    policy's ``max_groups`` chosen groups enter the attendee choice.
    """
    from .reach import choose_attendees, expected_reach, induced_csr, show_up_probabilities

    rule = policy.lists.call_in
    gone = scores["deceased"].to_numpy(dtype=bool) | scores["incarcerated"].to_numpy(dtype=bool)
    escore = scores["enforcement_score"].to_numpy(dtype=float)
    can_invite = scores["enforcement_eligible"].to_numpy(dtype=bool) & (escore >= rule.min_score)
    names, ptr, members_all, size, gv, gc, any_invite = _group_stats(scores, gone, can_invite)
    cand = np.flatnonzero(((gv > 0) | (gc > 0)) & any_invite)
    # priority: most recent shootings, then conflicts, then size, then name (codes are in name order)
    cand = cand[np.lexsort((cand, -size[cand], -gc[cand], -gv[cand]))]
    chosen = cand[:rule.max_groups]
    # only the chosen groups' members are read further (person IDs, supervision, show-up)
    mem = np.concatenate([members_all[ptr[c]:ptr[c + 1]] for c in chosen.tolist()]) if len(chosen) else \
        np.zeros(0, dtype=np.int64)
    pid = np.full(len(scores), None, dtype=object)
    pid[mem] = scores["person_id"].iloc[mem].to_numpy(dtype=object)
    sup = np.full(len(scores), "", dtype=object)
    sup[mem] = scores["supervision"].iloc[mem].to_numpy(dtype=object)
    if supervision_end is None and persons is not None:
        ends = _supervision_end(persons, pid[mem])
    else:
        ends = None if supervision_end is None else np.asarray(supervision_end, dtype=object)[mem]
    p_all = np.zeros(len(scores), dtype=float)
    p_all[mem] = show_up_probabilities(sup[mem], default=rule.show_up_probability,
                                       supervised=rule.supervised_show_up_probability,
                                       supervision_end=ends, as_of=as_of)
    seats = rule.size
    days = policy.features.group_recent_days
    inv_parts, grows, group_order = [], [], []
    for c in chosen.tolist():                  # at most max_groups groups
        g = names[c]
        shoot, conf = int(gv[c]), int(gc[c])
        members = members_all[ptr[c]:ptr[c + 1]]
        cap = min(rule.invites_per_group, seats)
        if cap <= 0:
            break
        group_order.append(g)
        ip, ix = induced_csr(indptr, indices, members)
        p = p_all[members]
        elig = can_invite[members]
        best, greedy = choose_attendees(ip, ix, p, elig, cap, method=rule.method, time_limit=rule.milp_time_limit_s,
                                        node_limit=rule.milp_node_limit)
        inv_local = np.asarray(best.invited, dtype=np.int64)
        seats -= len(inv_local)
        mask = np.zeros(len(members), dtype=bool)
        mask[inv_local] = True
        reach_check, _ = expected_reach(ip, ix, mask, p)
        n = len(members)
        why_group = (f"{_plural(shoot, 'shooting')} involving members in the last {days} days, "
                     f"{_plural(conf, 'active conflict')}")
        # invitees by enforcement score, then person_id (local index order is person_id order)
        loc = np.sort(inv_local)
        loc = loc[np.argsort(-escore[members[loc]], kind="stable")]
        inv_parts.append((g, why_group, n, members[loc], (ip[loc + 1] - ip[loc]).astype(np.int64), p[loc],
                          round(best.expected_reach / n, 6)))
        gap = best.expected_reach - greedy.expected_reach
        grows.append({
            "group": g, "members": n, "eligible_to_invite": int(elig.sum()),
            "shootings_recent": shoot, "conflicts": conf, "invited": len(inv_local),
            "invited_ids": ";".join(pid[members[np.sort(inv_local)]].tolist()),
            "expected_reach": round(best.expected_reach, 6), "expected_share": round(best.expected_reach / n, 6),
            "reach_recomputed": round(reach_check, 6),
            "greedy_invited": ";".join(pid[members[np.sort(greedy.invited)]].tolist()),
            "greedy_expected_reach": round(greedy.expected_reach, 6), "exact_gain_over_greedy": round(gap, 6),
            "method": best.method, "status": best.status,
            "upper_bound": None if best.bound is None else round(float(best.bound), 6),
            "reasons": f"Chosen for {why_group}.",
        })
    cols = ["person_id", "group", "score", "reasons", "show_up_probability", "members_tied", "group_members",
            "group_expected_share", "last_offending_date", "supervision", "juvenile"]
    total = sum(len(part[3]) for part in inv_parts)
    if total:
        gidx = np.concatenate([part[3] for part in inv_parts])
        direct = np.concatenate([part[4] for part in inv_parts])
        p = np.concatenate([part[5] for part in inv_parts])
        reps = [len(part[3]) for part in inv_parts]
        g_col = np.repeat(np.array([part[0] for part in inv_parts], dtype=object), reps)
        why = np.repeat(np.array([part[1] for part in inv_parts], dtype=object), reps)
        n_col = np.repeat(np.array([part[2] for part in inv_parts], dtype=np.int64), reps)
        share = np.repeat(np.array([part[6] for part in inv_parts], dtype=float), reps)
        rows = scores.iloc[gidx]
        sup_i = sup[gidx]
        under = (p == rule.supervised_show_up_probability) & ~np.isin(sup_i, ["", "none"])
        text = ("Invited for " + g_col + " (" + why + "): tied to " + _plurals(direct, "other member") + " of "
                + _obj(n_col) + "; attends with probability " + _fmt("%.2f", p)
                + np.where(under, " (under supervision)", "").astype(object) + ". "
                + enforcement_reasons(rows, policy))
        ci = pd.DataFrame({
            "person_id": pid[gidx], "group": g_col, "score": escore[gidx], "reasons": text,
            "show_up_probability": _round6(p), "members_tied": direct, "group_members": n_col,
            "group_expected_share": share,
            "last_offending_date": rows["last_offending_date"].to_numpy(dtype=object),
            "supervision": sup_i, "juvenile": rows["juvenile"].to_numpy(dtype=bool),
        }, columns=cols)
    else:
        ci = pd.DataFrame([], columns=cols)
    ci.insert(0, "rank", np.arange(1, len(ci) + 1))
    # rank is invitation order (groups in priority order, members by enforcement score), not a ranking
    # by score across groups: say so on every row (docs/lists.md).
    order = {g: i + 1 for i, g in enumerate(group_order)}
    ci.insert(5, "ranked_by", CALL_IN_RANKED_BY)   # after the contract's rank, person_id, group, score, reasons
    ci.insert(5, "group_rank", ci["group"].map(order).astype("int64") if len(ci) else pd.Series(dtype="int64"))
    ci.insert(6, "rank_in_group", ci.groupby("group", sort=False).cumcount().astype("int64") + 1)
    groups = pd.DataFrame(grows, columns=["group", "members", "eligible_to_invite", "shootings_recent", "conflicts",
                                          "invited", "invited_ids", "expected_reach", "expected_share",
                                          "reach_recomputed", "greedy_invited", "greedy_expected_reach",
                                          "exact_gain_over_greedy", "method", "status", "upper_bound", "reasons"])
    return ci, groups


def legal_risk(r, as_of: str | None = None) -> str:
    """A short legal-risk summary for a prosecutor: supervision and prior record (never victimization)."""
    parts = []
    sup = r.supervision if isinstance(r.supervision, str) else ""
    end = str(getattr(r, "supervision_end", "") or "")[:10]
    if sup and sup != "none" and end and as_of and end < as_of:
        parts.append(f"{sup} ended {end} (before the as-of date)")
    elif sup and sup != "none":
        parts.append(f"on {sup}" + (f" until {end}" if end else ""))
    else:
        parts.append("no supervision recorded")
    parts.append(f"prior violent record: {_plural(int(r.violent_offending), 'violent incident')} in an offending role")
    if r.gun_offending:
        parts.append(_plural(int(r.gun_offending), "shooting") + " in an offending role")
    parts.append("open matters: not in the data")
    return "; ".join(parts) + "."


def legal_risks(df: pd.DataFrame, as_of: str | None = None) -> np.ndarray:
    """:func:`legal_risk` for every row of ``df`` (columns supervision, supervision_end, violent_offending,
    gun_offending), column-wise.

    >>> df = pd.DataFrame({"supervision": ["parole", "none"], "supervision_end": ["2025-01-01", ""],
    ...                    "violent_offending": [1, 0], "gun_offending": [2, 0]})
    >>> legal_risks(df, "2025-06-30").tolist()[0]
    'parole ended 2025-01-01 (before the as-of date); prior violent record: 1 violent incident in an offending role; 2 shootings in an offending role; open matters: not in the data.'
    """
    m = len(df)
    if m == 0:
        return np.zeros(0, dtype=object)
    sup = df["supervision"].to_numpy(dtype=object)
    sup = pd.Series(sup, dtype=object).fillna("").astype(str).to_numpy(dtype=object)
    end = df["supervision_end"].fillna("").astype(str).str[:10].to_numpy(dtype=object) \
        if "supervision_end" in df else np.full(m, "", dtype=object)
    on = (sup != "") & (sup != "none")
    ended = on & (end != "") & (as_of is not None) & (end < (as_of or ""))
    first = np.where(on, "on " + sup + np.where(end != "", " until " + end, "").astype(object),
                     "no supervision recorded").astype(object)
    first[ended] = sup[ended] + " ended " + end[ended] + " (before the as-of date)"
    out = (first + "; prior violent record: " + _plurals(df["violent_offending"].to_numpy().astype(np.int64),
                                                          "violent incident") + " in an offending role")
    gun = df["gun_offending"].to_numpy()
    has = gun != 0
    out[has] = out[has] + "; " + _plurals(gun[has].astype(np.int64), "shooting") + " in an offending role"
    return out + "; open matters: not in the data."


def build_lists(scores: pd.DataFrame, policy: Policy, as_of_day: int, *,
                co_offending=None, persons: pd.DataFrame | None = None,
                as_of: str | None = None) -> dict[str, pd.DataFrame]:
    """Return {list name: frame} with rank, person_id, group, score, reasons, ...; plus ``call_in_groups``.

    ``co_offending`` (the network's co-offending layer, CSR) is needed for the
    call-in's reach; ``persons`` supplies supervision end dates. Every step is
    a sort, a filter or a column operation over the scores (no per-person or
    per-group Python work beyond the policy's ``max_groups`` call-in groups).
    """
    rules = policy.lists
    out = {}
    pid_order = _pid_order(scores)
    escore = scores["enforcement_score"].to_numpy(dtype=float)
    sscore = scores["service_score"].to_numpy(dtype=float)

    def enforcement_list(df: pd.DataFrame, extra: dict) -> pd.DataFrame:
        return pd.DataFrame({
            "rank": np.arange(1, len(df) + 1),
            "person_id": df["person_id"].to_numpy(),
            "group": df["group"].to_numpy(),
            "score": df["enforcement_score"].to_numpy(),
            "reasons": enforcement_reasons(df, policy),
            "ranked_by": CUSTOM_NOTIFICATIONS_RANKED_BY,
            **extra,
            "last_offending_date": df["last_offending_date"].to_numpy(),
            "supervision": df["supervision"].to_numpy(),
            "juvenile": df["juvenile"].to_numpy(),
        })

    if co_offending is None:
        raise ValueError("build_lists needs the co-offending layer for the call-in")
    out["call_in"], out["call_in_groups"] = call_in(scores, policy, co_offending.indptr, co_offending.indices,
                                                    as_of=as_of, persons=persons)
    cn_idx = np.flatnonzero(scores["enforcement_eligible"].to_numpy(dtype=bool) &
                            (escore >= rules.custom_notifications.min_score))
    cn_idx = _top(cn_idx, escore, pid_order, rules.custom_notifications.size)
    cn = scores.iloc[cn_idx]
    cn_end = _supervision_end(persons, cn["person_id"].to_numpy(dtype=object))
    if cn_end is None:
        cn_end = np.full(len(cn), "", dtype=object)
    out["custom_notifications"] = enforcement_list(cn, {
        "violent_offending": cn["violent_offending"].to_numpy(),
        "gun_offending": cn["gun_offending"].to_numpy(),
        "probability_shooting": cn["probability_shooting"].to_numpy(),
        "legal_risk": legal_risks(cn.assign(supervision_end=cn_end), as_of),
    })

    sr = policy.lists.service_referrals
    alive = ~scores["deceased"].to_numpy(dtype=bool)
    recent_cut = as_of_day - sr.victim_recent_days
    shot = np.flatnonzero(alive & (scores["shooting_victimization"].to_numpy() > 0))
    last_v = scores["last_victimization_date"].iloc[shot].to_numpy(dtype=object)     # the victims' dates only
    has_v = _nonempty(last_v)
    recent_victim = np.zeros(len(scores), dtype=bool)
    recent_victim[shot[has_v]] = (np.array(last_v[has_v].astype(str), dtype="datetime64[D]").astype(np.int64)
                                  >= recent_cut)
    if not sr.include_all_shooting_victims:
        recent_victim[:] = False
    victims = scores.iloc[np.flatnonzero(recent_victim)].assign(_basis="recent shooting victim")
    victims = victims.sort_values(["last_victimization_date", "service_score", "person_id"],
                                  ascending=[False, False, True], kind="stable")
    rest_idx = _top(np.flatnonzero(alive & ~recent_victim & (sscore >= sr.min_score)), sscore, pid_order, sr.size)
    rest = scores.iloc[rest_idx].assign(_basis="victimization risk")
    svc = pd.concat([victims, rest])
    out["service_referrals"] = pd.DataFrame({
        "rank": np.arange(1, len(svc) + 1),
        "person_id": svc["person_id"].to_numpy(),
        "group": svc["group"].to_numpy(),
        "score": svc["service_score"].to_numpy(),
        "reasons": service_reasons(svc, policy),
        "ranked_by": SERVICE_REFERRALS_RANKED_BY,
        "referral_basis": svc["_basis"].to_numpy(),
        "last_victimization_date": svc["last_victimization_date"].to_numpy(),
        "exposure_1": svc["exposure_1"].to_numpy(),
        "exposure_2": svc["exposure_2"].to_numpy(),
        "juvenile": svc["juvenile"].to_numpy(),
    })
    # the district outreach works in (the persons table's; empty when it has none): the workspace's
    # outreach view shows it beside who, why and when they were shot
    district = _person_column(persons, svc["person_id"].to_numpy(dtype=object), "district")
    out["service_referrals"]["district"] = district if district is not None else np.full(len(svc), "", dtype=object)
    return out
