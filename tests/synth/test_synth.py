"""Tests of the synthetic city (fdnet.synth): formats, integrity, and the model's mechanisms.

Most tests share one 20,000-person city (seed 0, generated once per module). The
mechanism tests read only the *records* (what an analyst sees), except where they
compare against the truth files, as the engine's own tests will.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from fdnet.synth import (OFFENSES, CityParams, SynthCity, generate_city, generate_city_with,
                         write_city)

N = 20_000
OFFENDING = ["offender", "suspect", "arrestee"]
COLUMNS = {
    "incidents": ["incident_id", "date", "offense", "nibrs_code", "gun", "fatal", "violent",
                  "district", "lat", "lon"],
    "involvements": ["incident_id", "person_id", "role"],
    "persons": ["person_id", "birth_year", "sex", "race", "ethnicity", "district", "supervision",
                "supervision_end", "deceased", "incarcerated"],
    "groups": ["person_id", "group", "source", "date"],
    "group_relations": ["group_a", "group_b", "relation", "date", "source"],
    "truth_membership": ["person_id", "group"],
    "truth_future": ["incident_id", "date", "person_id", "role"],
}
FRAMES = list(COLUMNS)
NO_CONTAGION = replace(CityParams(), alpha_cooffender=0.0, alpha_group=0.0,
                       alpha_retaliation=0.0, alpha_shooter=0.0)


@pytest.fixture(scope="module")
def city() -> SynthCity:
    return generate_city(N, seed=0)


@pytest.fixture(scope="module")
def quiet_city() -> SynthCity:
    """The same city with contagion switched off (base hazard only)."""
    return generate_city_with(NO_CONTAGION, N, seed=0)


# ---- helpers reading the records as an analyst would -----------------------------------

def _dated(city: SynthCity) -> pd.DataFrame:
    dates = pd.to_datetime(city.incidents.set_index("incident_id")["date"])
    inv = city.involvements
    return inv.assign(day=inv["incident_id"].map(dates).to_numpy())


def _shootings(city: SynthCity) -> pd.DataFrame:
    inc, inv = city.incidents, city.involvements
    with_victim = inv.loc[inv["role"] == "victim", "incident_id"].unique()
    return inc[(inc["gun"] == "true") & inc["incident_id"].isin(with_victim)]


def _shooting_victims(city: SynthCity, inv: pd.DataFrame) -> pd.DataFrame:
    sh = _shootings(city)["incident_id"]
    v = inv[(inv["role"] == "victim") & inv["incident_id"].isin(sh)]
    return v.rename(columns={"person_id": "p", "incident_id": "sid", "day": "s"})[["p", "sid", "s"]]


def _cooffender_ties(inv: pd.DataFrame) -> pd.DataFrame:
    off = inv[inv["role"].isin(OFFENDING)][["incident_id", "person_id", "day"]].drop_duplicates(
        ["incident_id", "person_id"])
    pairs = off.merge(off, on="incident_id")
    pairs = pairs[pairs["person_id_x"] != pairs["person_id_y"]]
    return (pairs.groupby(["person_id_x", "person_id_y"], as_index=False)["day_x"].min()
            .rename(columns={"person_id_x": "a", "person_id_y": "b", "day_x": "tie"}))


def _exposure(city: SynthCity, window: int = 180) -> dict:
    """Shooting victimisation within ``window`` days after a co-offender was shot, the
    base rate among offenders, and the time clustering of co-offenders' shootings."""
    inv = _dated(city)
    sv = _shooting_victims(city, inv)
    ties = _cooffender_ties(inv)
    start, end = inv["day"].min(), pd.Timestamp(city.end_date)
    W = pd.Timedelta(days=window)
    # exposures: co-offender (tie on record by then) shot at t, with a full window after
    ex = sv.merge(ties, left_on="p", right_on="a")
    ex = ex[(ex["tie"] <= ex["s"]) & (ex["s"] + W <= end)]
    ex = ex[["b", "s", "sid"]].rename(columns={"b": "p", "s": "t", "sid": "src"})
    ex = ex.drop_duplicates(["p", "t"])
    hit = ex.merge(sv, on="p")
    hit = hit[(hit["s"] > hit["t"]) & (hit["s"] <= hit["t"] + W) & (hit["sid"] != hit["src"])]
    post = hit.drop_duplicates(["p", "t"]).shape[0] / len(ex)
    offenders = inv.loc[inv["role"].isin(OFFENDING), "person_id"].unique()
    days = (end - start).days + 1
    base = sv.loc[sv["p"].isin(offenders), "p"].nunique() / len(offenders) * window / days
    # co-offender pairs who were both shot (in different incidents): how close in time?
    both = ties[ties["a"] < ties["b"]].merge(sv, left_on="a", right_on="p").merge(
        sv, left_on="b", right_on="p", suffixes=("1", "2"))
    both = both[both["sid1"] != both["sid2"]]
    gap = (both["s1"] - both["s2"]).abs().dt.days
    null = 1 - (1 - window / days) ** 2      # independent uniform dates
    return {"post": post, "n_exposed": len(ex), "base": base,
            "near": float((gap <= window).mean()), "n_pairs": len(both), "near_null": null}


