"""Entity resolution (CONTRACT.md section 5) on a synthetic city where a fifth of the people carry a second
agency's ID with a misspelt name or a wrong birth date (fdnet.synth.resolution)."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from fdnet.pipeline import compute_run
from fdnet.policy import policy_from_dict
from fdnet.resolution.cluster import entities
from fdnet.resolution.evaluate import cluster_f, pairwise
from fdnet.synth import generate_city, write_city
from fdnet.synth.resolution import add_identities

ON = {"resolution": {"enabled": True}}
ENFORCEMENT = ("call_in", "custom_notifications")


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    d = tmp_path_factory.mktemp("res") / "city"
    c = add_identities(generate_city(6000, seed=11), duplicates=0.2, seed=5)
    write_city(c, d)
    return d, c.extra_truth["identities"].set_index("person_id")["true_person"]


@pytest.fixture(scope="module")
def resolved(city):
    return compute_run(city[0], policy=ON)


def _table(result, name):
    from fdnet.tables import read_csv_table
    return read_csv_table(result.outputs[name])


def test_precision_and_recall_against_the_truth(resolved, city):
    _, truth = city
    res = resolved.run.resolution.table
    found = pd.Series(res["entity_id"].to_numpy(), index=res["person_id"].to_numpy())
    m = pairwise(found, truth)
    assert m["true_pairs"] == 1200
    assert m["precision"] >= 0.97, m
    assert m["recall"] >= 0.90, m
    assert cluster_f(found, truth) >= 0.95


def test_precision_rises_and_recall_falls_with_the_threshold(resolved, city):
    _, truth = city
    r = resolved.run.resolution
    ids = r.table["person_id"].to_numpy(dtype=object)
    prec, rec = [], []
    for high in (0.5, 0.8, 0.9, 0.95, 0.99):
        e = entities(ids, r.linkage.pairs, high=high)
        m = pairwise(pd.Series(e["entity"].to_numpy(), index=ids), truth)
        prec.append(m["precision"])
        rec.append(m["recall"])
    assert rec == sorted(rec, reverse=True) and rec[0] > rec[-1]
    assert prec[-1] >= prec[0] and min(prec) >= 0.9


def test_every_input_id_is_in_resolution_csv_and_every_output_names_entities(resolved, city):
    d, truth = city
    res = _table(resolved, "resolution.csv")
    inv = pd.read_csv(d / "involvements.csv", dtype=str)
    persons = pd.read_csv(d / "persons.csv", dtype=str)
    every = set(inv["person_id"]) | set(persons["person_id"])
    assert set(res["person_id"]) == every and res["person_id"].is_unique
    assert list(res.columns[:3]) == ["person_id", "source", "entity_id"]
    merged_away = set(res.loc[res["person_id"] != res["entity_id"], "person_id"])
    assert merged_away
    entity_ids = set(res["entity_id"])
    for name in ("scores.csv", "groups.csv", "call_in.csv", "custom_notifications.csv", "service_referrals.csv"):
        ids = set(_table(resolved, name)["person_id"])
        assert ids <= entity_ids and not ids & merged_away, name
    edges = _table(resolved, "edges.csv")
    assert not (set(edges["person_a"]) | set(edges["person_b"])) & merged_away
    # the entity ID is the smallest person_id of its records
    assert (res.groupby("entity_id")["person_id"].min() == res.groupby("entity_id")["person_id"].first().index).all()
    assert resolved.manifest["resolution"]["records_merged"] == int((res["entity_records"].astype(int) > 1).sum())


def test_a_merged_entity_keeps_the_involvements_of_all_its_records(resolved, city):
    d, _ = city
    res = resolved.run.resolution.table
    inv = pd.read_csv(d / "involvements.csv", dtype=str)
    emap = dict(zip(res["person_id"], res["entity_id"]))
    inv["entity"] = inv["person_id"].map(emap)
    kept = resolved.run.records.involvements
    want = inv.drop_duplicates(["incident_id", "entity", "role"])
    assert len(kept) == len(want)
    assert set(zip(kept["incident_id"], kept["person_id"])) == set(zip(want["incident_id"], want["entity"]))


def test_review_band_pairs_are_never_merged_and_are_listed_for_review(resolved):
    r = resolved.run.resolution
    pol = resolved.run.policy.resolution
    review = _table(resolved, "resolution_review.csv")
    assert len(review) > 0
    p = review["match_probability"].astype(float)
    assert ((p >= pol.review) & (p < pol.high)).all()
    assert (review["entity_a"] != review["entity_b"]).all()
    assert review["waterfall"].str.startswith("prior ").all()
    assert {"first_name_a", "first_name_b", "birth_date_a", "birth_date_b"} <= set(review.columns)
    # every join inside an entity is a link at or above `high` (or a must-link decision)
    j = r.joins
    assert ((j["match_probability"] >= pol.high) | (j["joined_by"] == "must_link")).all()


def test_a_doubtful_link_never_puts_anybody_on_an_enforcement_list(resolved):
    r = resolved.run.resolution
    pol = resolved.run.policy.resolution
    res = r.table.set_index("person_id")
    for name in ENFORCEMENT:
        for pid in resolved.run.lists[name]["person_id"]:
            members = r.members(pid)
            joined = members[members["joined_by"] != ""]
            assert (joined["match_probability"] >= pol.high).all() or (joined["joined_by"] == "must_link").all()
    # and the review-band records of a listed entity were not merged into it
    rv = r.review
    listed = set().union(*(set(resolved.run.lists[n]["person_id"]) for n in ENFORCEMENT))
    for a, b in zip(rv["person_a"], rv["person_b"]):
        assert res.at[a, "entity_id"] != res.at[b, "entity_id"]
    assert listed


def test_explanations_show_the_records_and_the_waterfall(resolved):
    lines = [json.loads(x) for x in resolved.outputs["explanations.jsonl"].decode().splitlines()]
    with_entity = [x for x in lines if "entity" in x]
    assert with_entity, "no listed entity of several records"
    e = with_entity[0]["entity"]
    assert len(e["records"]) >= 2 and e["links"]
    link = e["links"][0]
    assert link["waterfall"][0]["comparison"] == "prior"
    total = sum(s["match_weight"] for s in link["waterfall"])
    assert abs(total - link["match_weight"]) < 0.01


def test_waterfall_levels_are_splinks_own_comparison_levels(resolved):
    """Each step's level is the label Splink gave the level its comparison vector chose (not inferred from the
    weight): equal folded first names are "exact", a swapped day and month is "day and month swapped"."""
    from fdnet.resolution.prepare import comparable
    r = resolved.run.resolution
    p = r.linkage.pairs
    tab = comparable(r.persons.reset_index()).set_index("unique_id")
    splink_labels = {lv["label_for_charts"] for comp in r.linkage.model["comparisons"]
                     for lv in comp["comparison_levels"]}
    for c in r.linkage.comparisons:
        labels = r.linkage.level_labels(c, p[f"gamma_{c}"].to_numpy())
        assert set(labels) - {"missing"} <= splink_labels, c
        a = tab[c].reindex(p["person_a"]).to_numpy(dtype=object)
        b = tab[c].reindex(p["person_b"]).to_numpy(dtype=object)
        missing = pd.isna(a) | pd.isna(b)
        assert (labels[missing] == "missing").all(), c
        same = ~missing & (a == b)
        assert same.any() and (labels[same] == "exact").all(), c
    a = pd.Series(tab["birth_date"].reindex(p["person_a"]).to_numpy(dtype=object), dtype=object)
    b = pd.Series(tab["birth_date"].reindex(p["person_b"]).to_numpy(dtype=object), dtype=object)
    swapped = (a.notna() & b.notna() & (a != b) & (a.str[:4] == b.str[:4]) & (a.str[5:7] == b.str[8:10])
               & (a.str[8:10] == b.str[5:7])).to_numpy()
    assert swapped.any()
    assert (r.linkage.level_labels("birth_date", p["gamma_birth_date"].to_numpy())[swapped]
            == "day and month swapped").all()
    steps = r.linkage.waterfall(p.iloc[:50])
    assert all([s["comparison"] for s in w] == ["prior"] + r.linkage.comparisons for w in steps)


def test_same_inputs_give_byte_identical_outputs(resolved, city):
    again = compute_run(city[0], policy=ON)
    for name in ("resolution.csv", "resolution_review.csv", "call_in.csv", "scores.csv", "explanations.jsonl"):
        assert again.outputs[name] == resolved.outputs[name], name


def test_resolution_off_ignores_the_identifying_columns(city, tmp_path):
    d, _ = city
    plain = compute_run(d)
    assert "resolution.csv" not in plain.outputs and "resolution" not in plain.manifest
    # the same folder with no names or sources gives the very same lists (birth_date was read before: ages)
    import shutil
    d2 = tmp_path / "bare"
    shutil.copytree(d, d2)
    p = pd.read_csv(d2 / "persons.csv", dtype=str, keep_default_na=False)
    p.drop(columns=["first_name", "middle_name", "last_name", "source"]).to_csv(d2 / "persons.csv",
                                                                                            index=False)
    bare = compute_run(d2)
    for name in ("call_in.csv", "custom_notifications.csv", "service_referrals.csv", "edges.csv"):
        assert bare.outputs[name] == plain.outputs[name], name
    assert set(_table(plain, "scores.csv")["person_id"]) & {x for x in p["person_id"] if x.startswith("Q")}


def _decide(d, rows, tmp_path, name="dec"):
    import shutil
    d2 = tmp_path / name
    shutil.copytree(d, d2)
    pd.DataFrame(rows, columns=["person_id_a", "person_id_b", "decision", "reviewer", "date", "reason"]) \
        .to_csv(d2 / "resolution_decisions.csv", index=False)
    return d2


def test_decisions_split_merge_and_persist(resolved, city, tmp_path):
    d, _ = city
    res = resolved.run.resolution.table
    two = res[res["entity_records"] == 2]
    a = two["entity_id"].iloc[0]
    b = two.loc[(two["entity_id"] == a) & (two["person_id"] != a), "person_id"].iloc[0]
    rv = resolved.run.resolution.review.iloc[0]
    d2 = _decide(d, [[a, b, "cannot_link", "ana", "2025-01-02", "different mothers' names"],
                     [rv["person_a"], rv["person_b"], "must_link", "ana", "2025-01-02", "same tattoo"]], tmp_path)
    r2 = compute_run(d2, policy=ON)
    t2 = r2.run.resolution.table.set_index("person_id")
    assert t2.at[a, "entity_id"] != t2.at[b, "entity_id"]
    assert b in t2.at[a, "cut_by_decision"].split(";")
    assert t2.at[rv["person_a"], "entity_id"] == t2.at[rv["person_b"], "entity_id"]
    assert "must_link" in set(t2.loc[[rv["person_a"], rv["person_b"]], "joined_by"])
    rv2 = r2.run.resolution.review
    assert not ((rv2["person_a"] == rv["person_a"]) & (rv2["person_b"] == rv["person_b"])).any()
    entry = r2.manifest["inputs"]["resolution_decisions"]
    assert entry["rows"] == {"read": 2, "used": 2, "rejected": 0} and len(entry["sha256"]) == 64
    assert r2.manifest["resolution"]["decisions"]["must_link"] == 1


def test_a_cannot_link_cuts_the_weakest_link_of_a_chain():
    ids = np.array(["A", "B", "C", "D"], dtype=object)
    links = pd.DataFrame({"person_a": ["A", "B", "C"], "person_b": ["B", "C", "D"],
                          "match_probability": [0.999, 0.95, 0.999], "match_weight": [10.0, 4.2, 11.0]})
    e = entities(ids, links, high=0.9, cannot=pd.DataFrame({"person_id_a": ["A"], "person_id_b": ["D"]}))
    assert e["entity"].tolist() == ["A", "A", "C", "C"]
    assert e["cut"].tolist() == ["", "C", "B", ""]


def test_contradicting_decisions_are_bad_input(city, tmp_path):
    from fdnet.errors import InputError
    ids = np.array(["A", "B", "C"], dtype=object)
    empty = pd.DataFrame({"person_a": [], "person_b": [], "match_probability": [], "match_weight": []})
    with pytest.raises(InputError, match="cannot be one person"):
        entities(ids, empty, high=0.9, must=pd.DataFrame({"person_id_a": ["A", "B"], "person_id_b": ["B", "C"]}),
                 cannot=pd.DataFrame({"person_id_a": ["A"], "person_id_b": ["C"]}))


@pytest.mark.parametrize("row, message", [
    (["P0000001", "P0000002", "maybe"], "is not must_link or cannot_link"),
    (["P0000001", "", "must_link"], "person_id_b is empty"),
    (["P0000001", "P0000001", "must_link"], "the same record"),
])
def test_a_bad_decision_is_exit_2_naming_the_line(city, tmp_path, row, message):
    d, _ = city
    d2 = _decide(d, [row + ["ana", "2025-01-02", ""]], tmp_path)
    pol = tmp_path / "p.yaml"
    pol.write_text("resolution:\n  enabled: true\n")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "fdnet", "run", str(d2), "--out", str(out), "--policy", str(pol), "-q"],
                       capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert "resolution_decisions.csv, line 2" in r.stderr and message in r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists() or not any(out.iterdir())


def test_resolution_without_names_is_bad_input(tmp_path):
    from fdnet.errors import InputError
    from fdnet.pipeline import compute_run as cr
    d = tmp_path / "c"
    write_city(generate_city(800, seed=1), d)
    with pytest.raises(InputError, match="first_name"):
        cr(d, policy=ON)


def test_the_policy_refuses_a_review_band_above_the_high_threshold():
    from fdnet.errors import PolicyError
    with pytest.raises((PolicyError, ValueError)):
        policy_from_dict({"resolution": {"high": 0.6, "review": 0.8}})
    with pytest.raises((PolicyError, ValueError)):
        policy_from_dict({"resolution": {"blocking_rules": [["shoe_size"]]}})
