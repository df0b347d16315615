"""The disparity report, checked against numbers worked out by hand on a ten-person network."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from helpers import write_folder

from fdnet.lists.disparity import AGE_BANDS, COLUMNS, age_band, disparity_summary, disparity_table
from fdnet.policy import policy_from_dict

# Ten people in the network. p1-p8 offended in the window, p9 and p10 were only victims.
#   race: p1-p5 B, p6-p9 W, p10 missing (-> "unknown")
#   age:  p1 16, p2 20, p3 24.9, p4 25, p5 40, p6 50, p7 missing, p8 30, p9 19, p10 missing
SCORES = pd.DataFrame({
    "person_id": [f"p{i}" for i in range(1, 11)],
    "age": [16, 20, 24.9, 25, 40, 50, np.nan, 30, 19, np.nan],
    "offending": [1, 2, 1, 3, 1, 1, 2, 1, 0, 0],
    "score": range(10),
})
PERSONS = pd.DataFrame({
    "person_id": [f"p{i}" for i in range(1, 11)] + ["p99"],          # p99: in the records, not the network
    "race": ["B", "B", "B", "B", "B", "W", "W", "W", "W", "", "B"],
    "district": ["D1"] * 11,
})
LISTS = {
    "call_in": pd.DataFrame({"person_id": ["p1", "p2", "p3", "p4", "p6"]}),
    "service_referrals": pd.DataFrame({"person_id": ["p9", "p10", "p1"]}),
}


def policy(**disparity):
    return policy_from_dict({"disparity": {"attributes": ["race", "age_band"], **disparity}})


def row(t, lst, attr, cat) -> dict:
    r = t[(t["list"] == lst) & (t["attribute"] == attr) & (t["category"] == cat)]
    assert len(r) == 1, (lst, attr, cat)
    return r.iloc[0].to_dict()


def nan(x) -> bool:
    return isinstance(x, float) and math.isnan(x)


def test_columns_and_order():
    t = disparity_table(SCORES, LISTS, PERSONS, policy(min_listed=2))
    assert list(t.columns) == COLUMNS
    keys = list(zip(t["list"], t["attribute"], t["category"]))
    assert keys == sorted(keys)
    assert set(t["list"]) == {"call_in", "service_referrals"}


def test_call_in_race_numbers_by_hand():
    t = disparity_table(SCORES, LISTS, PERSONS, policy(min_listed=2))
    b = row(t, "call_in", "race", "B")
    # B: 4 of 5 listed; 5 of 10 in the network; 5 of 8 offenders; selection rate 4/5 (pool: offenders)
    assert (b["listed"], b["network_count"], b["offending_count"]) == (4, 5, 5)
    assert b["listed_share"] == 0.8 and b["network_share"] == 0.5 and b["offending_share"] == 0.625
    assert b["ratio_vs_network"] == 1.6 and b["ratio_vs_offending"] == 1.28
    assert b["selection_rate_ratio"] == 1.0                    # B is the reference (highest rate)
    # W: 1 listed; 4 in the network (p6-p9); 3 offenders; rate 1/3 against B's 4/5
    w = row(t, "call_in", "race", "W")
    assert (w["listed"], w["network_count"], w["offending_count"]) == (1, 4, 3)
    assert w["selection_rate_ratio"] == round((1 / 3) / 0.8, 6) == 0.416667
    assert w["ratio_vs_network"] == 0.5 and w["ratio_vs_offending"] == round(0.2 / 0.375, 6)
    # missing race is the category "unknown", never dropped; no offenders in it: rate undefined
    u = row(t, "call_in", "race", "unknown")
    assert (u["listed"], u["network_count"], u["offending_count"]) == (0, 1, 0)
    assert nan(u["selection_rate_ratio"]) and nan(u["ratio_vs_offending"]) and u["ratio_vs_network"] == 0.0
    # flags: B is over-represented against offenders (1.28 > 1.25) with 4 >= min_listed listed;
    # W's low ratio is not flagged because only 1 W person is listed (< min_listed = 2)
    assert "B" in b["flag"] and "1.28" in b["flag"] and "offending population" in b["flag"]
    assert w["flag"] == "" and u["flag"] == ""


def test_min_listed_silences_small_categories():
    t = disparity_table(SCORES, LISTS, PERSONS, policy(min_listed=5))
    assert (t["flag"] == "").all()
    assert disparity_summary(t)["flags"] == 0
    t0 = disparity_table(SCORES, LISTS, PERSONS, policy(min_listed=0))
    assert row(t0, "call_in", "race", "W")["flag"] != ""          # 0.42 < 0.8 once small counts count


def test_service_referrals_use_the_network_as_pool_and_unknown_is_never_the_reference():
    t = disparity_table(SCORES, LISTS, PERSONS, policy(min_listed=1))
    b, w, u = (row(t, "service_referrals", "race", c) for c in ("B", "W", "unknown"))
    # rates over the network: B 1/5, W 1/4, unknown 1/1; the reference is W (unknown cannot be)
    assert w["selection_rate_ratio"] == 1.0
    assert b["selection_rate_ratio"] == 0.8                       # exactly the threshold: not below it
    assert u["selection_rate_ratio"] == 4.0
    assert u["ratio_vs_network"] == round((1 / 3) / 0.1, 6)
    assert "4.00" in u["flag"] and "above 1.25" in u["flag"]
    # B: selection ratio 0.8 passes, but B is 1/3 of the list against 1/2 of the network (0.67 < 0.8)
    assert b["ratio_vs_network"] == round((1 / 3) / 0.5, 6)
    assert "0.67" in b["flag"] and "selection rate" not in b["flag"]
    # with min_listed=2 nobody qualifies as reference by count, so the highest known rate is used
    t2 = disparity_table(SCORES, LISTS, PERSONS, policy(min_listed=2))
    assert row(t2, "service_referrals", "race", "W")["selection_rate_ratio"] == 1.0


def test_reference_needs_min_listed_so_a_tiny_category_cannot_set_the_bar():
    scores = pd.DataFrame({"person_id": [f"x{i}" for i in range(12)], "age": [30] * 12, "offending": [1] * 12})
    persons = pd.DataFrame({"person_id": scores["person_id"], "race": ["A"] * 10 + ["Z"] * 2})
    lists = {"call_in": pd.DataFrame({"person_id": ["x0", "x1", "x2", "x10"]})}
    t = disparity_table(scores, lists, persons, policy_from_dict({"disparity": {"attributes": ["race"],
                                                                                "min_listed": 3}}))
    # Z has the highest rate (1/2) but only one listed person: A (3/10) is the reference
    assert row(t, "call_in", "race", "A")["selection_rate_ratio"] == 1.0
    assert row(t, "call_in", "race", "Z")["selection_rate_ratio"] == round(0.5 / 0.3, 6)


def test_age_bands_always_all_six():
    t = disparity_table(SCORES, LISTS, PERSONS, policy(min_listed=2))
    a = t[(t["list"] == "call_in") & (t["attribute"] == "age_band")].set_index("category")
    assert sorted(a.index) == sorted(AGE_BANDS)
    assert a["listed"].to_dict() == {"18-24": 2, "25-34": 1, "35-44": 0, "45+": 1, "under 18": 1, "unknown": 0}
    assert a["network_count"].to_dict() == {"18-24": 3, "25-34": 2, "35-44": 1, "45+": 1, "under 18": 1,
                                            "unknown": 2}
    assert a["offending_count"].to_dict() == {"18-24": 2, "25-34": 2, "35-44": 1, "45+": 1, "under 18": 1,
                                              "unknown": 1}
    assert [age_band(x) for x in (17.99, 18, 24.99, 25, 34.99, 35, 44.99, 45)] == [
        "under 18", "18-24", "18-24", "25-34", "25-34", "35-44", "35-44", "45+"]


def test_without_persons_only_age_bands_and_a_note():
    t = disparity_table(SCORES, LISTS, None, policy())
    assert set(t["attribute"]) == {"age_band"}
    notes = disparity_summary(t)["notes"]
    assert len(notes) == 1 and "No persons table" in notes[0] and "race" in notes[0]


def test_a_missing_column_is_noted_not_invented():
    t = disparity_table(SCORES, LISTS, PERSONS, policy_from_dict({"disparity": {"attributes": ["sex", "race"]}}))
    assert set(t["attribute"]) == {"race"}
    assert any("'sex'" in n for n in disparity_summary(t)["notes"])


def test_listed_people_outside_the_network_and_outside_persons_are_counted():
    lists = {"call_in": pd.DataFrame({"person_id": ["p1", "p99", "ghost"]})}
    t = disparity_table(SCORES, lists, PERSONS, policy(min_listed=0))
    r = t[(t["attribute"] == "race")].set_index("category")
    assert r.loc["B", "listed"] == 2 and r.loc["unknown", "listed"] == 1
    assert r["listed"].sum() == 3 and r["network_count"].sum() == 10


def test_deterministic_whatever_the_input_order():
    t1 = disparity_table(SCORES, LISTS, PERSONS, policy(min_listed=1))
    shuffled = {k: v.iloc[::-1].reset_index(drop=True) for k, v in LISTS.items()}
    t2 = disparity_table(SCORES.sample(frac=1, random_state=3), shuffled, PERSONS.sample(frac=1, random_state=4),
                         policy(min_listed=1))
    pd.testing.assert_frame_equal(t1, t2)


def test_summary_is_json_ready():
    import json
    t = disparity_table(SCORES, LISTS, PERSONS, policy(min_listed=1))
    s = disparity_summary(t)
    assert s["flags"] == len(s["flagged"]) == int((t["flag"] != "").sum()) > 0
    text = json.dumps(s, allow_nan=False)
    assert "NaN" not in text
    assert {"list", "attribute", "category", "flag"} <= set(s["flagged"][0])


def test_on_a_real_run_every_listed_person_is_counted_once_per_attribute(tmp_path):
    import io

    from fdnet.pipeline import compute_run
    data = write_folder(tmp_path / "data")
    res = compute_run(data, policy={"lists": {"custom_notifications": {"min_score": 0},
                                              "service_referrals": {"min_score": 0}}})
    import fdnet
    st = fdnet.study(data)
    lists = {n: pd.read_csv(io.BytesIO(res.outputs[f"{n}.csv"]), dtype=str, keep_default_na=False)
             for n in ("call_in", "custom_notifications", "service_referrals")}
    t = disparity_table(st.scores, lists, st.records.persons, st.policy)
    # the helpers' persons file has sex and birth years but no race or district column
    assert set(t["attribute"]) == {"age_band", "sex"}
    notes = " ".join(disparity_summary(t)["notes"])
    assert "'race'" in notes and "'district'" in notes
    for (lst, attr), g in t.groupby(["list", "attribute"]):
        assert g["listed"].sum() == len(lists[lst])
        assert g["network_count"].sum() == len(st.scores)
        assert g["offending_count"].sum() == int((st.scores["offending"] > 0).sum())
        if len(lists[lst]):
            assert g["listed_share"].sum() == pytest.approx(1.0, abs=1e-5)


# ------------------------------------------------------------------------------------------
# issue 9: the disparity section says whether a list's score uses a demographic attribute
# ------------------------------------------------------------------------------------------

WHY = "Board resolution 2026-07: age weighting approved for a six-month pilot, reviewed quarterly."


def test_default_policy_puts_no_demographic_points_on_enforcement_lists():
    t = disparity_table(SCORES, LISTS, PERSONS, policy(min_listed=2))
    assert COLUMNS[-2:] == ["demographic_points", "justification"]
    assert set(t.loc[t["list"] == "call_in", "demographic_points"]) == {""}
    assert set(t.loc[t["list"] == "service_referrals", "demographic_points"]) == {"age"}   # age informs services
    assert set(t["justification"]) == {""}
    s = disparity_summary(t)
    assert s["demographic_enforcement"] == []
    assert not any("demographic" in n for n in s["notes"])


def test_a_justified_demographic_component_is_named_with_its_justification():
    pol = policy_from_dict({"disparity": {"attributes": ["race", "age_band"]},
                            "components": {"age": {"bins": [25], "points": [6, 0], "justification": WHY,
                                                   "counts_for": ["enforcement", "service"]}}})
    t = disparity_table(SCORES, LISTS, PERSONS, pol)
    ci = t[t["list"] == "call_in"]
    assert set(ci["demographic_points"]) == {"age"} and set(ci["justification"]) == {f"age: {WHY}"}
    assert set(t.loc[t["list"] == "service_referrals", "justification"]) == {""}
    s = disparity_summary(t)
    assert s["demographic_enforcement"] == [{"component": "age", "counts_for": ["enforcement", "service"],
                                             "max_points": 6.0, "justification": WHY}]
    assert any(WHY in n and "up to 6 points" in n for n in s["notes"])


def test_distinct_scores_ids_take_the_identity_positions_the_hash_joins_give():
    # disparity_table skips two hash joins when scores hold each person once: the identity it uses instead
    import pyarrow as pa
    import pyarrow.compute as pc

    from fdnet.lists.disparity import _last_position, _positions
    rng = np.random.default_rng(1)
    for _ in range(300):
        n = int(rng.integers(0, 50))
        net = pa.array(rng.permutation(1000)[:n].astype(str))
        extra = pa.array(rng.integers(0, 1200, size=int(rng.integers(0, 20))).astype(str))
        every = pc.unique(pa.chunked_array([net, extra], type=pa.string()))
        every = every.combine_chunks() if isinstance(every, pa.ChunkedArray) else every
        at = np.arange(len(every))
        assert np.array_equal(np.where(at < n, at, -1), _last_position(every, net))
        assert np.array_equal(np.arange(n), _positions(net, every))


def test_arrow_factorize_of_a_persons_column_is_pandas_factorize_of_the_cleaned_values():
    from fdnet.lists.disparity import _clean_array, _factorize_clean
    rng = np.random.default_rng(3)
    alphabet = ["", " ", "a", "B", " a", "a ", "\x1c", "\x1fb", "\t", "x y", "UNKNOWN", "unknown", "é", None]
    for _ in range(500):
        vals = [alphabet[i] for i in rng.integers(0, len(alphabet), size=int(rng.integers(0, 30)))]
        for s in (pd.Series(vals, dtype="str"), pd.Series(vals, dtype=object)):
            codes, names = _factorize_clean(s)
            want_codes, want_names = pd.factorize(pd.Series(_clean_array(s), dtype=object), sort=False)
            assert codes.tolist() == want_codes.tolist() and list(names) == list(want_names), vals


def test_age_band_codes_are_the_factorized_band_names():
    # disparity_table factorizes the bands' numbers: the same codes and names as factorizing age_bands' text
    from fdnet.lists.disparity import AGE_BANDS, UNKNOWN, age_bands
    rng = np.random.default_rng(0)
    for _ in range(200):
        a = rng.uniform(5, 90, size=int(rng.integers(0, 40)))
        a[rng.random(len(a)) < 0.2] = np.nan
        want_codes, want_names = pd.factorize(pd.Series(age_bands(a), dtype=object), sort=False)
        band = np.select([a < 18, a < 25, a < 35, a < 45, a >= 45], [0, 1, 2, 3, 4], 5)
        codes, seen = pd.factorize(band, sort=False)
        assert codes.tolist() == want_codes.tolist()
        assert list(np.asarray(list(AGE_BANDS[:5]) + [UNKNOWN], dtype=object)[seen]) == list(want_names)
