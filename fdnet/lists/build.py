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
from ..scoring.policy import Policy


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
    """The components that scored on the ``kind`` score, largest first (with their points)."""
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
    """A short sentence from the enforcement components that scored points (never victimization)."""
    s = _reason(r, policy, "enforcement") or "no scored activity"
    if r.last_offending_date:
        s += f" (last offending {r.last_offending_date})"
    if r.juvenile and policy.guardrails.juveniles == "flag":
        s += "; JUVENILE: review before any contact"
    return s[0].upper() + s[1:] + "."


def service_reason(r, policy: Policy) -> str:
    s = _reason(r, policy, "service") or "no victimization risk recorded"
    if r.shooting_victimization and r.last_victimization_date:
        s += f" (last shot {r.last_victimization_date})"
    return s[0].upper() + s[1:] + "."


# What each list's `score` column is and how its `rank` is ordered (the `ranked_by` column).
CALL_IN_RANKED_BY = "group_rank, then enforcement_score within the group"
CUSTOM_NOTIFICATIONS_RANKED_BY = "enforcement_score"
SERVICE_REFERRALS_RANKED_BY = ("referral_basis (recent shooting victims first, latest shooting first), "
                               "then service_score")


def _ranked(df: pd.DataFrame, score_col: str) -> pd.DataFrame:
    return df.sort_values([score_col, "person_id"], ascending=[False, True], kind="stable")


