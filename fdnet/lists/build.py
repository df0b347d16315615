"""The three lists: ranked cuts of the scores under the policy's guardrails.

- **call_in**: enforcement-eligible group members, ranked by enforcement
  score (ties by person_id), who reach the policy's minimum.
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

from ..scoring.policy import Policy


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def enforcement_reason(r, flag_juveniles: bool = True) -> str:
    """A short sentence from the enforcement components that scored points (never victimization)."""
    parts = []
    if r.violent_offending and r.points_violent_offending:
        parts.append(_plural(int(r.violent_offending), "violent incident") + " in an offending role")
    if r.gun_offending and r.points_gun_offending:
        parts.append(_plural(int(r.gun_offending), "shooting") + " in an offending role")
    if r.offending and r.points_offending and not (r.violent_offending and r.points_violent_offending):
        parts.append(_plural(int(r.offending), "incident") + " in an offending role")
    if r.degree and r.points_degree:
        parts.append(_plural(int(r.degree), "co-offender"))
    if r.exposure_1 and r.points_exposure_1:
        parts.append(_plural(int(r.exposure_1), "co-offender") + " shot")
    if r.exposure_2 and r.points_exposure_2:
        parts.append(_plural(int(r.exposure_2), "shooting victim") + " two steps away")
    s = "; ".join(parts) if parts else "no scored activity"
    if r.last_offending_date:
        s += f" (last offending {r.last_offending_date})"
    if r.juvenile and flag_juveniles:
        s += "; JUVENILE: review before any contact"
    return s[0].upper() + s[1:] + "."


def service_reason(r) -> str:
    parts = []
    if r.shooting_victimization:
        parts.append(f"shot {_plural(int(r.shooting_victimization), 'time')} in the window"
                     f" (last {r.last_victimization_date})")
    if r.exposure_1 and r.points_exposure_1:
        parts.append(_plural(int(r.exposure_1), "co-offender") + " shot")
    if r.exposure_2 and r.points_exposure_2:
        parts.append(_plural(int(r.exposure_2), "shooting victim") + " two steps away")
    s = "; ".join(parts) if parts else "no victimization risk recorded"
    return s[0].upper() + s[1:] + "."


def _ranked(df: pd.DataFrame, score_col: str) -> pd.DataFrame:
    return df.sort_values([score_col, "person_id"], ascending=[False, True], kind="stable")


def build_lists(scores: pd.DataFrame, policy: Policy, as_of_day: int,
                group_sizes: pd.Series) -> dict[str, pd.DataFrame]:
    """Return {list name: frame} with rank, person_id, group, score, reasons, ..."""
    rules = policy.lists
    flag_j = policy.guardrails.juveniles == "flag"
    eligible = scores[scores["enforcement_eligible"]]
    out = {}

    ci = eligible[eligible["enforcement_score"] >= rules.call_in.min_score]
    if rules.call_in.require_group:
        ci = ci[ci["group"] != ""]
    def enforcement_list(df: pd.DataFrame, extra: dict) -> pd.DataFrame:
        return pd.DataFrame({
            "rank": np.arange(1, len(df) + 1),
            "person_id": df["person_id"].to_numpy(),
            "group": df["group"].to_numpy(),
            "score": df["enforcement_score"].to_numpy(),
            "reasons": [enforcement_reason(r, flag_j) for r in df.itertuples()],
            **extra,
            "last_offending_date": df["last_offending_date"].to_numpy(),
            "supervision": df["supervision"].to_numpy(),
            "juvenile": df["juvenile"].to_numpy(),
        })

    ci = _ranked(ci, "enforcement_score").head(rules.call_in.size)
    out["call_in"] = enforcement_list(ci, {
        "group_members_in_network": ci["group"].map(group_sizes).fillna(0).astype(int).to_numpy(),
        "offending_incidents": ci["offending"].to_numpy(),
    })
    cn = eligible[eligible["enforcement_score"] >= rules.custom_notifications.min_score]
    cn = _ranked(cn, "enforcement_score").head(rules.custom_notifications.size)
    out["custom_notifications"] = enforcement_list(cn, {
        "violent_offending": cn["violent_offending"].to_numpy(),
        "gun_offending": cn["gun_offending"].to_numpy(),
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
        "reasons": [service_reason(r) for r in svc.itertuples()],
        "referral_basis": svc["_basis"].to_numpy(),
        "last_victimization_date": svc["last_victimization_date"].to_numpy(),
        "exposure_1": svc["exposure_1"].to_numpy(),
        "exposure_2": svc["exposure_2"].to_numpy(),
        "juvenile": svc["juvenile"].to_numpy(),
    })
    return out
