"""The planted call-in (fdnet.synth.interventions): who is invited, what is removed, and nothing else."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fdnet.records import load_records
from fdnet.synth import generate_city, write_city
from fdnet.synth.interventions import plant_call_in


@pytest.fixture(scope="module")
def city():
    return generate_city(8000, seed=5)


def _after(city, planted, people):
    """Incidents after the call-in with one of ``people`` offending or a victim, before and after planting."""
    day = np.datetime64(planted.stats["call_in"]["date"])
    def count(c):
        inv = c.involvements.merge(c.incidents[["incident_id", "date"]], on="incident_id")
        m = (inv["date"].str[:10].to_numpy().astype("datetime64[D]") > day) & inv["person_id"].isin(people) \
            & inv["role"].isin(["offender", "suspect", "arrestee", "victim"])
        return inv.loc[m, "incident_id"].nunique()
    return count(city), count(planted)


def test_attendees_lose_about_one_minus_effect_of_their_later_incidents(city):
    planted = plant_call_in(city, effect=0.5, seed=1)
    t = planted.truth_interventions
    attendees = t.loc[t["attended"], "person_id"]
    before, after = _after(city, planted, attendees)
    assert before > 60
    # each touched incident is kept with probability 0.5: binomial, 4 standard deviations
    assert abs(after / before - 0.5) < 4 * np.sqrt(0.25 / before)
    assert int(t["incidents_removed"].sum()) >= before - after
    # nobody else loses an incident they were not in with an attendee
    removed = set(city.incidents["incident_id"]) - set(planted.incidents["incident_id"])
    inv = city.involvements[city.involvements["incident_id"].isin(removed)]
    acting = inv[inv["role"].isin(["offender", "suspect", "arrestee", "victim"])]
    assert acting.groupby("incident_id")["person_id"].apply(lambda p: p.isin(attendees).any()).all()
    # the involvements of a removed incident go with it
    assert not planted.involvements["incident_id"].isin(removed).any()


def test_invitations_favour_the_most_active_so_a_naive_comparison_is_biased(city):
    planted = plant_call_in(city, effect=1.0, seed=2)
    t = planted.truth_interventions
    day = np.datetime64(planted.stats["call_in"]["date"])
    inv = city.involvements.merge(city.incidents[["incident_id", "date"]], on="incident_id")
    d = inv["date"].str[:10].to_numpy().astype("datetime64[D]")
    prior = inv[(d < day) & (d >= day - np.timedelta64(365, "D"))
                & inv["role"].isin(["offender", "suspect", "arrestee"])]["person_id"].value_counts()
    assert t["prior_offending"].tolist() == prior.reindex(t["person_id"]).astype(int).tolist()
    others = prior.drop(t["person_id"])
    assert t["prior_offending"].mean() > 1.3 * others.mean()
    # effect 1 plants nothing: every incident kept
    assert planted.n_rows("incidents") == city.n_rows("incidents")
    assert int(t["incidents_removed"].sum()) == 0


def test_the_folder_has_a_valid_interventions_table_and_truth(city, tmp_path):
    planted = plant_call_in(city, effect=0.6, seed=3)
    paths = write_city(planted, tmp_path)
    assert paths["interventions"].name == "interventions.csv"
    assert (tmp_path / "truth" / "interventions.csv").exists()
    assert "planted effect 0.6" in (tmp_path / "truth" / "README.md").read_text(encoding="utf-8")
    rec = load_records(tmp_path)
    assert rec.inputs["interventions"]["rows"]["rejected"] == 0
    iv = rec.interventions
    truth = pd.read_csv(tmp_path / "truth" / "interventions.csv", dtype={"person_id": str})
    assert sorted(iv.loc[iv["kind"] == "call_in_invited", "person_id"]) == sorted(truth["person_id"])
    assert sorted(iv.loc[iv["kind"] == "call_in_attended", "person_id"]) == \
        sorted(truth.loc[truth["attended"], "person_id"])
    # every invitee is in the records, with an offending role before the call-in
    assert set(truth["person_id"]) <= set(rec.involvements["person_id"])


def test_planting_is_deterministic_and_leaves_the_city_alone(city):
    n = city.n_rows("incidents")
    a, b = plant_call_in(city, effect=0.5, seed=7), plant_call_in(city, effect=0.5, seed=7)
    assert a.interventions.equals(b.interventions) and a.incidents.equals(b.incidents)
    assert city.n_rows("incidents") == n and city.interventions is None
    with pytest.raises(ValueError):
        plant_call_in(city, effect=0)
