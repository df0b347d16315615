"""The places analysis (fdnet/places): planted place effects recovered, nulls not credited, forecast accuracy,
near repeats, territories, and the run's other outputs untouched."""
import numpy as np
import pandas as pd
import pytest

import fdnet
from fdnet.api import study
from fdnet.errors import UsageError
from fdnet.places import analyze_places
from fdnet.places.accuracy import hits_in_top, pai_pei
from fdnet.places.grid import Grid
from fdnet.places.knox import knox
from fdnet.places.rtm import _fit, _glm, _quick, select
from fdnet.synth import generate_city, write_city
from fdnet.synth.places import plant_place_features

PLANTED = 3.0


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    d = tmp_path_factory.mktemp("places") / "city"
    write_city(plant_place_features(generate_city(60_000, seed=7), relative_risk=PLANTED, seed=3), d)
    st = study(d)
    return d, st, analyze_places(st.records, st.network, st.analytics, st.policy)


@pytest.fixture(scope="module")
def null_city(tmp_path_factory):
    d = tmp_path_factory.mktemp("places_null") / "city"
    write_city(plant_place_features(generate_city(60_000, seed=7), relative_risk=1.0, seed=3), d)
    st = study(d)
    return analyze_places(st.records, st.network, st.analytics, st.policy)


def test_planted_relative_risk_recovered(planted):
    _, _, p = planted
    f = p.factors.set_index("factor")
    row = f.loc["vacant_building:within_300m"]
    assert bool(row["selected"])
    assert row["ci95_low"] <= PLANTED <= row["ci95_high"], row
    assert 2.0 < row["relative_risk"] < 4.5


def test_correlated_and_pure_nulls_not_credited(planted):
    _, _, p = planted
    sel = p.factors[p.factors["selected"]]
    assert sorted(sel["kind"]) == ["vacant_building"]
    assert not p.factors.loc[p.factors["kind"] == "request_311", "selected"].any()
    assert not p.factors.loc[p.factors["kind"] == "bus_stop", "selected"].any()
    # the 311 requests do travel with the vacant buildings: alone (background only) they would look risky
    from fdnet.places.rtm import factor_columns
    st = planted[1]
    pf = st.records.place_features
    g = p.grid
    fx, fy = g.project(pf["lat"].to_numpy(float), pf["lon"].to_numpy(float))
    cols, kinds = factor_columns(g, pf, fx, fy, [300.0], 300.0)
    r = np.corrcoef(cols["vacant_building:within_300m"], cols["request_311:within_300m"])[0, 1]
    assert r > 0.4


def test_no_effect_no_factor(null_city):
    assert not null_city.factors["selected"].any(), null_city.factors


def _vacant_fit(city, rr, seed, tmp_path):
    d = tmp_path / f"city_{rr:g}"
    write_city(plant_place_features(city, relative_risk=rr, seed=seed), d)
    st = study(d)
    return analyze_places(st.records, st.network, st.analytics, st.policy).factors.set_index("factor")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_planted_relative_risk_covered_across_cities(seed, tmp_path):
    """On cities nobody tuned for, the interval covers the planted RR, no null kind is credited, and the
    estimate over the unplanted twin's (same features, RR 1: the city's chance association) is the planted RR."""
    city = generate_city(30_000, seed=seed)
    f = _vacant_fit(city, PLANTED, seed, tmp_path)
    twin = _vacant_fit(city, 1.0, seed, tmp_path)
    row = f.loc["vacant_building:within_300m"]
    assert bool(row["selected"]) and row["ci95_low"] <= PLANTED <= row["ci95_high"], row
    assert sorted(f.loc[f["selected"], "kind"]) == ["vacant_building"]
    assert not twin["selected"].any(), twin
    ratio = row["relative_risk"] / twin.loc["vacant_building:within_300m", "relative_risk"]
    assert abs(ratio / PLANTED - 1) < 0.15, ratio


def test_risk_surface_beats_past_shootings(planted):
    acc = planted[2].accuracy
    assert acc["holdout_shootings"] > 20
    risk = {m["area_share"]: m["pai"] for m in acc["maps"]["risk_terrain"]}
    past = {m["area_share"]: m["pai"] for m in acc["maps"]["past_shootings"]}
    for a in (0.05, 0.10):
        assert risk[a] >= past[a], (risk, past)
    assert all(0 <= m["pei"] <= 1 for ms in acc["maps"].values() for m in ms)