# ---- formats ------------------------------------------------------------------------------

def test_contract_columns_and_types(city):
    for name, cols in COLUMNS.items():
        assert list(getattr(city, name).columns) == cols, name
    assert set(city.tables()) == {"incidents", "involvements", "persons", "groups",
                                  "group_relations"}
    inc, per = city.incidents, city.persons
    for col in ("gun", "fatal", "violent"):
        assert set(inc[col]) <= {"true", "false"}
    for col in ("deceased", "incarcerated"):
        assert set(per[col]) <= {"true", "false"}
    assert set(city.involvements["role"]) == {"offender", "suspect", "arrestee", "victim",
                                              "witness", "other"}
    assert set(per["supervision"]) == {"none", "probation", "parole", "pretrial"}
    assert set(per["sex"]) <= {"M", "F", "U"}
    assert set(city.group_relations["relation"]) == {"conflict", "alliance"}
    assert set(city.truth_future["role"]) == {"victim", "suspect"}
    assert pd.api.types.is_float_dtype(inc["lat"])
    assert pd.api.types.is_integer_dtype(per["birth_year"])


def test_ids_dates_and_order(city):
    inc, inv, per = city.incidents, city.involvements, city.persons
    assert inc["incident_id"].str.fullmatch(r"I\d{8}").all()
    assert per["person_id"].str.fullmatch(r"P\d{7}").all()
    assert city.end_date == "2025-12-30"
    assert inc["date"].min() >= "2023-01-01" and inc["date"].max() <= city.end_date
    assert inc["date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    for frame in (city.groups, city.group_relations):
        assert frame["date"].between("2023-01-01", city.end_date).all()
    # stable, documented orders
    assert inc.equals(inc.sort_values(["date", "incident_id"]).reset_index(drop=True))
    assert inv.equals(inv.sort_values(["incident_id", "person_id", "role"]).reset_index(drop=True))
    assert per["person_id"].is_monotonic_increasing
    # IDs are not in group or creation order: the first hundred people are a mix
    first = city.truth_membership["group"].iloc[:100]
    assert 0 < (first != "").sum() < 40


def test_referential_integrity(city):
    inc, inv, per = city.incidents, city.involvements, city.persons
    assert inc["incident_id"].is_unique and per["person_id"].is_unique
    assert not inv.duplicated(["incident_id", "person_id", "role"]).any()
    assert inv["incident_id"].isin(inc["incident_id"]).all()
    assert inv["person_id"].isin(per["person_id"]).all()
    assert inc["incident_id"].isin(inv["incident_id"]).all()        # no empty incidents
    assert per["person_id"].isin(inv["person_id"]).all()            # everyone is on record
    assert city.groups["person_id"].isin(per["person_id"]).all()
    assert not city.groups.duplicated(["person_id", "group"]).any()
    truth = city.truth_membership
    assert truth["person_id"].equals(per["person_id"])
    true_groups = set(truth["group"]) - {""}
    assert set(city.groups["group"]) <= true_groups
    rel = city.group_relations
    assert set(rel["group_a"]) | set(rel["group_b"]) <= true_groups
    assert (rel["group_a"] < rel["group_b"]).all()
    assert not rel.duplicated(["group_a", "group_b"]).any()
    fut = city.truth_future
    assert not fut["incident_id"].isin(inc["incident_id"]).any()
    assert fut["person_id"].isin(per["person_id"]).all()


def test_determinism():
    a, b = generate_city(3000, seed=11), generate_city(3000, seed=11)
    c = generate_city(3000, seed=12)
    for name in FRAMES:
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert a.end_date == b.end_date and a.stats == b.stats
    assert not a.involvements.equals(c.involvements)
    assert not a.persons.equals(c.persons)
    assert not a.truth_membership["group"].equals(c.truth_membership["group"])


def test_size_and_period_arguments():
    c = generate_city(2000, seed=3, start="2020-07-01", days=365, horizon_days=90)
    assert c.end_date == "2021-06-30"
    assert c.incidents["date"].between("2020-07-01", "2021-06-30").all()
    assert len(c.persons) == 2000
    # ~4 rows per person per 1,095 days, scaled to the period
    assert 1.0 < len(c.involvements) / 2000 < 1.9
    if len(c.truth_future):
        assert c.truth_future["date"].between("2021-07-01", "2021-09-28").all()
    with pytest.raises(ValueError):
        generate_city(10)


# ---- the model's mechanisms ----------------------------------------------------------------

def test_rows_per_person_and_roles(city):
    inv = city.involvements
    assert 3.6 < len(inv) / N < 4.4
    per_person = inv["person_id"].value_counts()
    assert per_person.quantile(0.99) >= 15          # a few very active people
    assert (per_person == 1).mean() > 0.2           # many appear once
    multi = inv.groupby(["incident_id", "person_id"]).size()
    assert 0 < (multi > 1).mean() < 0.03            # several roles in one incident: rare
    shares = inv["role"].value_counts(normalize=True)
    assert shares[["offender", "suspect", "arrestee"]].sum() > 0.35
    assert shares["witness"] > 0.05 and shares["other"] > 0.01


def test_offense_mix_and_flags(city):
    inc = city.incidents
    by_code = {o.code: o for o in OFFENSES}
    names = dict(zip(inc["nibrs_code"], inc["offense"]))
    assert names["09A"] == "Murder & Nonnegligent Manslaughter"
    assert names["13A"] == "Aggravated Assault"
    for code, o in by_code.items():
        assert names[code] == o.name
    assert inc.groupby("nibrs_code")["offense"].nunique().eq(1).all()
    violent = inc.groupby("nibrs_code")["violent"].agg(set)
    for code in ("09A", "13A", "13B", "13C", "120"):
        assert violent[code] == {"true"}
    for code in ("35A", "220", "240", "520", "23H", "290"):
        assert violent[code] == {"false"}
    share = inc["nibrs_code"].value_counts(normalize=True)
    assert 0.15 < share["13B"] < 0.23 and 0.13 < share["35A"] < 0.21
    assert (inc.loc[inc["nibrs_code"] == "520", "gun"] == "true").all()
    # 1-5 offenders per incident
    k = city.involvements[city.involvements["role"].isin(OFFENDING)].drop_duplicates(
        ["incident_id", "person_id"]).groupby("incident_id").size()
    assert k.max() <= 6 and (k == 1).mean() > 0.5 and (k >= 3).sum() > 100


def test_cooffending_is_mostly_within_groups(city):
    inv = _dated(city)
    ties = _cooffender_ties(inv)
    ties = ties[ties["a"] < ties["b"]]
    g = city.truth_membership.set_index("person_id")["group"]
    ga, gb = ties["a"].map(g), ties["b"].map(g)
    with_member = (ga != "") | (gb != "")
    same = (ga == gb) & (ga != "")
    assert same[with_member].mean() > 0.5            # members offend mostly with their group
    assert ((ga != gb) & (ga != "") & (gb != "")).sum() > 0   # some cross-group
    assert ((ga != "") & (gb == "")).sum() > 0                 # some with non-members
    # territories: a group's incidents cluster in its home district
    grp_inc = inv[inv["role"].isin(OFFENDING)].assign(g=inv["person_id"].map(g))
    grp_inc = grp_inc[grp_inc["g"] != ""].merge(city.incidents[["incident_id", "district"]])
    top = grp_inc.groupby("g")["district"].agg(lambda s: s.value_counts(normalize=True).iloc[0])
    assert top.median() > 0.4


def test_every_shooting_has_a_victim_and_a_gun(city):
    inv = city.involvements
    sh = _shootings(city)
    assert len(sh) > 100
    assert set(sh["nibrs_code"]) == {"13A", "09A"} and (sh["violent"] == "true").all()
    fatal = city.incidents[city.incidents["fatal"] == "true"]
    assert fatal["incident_id"].isin(sh["incident_id"]).all()   # fatal -> a shooting here
    assert (fatal["nibrs_code"] == "09A").all()
    assert 0.08 < len(fatal) / len(sh) < 0.35
    roles = inv[inv["incident_id"].isin(sh["incident_id"])]["role"]
    assert "offender" not in set(roles)                          # suspects: suspect/arrestee
    with_suspect = inv[inv["incident_id"].isin(sh["incident_id"])
                       & inv["role"].isin(["suspect", "arrestee"])]["incident_id"].nunique()
    assert 0.2 < with_suspect / len(sh) < 0.6
    # victim-offender overlap: most shooting victims have an offending record
    sv = inv[inv["incident_id"].isin(sh["incident_id"]) & (inv["role"] == "victim")]
    offenders = set(inv.loc[inv["role"].isin(OFFENDING), "person_id"])
    assert sv["person_id"].isin(offenders).mean() > 0.6


def test_deaths_and_detentions_end_records(city):
    inv = _dated(city)
    per = city.persons
    dead = set(per.loc[per["deceased"] == "true", "person_id"])
    fatal = city.incidents.loc[city.incidents["fatal"] == "true", "incident_id"]
    killed = inv[inv["incident_id"].isin(fatal) & (inv["role"] == "victim")
                 & inv["person_id"].isin(dead)]
    died = killed.groupby("person_id")["day"].max()
    assert len(died) >= 0.8 * fatal.nunique()        # every fatal shooting killed someone
    after = inv[inv["person_id"].isin(died.index)]
    assert not (after["day"] > after["person_id"].map(died)).any()
    fut = city.truth_future
    jailed = set(per.loc[per["incarcerated"] == "true", "person_id"])
    assert not fut["person_id"].isin(dead | jailed).any()
    assert not (per["deceased"].eq("true") & per["incarcerated"].eq("true")).any()
    assert 0 < len(jailed) < 0.05 * N and 0 < len(dead) < 0.02 * N


def test_people(city):
    per = city.persons.merge(city.truth_membership)
    member = per["group"] != ""
    assert 0.08 < member.mean() < 0.12
    age = 2025 - per["birth_year"]
    assert age[member].between(15, 40).mean() > 0.85
    assert age[member].median() < age[~member].median()
    assert (per.loc[member, "sex"] == "M").mean() > 0.85
    sup = per["supervision"] != "none"
    assert 0.03 < sup.mean() < 0.25                   # a minority
    assert (per.loc[sup, "supervision_end"] > city.end_date).all()
    assert (per.loc[~sup, "supervision_end"] == "").all()
    n_off = city.involvements[city.involvements["role"].isin(OFFENDING)]["person_id"].value_counts()
    frequent = per["person_id"].map(n_off).fillna(0) >= 5
    assert sup[frequent].mean() > 3 * sup[~frequent].mean()
    assert set(per["race"]) >= {"W", "B", "A"} and set(per["ethnicity"]) >= {"H", "N"}


def test_contagion_after_a_cooffender_is_shot(city, quiet_city):
    e = _exposure(city)
    # the rate of being shot within 180 days after a co-offender was shot, against the
    # base rate of offenders over any 180 days
    assert e["n_exposed"] > 300
    assert e["post"] > 5 * e["base"]
    # co-offenders' shootings cluster in time (null: independent dates, ~0.30)
    assert e["n_pairs"] > 50
    assert e["near"] > e["near_null"] + 0.08
    # and much of it is the contagion: part of the excess is heterogeneity (active people
    # have active co-offenders), but with contagion switched off it falls sharply
    q = _exposure(quiet_city)
    assert e["post"] > 1.5 * q["post"] and e["near"] > q["near"]
    assert city.stats["contagion_share"] > 0.4 and quiet_city.stats["contagion_share"] == 0


def test_feuding_groups_shoot_each_other(city):
    inv = city.involvements
    sh = _shootings(city)["incident_id"]
    g = city.truth_membership.set_index("person_id")["group"]
    rows = inv[inv["incident_id"].isin(sh)].assign(g=lambda d: d["person_id"].map(g))
    vic = rows[rows["role"] == "victim"][["incident_id", "g"]]
    sus = rows[rows["role"].isin(["suspect", "arrestee"])][["incident_id", "g"]]
    pairs = vic.merge(sus, on="incident_id", suffixes=("_v", "_s"))
    pairs = pairs[(pairs["g_v"] != "") & (pairs["g_s"] != "") & (pairs["g_v"] != pairs["g_s"])]
    rel = city.group_relations
    feuds = set(map(frozenset, rel.loc[rel["relation"] == "conflict", ["group_a", "group_b"]]
                    .itertuples(index=False)))
    listed = np.mean([frozenset(p) in feuds for p in pairs[["g_v", "g_s"]].itertuples(index=False)])
    n_groups = g[g != ""].nunique()
    chance = len(feuds) / (n_groups * (n_groups - 1) / 2)
    assert len(pairs) > 20 and listed > 0.4 and listed > 20 * chance


def test_audit_errors(city):
    truth = city.truth_membership
    members = truth[truth["group"] != ""]
    audit = city.groups.set_index("person_id")["group"]
    label = members["person_id"].map(audit)
    missed = label.isna().mean()
    wrong = (label.notna() & (label != members["group"].to_numpy())).mean()
    assert 0.25 < missed < 0.35                       # misses ~30% of true members
    assert 0.07 < wrong < 0.13                        # mislabels ~10%
    non_members = ~city.groups["person_id"].isin(members["person_id"])
    assert 0 < non_members.mean() < 0.1               # a few associates listed
    assert set(city.groups["source"]) <= {"gang_unit", "field_interview", "social_media"}
    n_rel = city.stats["feuds"] + city.stats["alliances"]
    assert 0.65 < len(city.group_relations) / n_rel < 0.95   # most, not all, relations


def test_truth_future_is_the_same_process(city):
    fut = city.truth_future
    vic = fut[fut["role"] == "victim"]
    assert fut["date"].min() > city.end_date and fut["date"].max() <= "2026-06-28"
    assert fut.groupby("incident_id")["role"].agg(lambda r: "victim" in set(r)).all()
    in_rate = len(_shooting_victims(city, _dated(city))) / 1095
    fut_rate = len(vic) / 180
    assert 0.4 < fut_rate / in_rate < 2.5
    member = city.truth_membership.set_index("person_id")["group"] != ""
    assert vic["person_id"].map(member).mean() > 0.3   # concentrated among members (10%)


# ---- writing -----------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_write_city(tmp_path, fmt):
    c = generate_city(1500, seed=5)
    out = tmp_path / "nested" / "city"
    paths = write_city(c, out, fmt=fmt)
    for name in ("incidents", "involvements", "persons", "groups", "group_relations"):
        assert paths[name] == out / f"{name}.{fmt}" and paths[name].is_file()
        if fmt == "csv":
            back = pd.read_csv(paths[name], dtype=str, keep_default_na=False)
            assert "\"" not in paths[name].read_text(encoding="utf-8")
        else:
            back = pd.read_parquet(paths[name]).astype(str)
        frame = getattr(c, name)
        assert list(back.columns) == list(frame.columns)
        assert len(back) == len(frame)
        for col in frame.columns:
            if pd.api.types.is_float_dtype(frame[col]):
                assert np.allclose(back[col].astype(float), frame[col])
            else:
                assert back[col].tolist() == frame[col].astype(str).tolist(), (name, col)
    # the truth goes apart, and says it is not an input
    top = {p.name for p in out.iterdir() if p.is_file()}
    assert top == {f"{n}.{fmt}" for n in COLUMNS if not n.startswith("truth")}
    assert paths["truth_membership"] == out / "truth" / "membership.csv"
    assert paths["truth_future"] == out / "truth" / "future_shootings.csv"
    readme = (out / "truth" / "README.md").read_text(encoding="utf-8")
    assert "NOT an input" in readme and c.end_date in readme
    fut = pd.read_csv(paths["truth_future"], dtype=str, keep_default_na=False)
    assert fut.values.tolist() == c.truth_future.astype(str).values.tolist()
    mem = pd.read_csv(paths["truth_membership"], dtype=str, keep_default_na=False)
    assert mem["group"].tolist() == c.truth_membership["group"].tolist()
    with pytest.raises(ValueError):
        write_city(c, tmp_path / "x", fmt="xlsx")


def test_written_city_reads_cleanly(tmp_path):
    """The engine's own reader takes the synthetic folder with no rejected rows."""
    records = pytest.importorskip("fdnet.records")
    c = generate_city(1500, seed=6)
    write_city(c, tmp_path, fmt="csv")
    rec = records.load_records(tmp_path)
    assert len(rec.rejected) == 0
    assert rec.as_of == c.end_date
    assert len(rec.incidents) == len(c.incidents) and len(rec.involvements) == len(c.involvements)


def test_written_in_slices_is_written_whole(tmp_path, monkeypatch):
    """Issue 10: write_city writes a city in slices of rows (a 10M-person city never holds its text);
    the bytes are those of the tables written whole, and n_rows needs no frame."""
    import fdnet.synth.city as city_mod

    c = generate_city(1500, seed=5)
    assert c.n_rows("involvements") == len(c.involvements) and c.n_rows("persons") == 1500
    whole = write_city(generate_city(1500, seed=5), tmp_path / "whole")
    monkeypatch.setattr(city_mod, "WRITE_CHUNK_ROWS", 97)
    sliced = write_city(generate_city(1500, seed=5), tmp_path / "sliced")
    for name, path in whole.items():
        assert path.read_bytes() == sliced[name].read_bytes(), name
