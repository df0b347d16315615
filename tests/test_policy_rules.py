"""Policy rules of issue 9: no demographic points on enforcement lists without a written
justification, and policy values that cannot lie (strict numbers and booleans, no NaN or infinity,
no YAML aliases or duplicate keys). Each refusal is an exit 2 with a one-paragraph message naming the
key, and nothing written."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from fdnet.cli import main
from fdnet.errors import PolicyError
from fdnet.pipeline import compute_run
from fdnet.policy import (COMPONENT_DOCS, DEMOGRAPHIC_ATTRIBUTES, DEMOGRAPHIC_COMPONENTS,
                                  JUSTIFICATION_MIN_CHARS, Policy, default_policy_yaml, is_demographic, load_policy,
                                  policy_from_dict)
from fdnet.synth import generate_city, write_city
from fdnet.tables import read_csv_table

WHY = ("The county oversight board, resolution 2026-11, approved weighting youth for this six-month pilot; "
       "reviewed each quarter by the city attorney.")
AGE_FOR_ENFORCEMENT = {"bins": [20, 30], "points": [12, 6, 0], "counts_for": ["enforcement", "service"]}


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def refused(tmp_path, capsys, text: str) -> str:
    """`fdnet policy check` on ``text``: exit 2, one paragraph, no traceback; the message."""
    p = write(tmp_path, text)
    assert main(["policy", "check", str(p)]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and "Traceback" not in cap.err and str(p) in cap.err
    assert "\n\n" not in cap.err.strip()
    return cap.err


# ------------------------------------------------------------------------------------------
# demographics and enforcement
# ------------------------------------------------------------------------------------------

def test_default_policy_counts_no_demographic_attribute_for_enforcement():
    p = Policy()
    assert "age" in DEMOGRAPHIC_COMPONENTS
    assert DEMOGRAPHIC_COMPONENTS == {n for n in COMPONENT_DOCS if is_demographic(n)}
    for name in DEMOGRAPHIC_COMPONENTS:
        assert "enforcement" not in p.components[name].counts_for, name
    assert p.components["age"].counts_for == ["service"]
    assert p.demographic_enforcement() == []


@pytest.mark.parametrize("name", ["age", "sex", "race", "ethnicity", "district", "age_band", "district_share"])
def test_every_demographic_attribute_is_covered_by_the_rule(name):
    # any component named after a demographic attribute, now or later, falls under the rule
    assert is_demographic(name)
    assert set(DEMOGRAPHIC_ATTRIBUTES) >= {"age", "sex", "race", "ethnicity", "district"}


@pytest.mark.parametrize("counts_for", [["enforcement"], ["enforcement", "service"]])
def test_age_for_enforcement_without_justification_is_refused(counts_for):
    with pytest.raises(PolicyError) as e:
        policy_from_dict({"components": {"age": {**AGE_FOR_ENFORCEMENT, "counts_for": counts_for}}})
    msg = str(e.value)
    assert "age" in msg and "enforcement" in msg and "justification" in msg and "counts_for: [service]" in msg


@pytest.mark.parametrize("why", ["", "because", "x" * 80, "age " * 20, "Approved by the board."])
def test_a_token_justification_is_refused(why):
    assert len(why.strip()) < JUSTIFICATION_MIN_CHARS or len(set(why.split())) < 6
    with pytest.raises(PolicyError, match="justification of at least 40 characters"):
        policy_from_dict({"components": {"age": {**AGE_FOR_ENFORCEMENT, "justification": why}}})


def test_a_written_justification_is_accepted_and_shown():
    p = policy_from_dict({"components": {"age": {**AGE_FOR_ENFORCEMENT, "justification": WHY}}})
    assert p.components["age"].justification == WHY
    assert p.effective()["components"]["age"]["justification"] == WHY
    assert p.demographic_enforcement() == [{"component": "age", "counts_for": ["enforcement", "service"],
                                            "max_points": 12.0, "justification": WHY}]


def test_a_switched_off_demographic_component_needs_no_justification():
    # `age: {points: 0}` (counts_for defaults to enforcement) gives nobody a point
    p = policy_from_dict({"components": {"age": {"points": 0}}})
    assert p.components["age"].counts_for == ["enforcement"] and p.demographic_enforcement() == []
    with pytest.raises(PolicyError):
        policy_from_dict({"components": {"age": {"points": 0, "missing_points": 3}}})


def test_old_policy_file_with_age_for_enforcement_is_refused_by_the_cli(tmp_path, capsys):
    raw = yaml.safe_load(default_policy_yaml())
    raw["components"]["age"]["counts_for"] = ["enforcement"]
    err = refused(tmp_path, capsys, yaml.safe_dump(raw))
    assert "components age" in err and "demographic" in err


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("city")
    write_city(generate_city(n_people=1500, seed=5), d)
    return d


def test_default_run_gives_no_enforcement_points_for_age(city):
    res = compute_run(city)
    scores = read_csv_table(res.outputs["scores.csv"])
    enf = [c for c in scores.columns if c.startswith("points_")
           and "enforcement" in Policy().components[c[len("points_"):]].counts_for]
    assert "points_age" not in enf and (scores["points_age"].astype(float) > 0).any()   # age informs services
    np.testing.assert_allclose(scores["enforcement_score"].astype(float),
                               scores[enf].astype(float).sum(axis=1), atol=1e-6)
    for line in res.outputs["explanations.jsonl"].decode("utf-8").splitlines():
        e = json.loads(line)
        if set(e["lists"]) & {"call_in", "custom_notifications"}:
            for c in e["components"]:
                if c["name"] == "age":
                    assert set(c.get("counts_for", [])) <= {"service_referrals"}, e["person_id"]
    for f in ("call_in.csv", "custom_notifications.csv"):
        reasons = " ".join(read_csv_table(res.outputs[f])["reasons"])
        assert "Age" not in reasons and " age " not in reasons.lower().replace("aged", ""), f
    assert res.manifest["disparity"]["demographic_enforcement"] == []
    json.dumps(res.manifest, allow_nan=False)            # valid JSON: no NaN or infinity anywhere


def test_a_justified_run_shows_the_justification_in_the_manifest_and_disparity(city):
    pol = policy_from_dict({"components": {"age": {**AGE_FOR_ENFORCEMENT, "justification": WHY}}})
    res = compute_run(city, policy=pol)
    m = res.manifest
    assert m["policy"]["components"]["age"]["justification"] == WHY
    d = m["disparity"]["demographic_enforcement"]
    assert [x["component"] for x in d] == ["age"] and d[0]["justification"] == WHY
    assert any(WHY in n for n in m["disparity"]["notes"])
    t = read_csv_table(res.outputs["disparity.csv"])
    enf = t[t["list"].isin(["call_in", "custom_notifications"])]
    assert len(enf) and set(enf["demographic_points"]) == {"age"} and set(enf["justification"]) == {f"age: {WHY}"}
    scores = read_csv_table(res.outputs["scores.csv"])
    young = scores["age"].astype(float) < 20
    assert (scores.loc[young, "points_age"].astype(float) == 12).all()


# ------------------------------------------------------------------------------------------
# values that cannot lie
# ------------------------------------------------------------------------------------------

def test_nan_for_a_whole_number_is_refused(tmp_path, capsys):
    err = refused(tmp_path, capsys, "window_days: .nan\n")
    assert "window_days: must be a whole number, not .nan" in err


@pytest.mark.parametrize("text, key", [
    ("half_life_days: .inf\n", "half_life_days"),
    ("calibration: {intercept: -.inf}\n", "calibration.intercept"),
    ("components: {degree: {points: .nan}}\n", "components.degree.points"),
    ("components: {degree: {bins: [1, .inf], points: [0, 1, 2]}}\n", "components.degree.bins.1"),
    ("components: {degree: {points: 1, cap: .nan}}\n", "components.degree.cap"),
    ("analytics: {betweenness_exact_work: .inf}\n", "analytics.betweenness_exact_work"),
    ("disparity: {ratio_high: .inf}\n", "disparity.ratio_high"),
])
def test_nan_and_infinity_are_refused(tmp_path, capsys, text, key):
    err = refused(tmp_path, capsys, text)
    assert key in err and "finite" in err


@pytest.mark.parametrize("text, key, words", [
    ("lists: {call_in: {size: true}}\n", "lists.call_in.size", "whole number, not true"),
    ("lists: {call_in: {size: '48'}}\n", "lists.call_in.size", "whole number, not '48'"),
    ("lists: {call_in: {size: 48.0}}\n", "lists.call_in.size", "whole number, not 48.0"),
    ("components: {degree: {points: '5'}}\n", "components.degree.points", "number"),
    ("components: {degree: {points: true}}\n", "components.degree.points", "number"),
    ("window_days: '30'\n", "window_days", "whole number"),
    ("contagion: {enabled: 'yes please'}\n", "contagion.enabled", "true or false"),
    ("contagion: {enabled: 1}\n", "contagion.enabled", "true or false"),
    ("calibration: {slope: false}\n", "calibration.slope", "number"),
    ("components: {degree: {points: 1, justification: 5}}\n", "components.degree.justification", "text"),
])
def test_booleans_and_strings_are_not_coerced_into_numbers(tmp_path, capsys, text, key, words):
    err = refused(tmp_path, capsys, text)
    assert key in err and words in err


def test_integers_are_accepted_where_decimals_are_expected():
    p = policy_from_dict({"half_life_days": 200, "calibration": {"intercept": -9}, "components":
                          {"degree": {"bins": [1, 3], "points": [0, 4, 9]}}})
    assert p.half_life_days == 200.0 and isinstance(p.half_life_days, float)
    assert p.components["degree"].points == [0.0, 4.0, 9.0]
    json.dumps(p.effective(), allow_nan=False)


def test_yaml_alias_bomb_is_refused_quickly_and_briefly(tmp_path, capsys):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 12):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    err = refused(tmp_path, capsys, "\n".join(lines) + "\n")
    assert "aliases" in err and "line 2" in err and len(err) < 400


def test_a_single_alias_is_refused_with_its_place(tmp_path, capsys):
    err = refused(tmp_path, capsys, "features: &f {recent_days: 90}\nwindow_days: 400\nx: *f\n")
    assert "aliases (*f)" in err and "line 3, column 4" in err


def test_a_duplicate_key_is_refused(tmp_path, capsys):
    err = refused(tmp_path, capsys, "window_days: 400\nretention_days: 2000\nwindow_days: 30\n")
    assert "'window_days' is given twice" in err and "line 3" in err and "first on line 1" in err


def test_a_run_with_a_bad_policy_writes_nothing(tmp_path, capsys, city):
    p = write(tmp_path, "lists: {custom_notifications: {min_score: .nan}}\n")
    out = tmp_path / "run"
    assert main(["run", str(city), "--out", str(out), "--policy", str(p), "-q"]) == 2
    err = capsys.readouterr().err
    assert "lists.custom_notifications.min_score" in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


def test_default_policy_round_trips_through_its_own_yaml(tmp_path):
    p = write(tmp_path, default_policy_yaml())
    assert load_policy(p).effective() == Policy().effective()
    assert not any(isinstance(v, float) and not math.isfinite(v)
                   for v in json.loads(json.dumps(Policy().effective())).values())


@pytest.mark.parametrize("text, want", [
    ("groups: {resolution: true}\n", "groups.resolution: must be a finite number or one of 'auto', not true"),
    ("groups: {resolution: .nan}\n", "groups.resolution: must be a finite number or one of 'auto', not .nan"),
    ("components: {degree: {bins: [1], points: [0, 'a']}}\n", "components.degree.points.1: must be a number, not 'a'"),
    ("components: {degree: {points: '5'}}\n", "components.degree.points: must be a finite number or a list, not '5'"),
])
def test_a_key_with_several_forms_is_reported_once_in_words(tmp_path, capsys, text, want):
    err = refused(tmp_path, capsys, text)
    assert want in err and "literal[" not in err and ".float" not in err