def test_places_csv_contract(planted):
    p = planted[2]
    c = p.cells
    assert list(c.columns[:5]) == ["cell_id", "lat", "lon", "shootings", "risk"]
    assert len(c) == p.grid.n_cells and c["cell_id"].is_unique
    assert int(c["shootings"].sum()) == p.summary["shootings_placed"]
    assert (c["shootings"] == 0).any()                         # zero cells are written too
    assert abs(c["risk"].mean() - 1) < 1e-3
    assert list(p.factors.columns[:5]) == ["factor", "relative_risk", "ci95_low", "ci95_high", "selected"]
    # the place list names cells and features, never people
    pl = p.place_list
    assert len(pl) == 25 and (pl["rank"] == np.arange(1, 26)).all()
    pids = set(planted[1].network.person_ids.tolist())
    assert not any(str(v) in pids for v in pl.to_numpy().ravel())
    assert pl["drivers"].str.contains("vacant_building").any()


def test_territories(planted):
    _, st, p = planted
    t = p.territories
    assert len(t) > 0 and t["group"].is_unique
    assert (t["territory_cells"] >= 1).all() and (t["territory_incidents"] >= t["territory_cells"]).all()
    lat0, lat1 = p.cells["lat"].min(), p.cells["lat"].max()
    assert t["territory_lat"].between(lat0 - 0.01, lat1 + 0.01).all()


def test_quick_fit_matches_statsmodels():
    rng = np.random.default_rng(1)
    n = 3000
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.random(n) < 0.2])
    y = rng.poisson(np.exp(X @ np.array([-1.0, 0.4, 0.9]))).astype(float)
    a, b = _quick(y, X), _glm(y, X)
    assert np.allclose(a.params, b.params, atol=1e-6)
    assert np.allclose(np.sqrt(np.diag(a.cov())), b.bse, rtol=1e-5)


def test_negative_binomial_fit_matches_statsmodels():
    import statsmodels.api as sm
    rng = np.random.default_rng(3)
    n = 4000
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.random(n) < 0.3])
    mu = np.exp(X @ np.array([-0.5, 0.5, 0.7]))
    y = rng.poisson(rng.gamma(1 / 0.8, 0.8 * mu)).astype(float)          # NB2 with alpha 0.8
    ours = _fit(y, X)
    ref = sm.NegativeBinomial(y, X, loglike_method="nb2").fit(disp=0, maxiter=200)
    assert np.allclose(ours.params, ref.params[:3], atol=1e-3)
    assert abs(ours.alpha - ref.params[3]) < 1e-3
    assert 0.6 < ours.alpha < 1.0


def test_selection_one_operationalisation_per_kind():
    rng = np.random.default_rng(2)
    n = 6000
    bg = rng.normal(size=n)
    near = (rng.random(n) < 0.3).astype(float)
    wide = np.maximum(near, (rng.random(n) < 0.2).astype(float))         # the same kind at a longer distance
    y = rng.poisson(np.exp(-1.5 + 0.5 * bg + np.log(3) * near))
    fit = select(y, bg, {"v:within_150m": near, "v:within_450m": wide}, {"v:within_150m": "v", "v:within_450m": "v"})
    assert fit.selected == ["v:within_150m"]


