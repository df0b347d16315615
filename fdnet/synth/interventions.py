"""Plant a call-in with a known effect in a synthetic city, so an evaluation can be checked against it.

:func:`plant_call_in` picks the people a partnership would invite to a call-in on a day ``follow_up_days``
before the input period ends: among those with an offending involvement in the year before, each drawn
with a weight equal to that count (the most active are the most likely to be invited, as on a real
call-in list, so a naive treated-against-untreated comparison is biased). Each invitee attends with
probability ``attend_probability``. The effect is planted by *thinning*: every incident after the call-in
in which an attendee has an offending or a victim role is removed, with all its involvements, with
probability ``1 − effect`` (one draw per incident). So ``effect`` is the planted risk ratio of an
attendee's incidents after the call-in against the same person without it; ``effect=1`` plants none.
The future shootings of the truth are thinned the same way.

The city gains an ``interventions`` input table (CONTRACT.md section 1: ``call_in_invited`` on the
invitation day, ``call_in_attended`` on the call-in day) and a truth table ``truth_interventions``
(every invitee: attended, prior offending, incidents removed), written to ``truth/interventions.csv``.

>>> from fdnet.synth import generate_city
>>> city = generate_city(3000, seed=4)
>>> planted = plant_call_in(city, effect=0.5, seed=1)
>>> iv = planted.interventions
>>> sorted(iv["kind"].unique())
['call_in_attended', 'call_in_invited']
>>> t = planted.truth_interventions
>>> bool(t["attended"].any()) and int(t["incidents_removed"].sum()) > 0
True
>>> plant_call_in(city, effect=1.0, seed=1).n_rows("incidents") == city.n_rows("incidents")
True
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .city import SynthCity

OFFENDING = ("offender", "suspect", "arrestee")


def plant_call_in(city: SynthCity, *, effect: float = 0.5, follow_up_days: int = 365, share: float = 0.05,
                  attend_probability: float = 0.6, seed: int = 0) -> SynthCity:
    """A copy of ``city`` with a call-in on ``end_date − follow_up_days`` and its planted ``effect``.

    ``share``: the share of eligible people (an offending involvement in the 365 days before the
    call-in) invited. See the module docstring for the model.
    """
    if not 0 < effect <= 1:
        raise ValueError(f"effect must be in (0, 1], not {effect!r}")
    if not 0 < share <= 1 or not 0 < attend_probability <= 1:
        raise ValueError("share and attend_probability must be in (0, 1]")
    rng = np.random.default_rng(seed)
    end = np.datetime64(city.end_date, "D")
    call_in = end - np.timedelta64(follow_up_days, "D")
    inc, inv = city.incidents, city.involvements
    day = pd.Series(inc["date"].astype(str).str[:10].to_numpy().astype("datetime64[D]"), index=inc["incident_id"])
    inv_day = day.reindex(inv["incident_id"]).to_numpy()
    offending = inv["role"].isin(OFFENDING).to_numpy()

    # eligible: offending in the year before the call-in; weight = that count
    before = offending & (inv_day < call_in) & (inv_day >= call_in - np.timedelta64(365, "D"))
    prior = inv.loc[before, "person_id"].value_counts().sort_index()
    if not len(prior):
        raise ValueError("nobody offended in the year before the call-in: choose a shorter follow_up_days")
    n_invite = max(1, int(round(share * len(prior))))
    w = prior.to_numpy(dtype=float)
    pick = np.sort(rng.choice(len(prior), size=n_invite, replace=False, p=w / w.sum()))
    invited = prior.index.to_numpy()[pick]
    attended = rng.random(n_invite) < attend_probability
    attendees = invited[attended]

    # thinning: one uniform draw per incident after the call-in; dropped when an attendee is in it
    # in an offending or victim role and the draw is above the effect
    after = inv_day > call_in
    acting = (offending | (inv["role"] == "victim").to_numpy()) & after
    touched = np.unique(inv.loc[acting & inv["person_id"].isin(attendees).to_numpy(), "incident_id"].to_numpy())
    draws = rng.random(len(touched))
    dropped = touched[draws >= effect]
    keep_inc = ~inc["incident_id"].isin(dropped).to_numpy()
    keep_inv = ~inv["incident_id"].isin(dropped).to_numpy()
    removed = (inv.loc[~keep_inv & inv["person_id"].isin(attendees).to_numpy() & acting]
               .drop_duplicates(["incident_id", "person_id"])["person_id"].value_counts())

    fut = city.truth_future
    fut_touched = np.unique(fut.loc[fut["person_id"].isin(attendees), "incident_id"].to_numpy())
    fut_drop = fut_touched[rng.random(len(fut_touched)) >= effect]
    fut = fut[~fut["incident_id"].isin(fut_drop)].reset_index(drop=True)

    inv_date = str(call_in - np.timedelta64(14, "D"))
    rows = pd.DataFrame({
        "person_id": np.concatenate([invited, attendees]),
        "kind": ["call_in_invited"] * len(invited) + ["call_in_attended"] * len(attendees),
        "date": [inv_date] * len(invited) + [str(call_in)] * len(attendees),
        "source": "synthetic call-in", "list": "call_in",
    }).sort_values(["person_id", "kind"], kind="stable").reset_index(drop=True)
    truth = pd.DataFrame({
        "person_id": invited, "attended": attended,
        "prior_offending": prior.to_numpy()[pick].astype(np.int64),
        "incidents_removed": removed.reindex(invited).fillna(0).astype(np.int64).to_numpy(),
    })
    out = SynthCity(inc[keep_inc].reset_index(drop=True), inv[keep_inv].reset_index(drop=True), city.persons,
                    city.groups, city.group_relations, city.truth_membership, fut, city.end_date,
                    stats={**city.stats, "call_in": {"date": str(call_in), "effect": effect, "invited": len(invited),
                                                     "attended": int(attended.sum()),
                                                     "incidents_removed": int(len(dropped))}})
    out.extra_inputs["interventions"] = rows
    out.extra_truth["interventions"] = truth
    return out