def call_in(scores: pd.DataFrame, policy: Policy, indptr: np.ndarray, indices: np.ndarray,
            supervision_end: np.ndarray | None = None, as_of: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(call_in rows, call_in_groups rows). ``scores`` must be in network index order (as scores.csv)."""
    from .reach import choose_attendees, expected_reach, induced_csr, show_up_probabilities

    rule = policy.lists.call_in
    flag_j = policy.guardrails.juveniles == "flag"
    grp = scores["group"].to_numpy(dtype=object)
    gone = scores["deceased"].to_numpy(dtype=bool) | scores["incarcerated"].to_numpy(dtype=bool)
    can_invite = scores["enforcement_eligible"].to_numpy(dtype=bool) & \
        (scores["enforcement_score"].to_numpy(dtype=float) >= rule.min_score)
    p_all = show_up_probabilities(scores["supervision"].to_numpy(dtype=object), default=rule.show_up_probability,
                                  supervised=rule.supervised_show_up_probability,
                                  supervision_end=supervision_end, as_of=as_of)
    gv = scores["group_violence"].to_numpy()
    gc = scores["group_conflicts"].to_numpy()
    stats = []
    idx_all = np.arange(len(scores))
    for g in sorted(set(grp) - {""}):
        members = idx_all[(grp == g) & ~gone]
        if not len(members):
            continue
        k = members[0]
        stats.append((g, int(gv[k]), int(gc[k]), members))
    stats = [s for s in stats if (s[1] > 0 or s[2] > 0) and can_invite[s[3]].any()]
    stats.sort(key=lambda s: (-s[1], -s[2], -len(s[3]), s[0]))
    chosen = stats[:rule.max_groups]
    seats = rule.size
    rows, grows = [], []
    days = policy.features.group_recent_days
    for g, shoot, conf, members in chosen:
        cap = min(rule.invites_per_group, seats)
        if cap <= 0:
            break
        ip, ix = induced_csr(indptr, indices, members)
        p = p_all[members]
        elig = can_invite[members]
        best, greedy = choose_attendees(ip, ix, p, elig, cap, method=rule.method, time_limit=rule.milp_time_limit_s,
                                        node_limit=rule.milp_node_limit)
        inv_local = np.asarray(best.invited, dtype=np.int64)
        seats -= len(inv_local)
        reach_check, _ = expected_reach(ip, ix, np.isin(np.arange(len(members)), inv_local), p)
        n = len(members)
        why_group = (f"{_plural(shoot, 'shooting')} involving members in the last {days} days, "
                     f"{_plural(conf, 'active conflict')}")
        inv_sorted = sorted(inv_local.tolist(), key=lambda k: (-scores["enforcement_score"].iat[members[k]],
                                                                scores["person_id"].iat[members[k]]))
        for k in inv_sorted:
            r = scores.iloc[members[k]]
            direct = int(ip[k + 1] - ip[k])
            rows.append({
                "person_id": r["person_id"], "group": g, "score": r["enforcement_score"],
                "reasons": (f"Invited for {g} ({why_group}): tied to {_plural(direct, 'other member')} of {n}; "
                            f"attends with probability {p[k]:.2f}"
                            f"{' (under supervision)' if p[k] == rule.supervised_show_up_probability and r['supervision'] not in ('', 'none') else ''}. "
                            + enforcement_reason(r, policy)),
                "show_up_probability": round(float(p[k]), 6),
                "members_tied": direct,
                "group_members": n,
                "group_expected_share": round(best.expected_reach / n, 6),
                "last_offending_date": r["last_offending_date"],
                "supervision": r["supervision"],
                "juvenile": bool(r["juvenile"]),
            })
        gap = best.expected_reach - greedy.expected_reach
        grows.append({
            "group": g, "members": n, "eligible_to_invite": int(elig.sum()),
            "shootings_recent": shoot, "conflicts": conf, "invited": len(inv_local),
            "invited_ids": ";".join(scores["person_id"].iat[members[k]] for k in sorted(inv_local.tolist())),
            "expected_reach": round(best.expected_reach, 6), "expected_share": round(best.expected_reach / n, 6),
            "reach_recomputed": round(reach_check, 6),
            "greedy_invited": ";".join(scores["person_id"].iat[members[k]] for k in sorted(greedy.invited.tolist())),
            "greedy_expected_reach": round(greedy.expected_reach, 6), "exact_gain_over_greedy": round(gap, 6),
            "method": best.method, "status": best.status,
            "upper_bound": None if best.bound is None else round(float(best.bound), 6),
            "reasons": f"Chosen for {why_group}.",
        })
    ci = pd.DataFrame(rows, columns=["person_id", "group", "score", "reasons", "show_up_probability", "members_tied",
                                     "group_members", "group_expected_share", "last_offending_date", "supervision",
                                     "juvenile"])
    ci.insert(0, "rank", np.arange(1, len(ci) + 1))
    # rank is invitation order (groups in priority order, members by enforcement score), not a ranking
    # by score across groups: say so on every row (docs/lists.md).
    order = {g: i + 1 for i, (g, *_rest) in enumerate(chosen)}
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


def build_lists(scores: pd.DataFrame, policy: Policy, as_of_day: int, group_sizes: pd.Series, *,
                co_offending=None, persons: pd.DataFrame | None = None,
                as_of: str | None = None) -> dict[str, pd.DataFrame]:
    """Return {list name: frame} with rank, person_id, group, score, reasons, ...; plus ``call_in_groups``.

    ``co_offending`` (the network's co-offending layer, CSR) is needed for the
    call-in's reach; ``persons`` supplies supervision end dates.
    """
    rules = policy.lists
    flag_j = policy.guardrails.juveniles == "flag"
    eligible = scores[scores["enforcement_eligible"]]
    out = {}
    sup_end = None
    if persons is not None and "supervision_end" in persons:
        sup_end = persons.set_index("person_id")["supervision_end"].reindex(scores["person_id"]).fillna("") \
            .astype(str).to_numpy(dtype=object)

    def enforcement_list(df: pd.DataFrame, extra: dict) -> pd.DataFrame:
        return pd.DataFrame({
            "rank": np.arange(1, len(df) + 1),
            "person_id": df["person_id"].to_numpy(),
            "group": df["group"].to_numpy(),
            "score": df["enforcement_score"].to_numpy(),
            "reasons": [enforcement_reason(r, policy) for r in df.itertuples()],
            "ranked_by": CUSTOM_NOTIFICATIONS_RANKED_BY,
            **extra,
            "last_offending_date": df["last_offending_date"].to_numpy(),
            "supervision": df["supervision"].to_numpy(),
            "juvenile": df["juvenile"].to_numpy(),
        })

    if co_offending is None:
        raise ValueError("build_lists needs the co-offending layer for the call-in")
    out["call_in"], out["call_in_groups"] = call_in(scores, policy, co_offending.indptr, co_offending.indices,
                                                    supervision_end=sup_end, as_of=as_of)
    cn = eligible[eligible["enforcement_score"] >= rules.custom_notifications.min_score]
    cn = _ranked(cn, "enforcement_score").head(rules.custom_notifications.size)
    cn_end = (pd.Series(sup_end, index=scores["person_id"]).reindex(cn["person_id"]).to_numpy()
              if sup_end is not None else np.full(len(cn), "", dtype=object))
    out["custom_notifications"] = enforcement_list(cn, {
        "violent_offending": cn["violent_offending"].to_numpy(),
        "gun_offending": cn["gun_offending"].to_numpy(),
        "probability_shooting": cn["probability_shooting"].to_numpy(),
        "legal_risk": [legal_risk(r, as_of) for r in cn.assign(supervision_end=cn_end).itertuples()],
    })

    sr = policy.lists.service_referrals
    alive = scores[~scores["deceased"]]
    recent_cut = as_of_day - sr.victim_recent_days
    epoch = np.datetime64("1970-01-01", "D")
    last_v = alive["last_victimization_date"].to_numpy(dtype=object)
    last_v_day = np.array([(np.datetime64(d) - epoch).astype(int) if d else -10**9 for d in last_v],
                          dtype=np.int64)
    recent_victim = (alive["shooting_victimization"].to_numpy() > 0) & (last_v_day >= recent_cut)
    victims = alive[recent_victim] if sr.include_all_shooting_victims else alive.iloc[0:0]
    victims = victims.assign(_basis="recent shooting victim")
    victims = victims.sort_values(["last_victimization_date", "service_score", "person_id"],
                                  ascending=[False, False, True], kind="stable")
    rest = alive[~alive["person_id"].isin(victims["person_id"]) & (alive["service_score"] >= sr.min_score)]
    rest = _ranked(rest, "service_score").head(sr.size).assign(_basis="victimization risk")
    svc = pd.concat([victims, rest])
    out["service_referrals"] = pd.DataFrame({
        "rank": np.arange(1, len(svc) + 1),
        "person_id": svc["person_id"].to_numpy(),
        "group": svc["group"].to_numpy(),
        "score": svc["service_score"].to_numpy(),
        "reasons": [service_reason(r, policy) for r in svc.itertuples()],
        "ranked_by": SERVICE_REFERRALS_RANKED_BY,
        "referral_basis": svc["_basis"].to_numpy(),
        "last_victimization_date": svc["last_victimization_date"].to_numpy(),
        "exposure_1": svc["exposure_1"].to_numpy(),
        "exposure_2": svc["exposure_2"].to_numpy(),
        "juvenile": svc["juvenile"].to_numpy(),
    })
    return out