def test_pai_ties_and_bounds():
    score = np.array([5.0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    fut = np.array([2, 1, 0, 0, 0, 0, 0, 0, 0, 1])
    assert hits_in_top(score, fut, 1) == 2
    assert hits_in_top(score, fut, 2) == pytest.approx(2 + 1 / 3)
    r = pai_pei(score, fut, [0.1, 0.2])
    assert r[0]["pai"] == pytest.approx((2 / 4) / 0.1) and r[0]["pei"] == 1.0
    assert r[1]["pei"] == pytest.approx((2 + 1 / 3) / 3)


def test_knox_detects_near_repeats_and_not_chance():
    rng = np.random.default_rng(5)
    # 60 seeds, each followed by a repeat 30 m and 2 days away: near repeats
    sx, sy, sd = rng.random(60) * 20000, rng.random(60) * 20000, rng.integers(0, 1000, 60)
    x = np.r_[sx, sx + 30]; y = np.r_[sy, sy]; d = np.r_[sd, sd + 2]
    t = knox(x, y, d, [100, 400], [7, 30], permutations=99, seed=0)
    first = t.iloc[0]
    assert first["observed"] >= 60 and first["ratio"] > 5 and first["p_value"] == 0.01
    # the same places, dates at random: nothing beyond chance
    d2 = rng.integers(0, 1000, 120)
    t2 = knox(x, y, d2, [100, 400], [7, 30], permutations=99, seed=0)
    assert t2.iloc[0]["p_value"] > 0.05
    assert knox(x, y, d, [100], [7], permutations=99, seed=0).equals(knox(x, y, d, [100], [7], permutations=99, seed=0))


def test_grid_refuses_a_continent():
    with pytest.raises(UsageError, match="places.max_cells"):
        Grid.covering(np.array([40.0, 40.1, -33.9]), np.array([-100.0, -100.1, 18.4]), cell_m=150, max_cells=10_000)


def test_run_folder_places_files_and_lists_unchanged(tmp_path):
    d = tmp_path / "city"
    write_city(plant_place_features(generate_city(4000, seed=3), relative_risk=2.0, seed=1), d)
    on = fdnet.run(d, today="2026-06-01")
    off = fdnet.run(d, today="2026-06-01", policy={"places": {"enabled": False}})
    assert on.places is not None and off.places is None
    f_on = dict(on.files())
    f_off = dict(off.files())
    for name in ("call_in.csv", "custom_notifications.csv", "service_referrals.csv", "scores.csv",
                 "explanations.jsonl", "edges.csv", "groups.csv"):
        assert f_on[name] == f_off[name], name
    for name in ("places.csv", "risk_factors.csv", "place_list.csv", "near_repeats.csv"):
        assert name in f_on and name not in f_off
    assert b"territory_lat" in f_on["group_table.csv"] and b"territory_lat" not in f_off["group_table.csv"]
    again = dict(fdnet.run(d, today="2026-06-01").files())
    for name in ("places.csv", "risk_factors.csv", "place_list.csv", "near_repeats.csv", "group_table.csv"):
        assert f_on[name] == again[name], name
    assert "places" in on.manifest and on.manifest["places"]["cells"] == len(on.places.cells)


def test_no_coordinates_no_places(tmp_path):
    d = tmp_path / "city"
    write_city(generate_city(1500, seed=2), d)
    inc = pd.read_csv(d / "incidents.csv", dtype=str).drop(columns=["lat", "lon"])
    inc.to_csv(d / "incidents.csv", index=False)
    r = fdnet.run(d, today="2026-06-01")
    assert r.places is None and "places" not in r.manifest
    names = {n for n, _ in r.files()}
    assert not names & {"places.csv", "risk_factors.csv", "place_list.csv", "near_repeats.csv"}


def test_geo_export_layers_and_byte_identical(tmp_path):
    import json
    import time

    import pyogrio

    from fdnet.export.core import export_run
    d = tmp_path / "city"
    write_city(plant_place_features(generate_city(3000, seed=5), relative_risk=2.0, seed=2), d)
    run_dir = fdnet.run(d, today="2026-06-01").write(tmp_path / "run")
    export_run(run_dir, tmp_path / "e1", formats="geo")
    time.sleep(1.1)
    export_run(run_dir, tmp_path / "e2", formats="geo")
    for name in ("places.geojson", "territories.geojson", "places.gpkg"):
        assert (tmp_path / "e1" / name).read_bytes() == (tmp_path / "e2" / name).read_bytes(), name
    cells = json.loads((tmp_path / "e1" / "places.geojson").read_text())
    n_cells = len(pd.read_csv(run_dir / "places.csv"))
    assert len(cells["features"]) == n_cells and cells["features"][0]["geometry"]["type"] == "Polygon"
    layers = dict(pyogrio.list_layers(tmp_path / "e1" / "places.gpkg").tolist())
    assert layers["cells"] == "Polygon" and layers["territories"] == "Point"


def test_missing_place_features_note_kept_in_manifest_not_printed(tmp_path):
    """Most cities have coordinates and no place_features: the note is kept in the manifest's places section
    (and the report), not printed after every run; a lost coordinate is still a printed note."""
    d = tmp_path / "city"
    write_city(generate_city(1500, seed=2), d)
    r = fdnet.run(d, today="2026-06-01")
    assert r.places is not None
    assert not any("place_features" in n for n in r.manifest["notes"])
    assert any("no place_features table" in n for n in r.manifest["places"]["notes"])
    assert "no place_features table" in dict(r.files())["report.html"].decode()
    inc = pd.read_csv(d / "incidents.csv", dtype=str)
    inc.loc[inc.index[:3], ["lat", "lon"]] = ""
    inc.to_csv(d / "incidents.csv", index=False)
    r2 = fdnet.run(d, today="2026-06-01")
    assert any("have no lat/lon" in n for n in r2.manifest["notes"])


def test_h3_grid_counts_match_square_and_cells_stable(tmp_path):
    """places.grid: h3 places every incident in its own H3 cell (as h3.latlng_to_cell says), keeps the square
    grid's totals, and gives the same cells run after run; the geo export draws the hexagons."""
    h3 = pytest.importorskip("h3")
    from fdnet.export.core import export_run
    from fdnet.places import _window_points
    from fdnet.policy import policy_from_dict
    d = tmp_path / "city"
    write_city(plant_place_features(generate_city(4000, seed=3), relative_risk=2.0, seed=1), d)
    st = study(d)
    sq = analyze_places(st.records, st.network, st.analytics, st.policy)
    pol = policy_from_dict({"places": {"grid": "h3", "h3_resolution": 9}})
    hx = analyze_places(st.records, st.network, st.analytics, pol)
    for col in ("shootings", "other_incidents"):
        assert int(hx.cells[col].sum()) == int(sq.cells[col].sum()) > 0, col
    ids = hx.cells["cell_id"].to_numpy(dtype=object)
    assert list(ids) == sorted(set(ids)) and all(h3.get_resolution(c) == 9 for c in ids[:50])
    lat, lon = _window_points(st.records, st.network)
    ok = np.isfinite(lat)
    x, y = hx.grid.project(lat[ok], lon[ok])
    mine = hx.grid.cell_ids[hx.grid.cell_of(x, y)]
    assert (mine == np.array([h3.latlng_to_cell(a, b, 9) for a, b in zip(lat[ok], lon[ok])])).all()
    again = analyze_places(st.records, st.network, st.analytics, pol)
    assert again.cells.equals(hx.cells) and again.factors.equals(hx.factors)
    assert hx.summary["grid"] == "h3" and hx.summary["h3_resolution"] == 9 and hx.summary["rows"] is None
    run_dir = fdnet.run(d, today="2026-06-01", policy={"places": {"grid": "h3", "h3_resolution": 9}}).write(
        tmp_path / "run")
    export_run(run_dir, tmp_path / "geo", formats="geo")
    import json
    f0 = json.loads((tmp_path / "geo" / "places.geojson").read_text())["features"][0]
    ring = f0["geometry"]["coordinates"][0]
    assert len(ring) == 7 and ring[0] == ring[-1]
    want = [[round(b, 7), round(a, 7)] for a, b in h3.cell_to_boundary(f0["id"])]
    assert ring[:6] == want


def test_h3_not_installed_is_a_one_line_error(monkeypatch):
    import sys

    from fdnet.places.grid import H3Grid
    monkeypatch.setitem(sys.modules, "h3", None)
    with pytest.raises(UsageError, match=r"places.grid is h3 but the h3 package is not installed: pip install") as e:
        H3Grid.covering(np.array([40.0, 40.01]), np.array([-100.0, -100.01]), resolution=9)
    assert "\n" not in str(e.value)


def test_geo_export_text_is_json_dumps_and_escaped():
    """The column-at-a-time GeoJSON is what json.dumps writes for the same features, byte for byte, for
    awkward text (quotes, backslashes, control characters, non-ASCII) and numbers (whole, decimal, empty)."""
    import json

    from fdnet.export.geo import geo_files
    odd = ['a"b', "back\\slash", "new\nline\ttab\x01", "Ünïcode – ok", "<script>"]
    cells = pd.DataFrame({"cell_id": odd, "lat": ["40.0", "40.001", "40.002", "40.003", "40.004"],
                          "lon": ["-100.0"] * 5, "shootings": ["3", "0", "", "1", "2"],
                          "risk": ["1.5", "3.0", "1e-05", "-0.25", "7"], "note": odd[::-1]})
    cells.attrs["number_columns"] = ["lat", "lon", "shootings", "risk"]
    gt = pd.DataFrame({"group": odd[:3], "territory_lat": ["40.0", "40.001", ""], "territory_lon": ["-100.0"] * 3,
                       "territory_incidents": ["4", "5", "6"]})
    gt.attrs["number_columns"] = ["territory_lat", "territory_lon", "territory_incidents"]
    conf = pd.DataFrame({"group_a": [odd[0], odd[0]], "group_b": [odd[1], odd[2]], "relation": ["conflict"] * 2,
                         "shootings": ["2", "1"]})
    conf.attrs["number_columns"] = ["shootings"]
    man = {"places": {"cell_m": 100.0, "crs": "+proj=aeqd +lat_0=40.000000 +lon_0=-100.000000 +datum=WGS84 "
                                              "+units=m +no_defs"}}
    files = geo_files({"places": cells, "group_table": gt, "conflicts": conf}, man)
    doc = json.loads(files["places.geojson"])
    assert [f["id"] for f in doc["features"]] == odd
    assert [f["properties"]["note"] for f in doc["features"]] == odd[::-1]
    assert [f["properties"]["shootings"] for f in doc["features"]] == [3, 0, None, 1, 2]
    assert [f["properties"]["risk"] for f in doc["features"]] == [1.5, 3.0, 1e-05, -0.25, 7]
    assert isinstance(doc["features"][4]["properties"]["risk"], int)
    assert files["places.geojson"] == (json.dumps(doc, ensure_ascii=False, separators=(",", ":"),
                                                  allow_nan=False) + "\n").encode()
    terr = json.loads(files["territories.geojson"])
    kinds = [f["geometry"]["type"] for f in terr["features"]]
    assert kinds == ["Point", "Point", "LineString"]            # the third group has no centre: no point, no line
    assert terr["features"][2]["properties"]["group_b"] == odd[1]
    assert files["territories.geojson"] == (json.dumps(terr, ensure_ascii=False, separators=(",", ":"))
                                            + "\n").encode()


def test_report_tables_are_formatted_for_people():
    """Relative risks to two decimals with the interval in brackets, counts as integers, shares as
    percentages: no raw float of the run's files in the report's places tables."""
    from fdnet.report.places import _rows, _text
    rf = pd.DataFrame({"factor": ["a:within_300m", "b:density_300m"], "relative_risk": ["1.731287", ""],
                       "ci95_low": ["1.512346", ""], "ci95_high": ["1.975945", ""], "selected": ["True", "False"],
                       "cells_exposed": ["12263", "5"]})
    t = _rows(rf, [("factor", "factor", None), ("relative risk", "relative_risk", "d2"),
                   ("95% interval", ("ci95_low", "ci95_high"), "interval"), ("selected", "selected", "yes"),
                   ("cells exposed", "cells_exposed", "int")])
    assert t["columns"] == ["factor", "relative risk", "95% interval", "selected", "cells exposed"]
    assert t["rows"] == [["a:within_300m", "1.73", "[1.51, 1.98]", "yes", "12,263"],
                         ["b:density_300m", "–", "–", "no", "5"]]
    assert list(_text([0.146718, None], "pct")) == ["14.7%", "–"]


def test_report_places_section_has_no_raw_floats(planted):
    import re

    from fdnet.report.places import places_context

    class Src:
        def __init__(self, tables):
            self.tables = tables

        def table(self, name):
            return self.tables.get(name)
    p = planted[2]
    txt = lambda df: df.astype(str)                                          # noqa: E731 - as a run folder reads
    src = Src({"places": txt(p.cells), "risk_factors": txt(p.factors), "place_list": txt(p.place_list),
               "near_repeats": txt(p.knox)})
    ctx = places_context(src, {"places": p.summary})
    for k in ("factors", "place_list", "knox", "accuracy"):
        for r in ctx[k]["rows"]:
            for v in r:                     # no raw float: lat/lon have five decimals, the rest two at most
                assert not re.fullmatch(r"-?[\d,]*\.\d{6,}%?", v), (k, v)
    fac = ctx["factors"]
    col = {c: [r[j] for r in fac["rows"]] for j, c in enumerate(fac["columns"])}
    assert all(re.fullmatch(r"\d+\.\d\d|–", v) for v in col["relative risk"])
    assert all(re.fullmatch(r"\[\d+\.\d\d, \d+\.\d\d\]|–", v) for v in col["95% interval"])
    assert set(col["selected"]) == {"yes", "no"}
    assert all(re.fullmatch(r"\d+\.\d%", r[2]) for r in ctx["accuracy"]["rows"])


def test_map_svg_escapes_group_names():
    from markupsafe import escape

    from fdnet.report.places import map_svg
    cells = pd.DataFrame({"cell_id": ["R0C0", "R0C1", "R1C0"], "lat": ["40.0", "40.0", "40.002"],
                          "lon": ["-100.0", "-99.998", "-100.0"], "shootings": ["2", "0", "1"],
                          "risk": ["1.5", "0.5", "1.0"]})
    bad = ['<script>alert("x")</script>', "O'Neil & Sons"]
    groups = pd.DataFrame({"group": bad, "territory_lat": ["40.0", "40.002"], "territory_lon": ["-100.0", "-100.0"]})
    conf = pd.DataFrame({"group_a": [bad[0]], "group_b": [bad[1]], "relation": ["conflict"], "shootings": ["4"]})
    svg = map_svg(cells, groups, conf, cell_m=150)
    assert "<script" not in svg and "O'Neil" not in svg
    for g in bad:
        assert f"<title>{escape(g)}</title>" in svg
    assert f"<title>{escape(bad[0])} – {escape(bad[1])}: 4 shootings between them</title>" in svg
    assert svg.count("<circle") == 2 + 2 and svg.count("<line") == 1     # two shooting cells, two centres
