"""The report's Places section: an offline SVG map (risk cells, shootings per cell, group territories and the
conflicts between them), the risk factors, PAI/PEI, the Knox table and the place list.

Built from the run folder's tables (places.csv, risk_factors.csv, place_list.csv, near_repeats.csv,
group_table.csv, conflicts.csv; every cell read as text) and ``manifest["places"]``, so the same section comes
from a run in memory and from a folder re-read by ``fdnet verify``. Every text from input (group names) is
escaped; numbers are parsed, never pasted. The map's elements are built a column at a time (numpy and pandas
string operations), never a Python loop per cell.

>>> import pandas as pd
>>> cells = pd.DataFrame({"cell_id": ["R0C0", "R0C1"], "lat": ["40.0", "40.0"], "lon": ["-100.0", "-99.998"],
...                       "shootings": ["1", "0"], "risk": ["1.5", "0.5"]})
>>> svg = map_svg(cells, None, None, cell_m=150)
>>> svg.startswith("<svg") and "<script" not in svg and "http" not in svg.replace("http://www.w3.org/2000/svg", "")
True
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from markupsafe import Markup

MAX_RISK_CELLS = 8000
W = 720


def _f(s) -> np.ndarray:
    return pd.to_numeric(pd.Series(s), errors="coerce").to_numpy(dtype=float)


def _fmt(v, digits: int) -> np.ndarray:
    """Numbers as text with ``digits`` decimals (as f"{v:.{digits}f}"), a whole column at once."""
    return np.char.mod(f"%.{digits}f", np.asarray(v, float)).astype(object)


def _escape(s: pd.Series) -> np.ndarray:
    """HTML-escaped text (as :func:`markupsafe.escape`), a whole column at once."""
    t = s.astype(str)
    for ch, rep in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&#34;"), ("'", "&#39;")):
        t = t.str.replace(ch, rep, regex=False)
    return t.to_numpy(dtype=object)


def map_svg(cells: pd.DataFrame, groups: pd.DataFrame | None, conflicts: pd.DataFrame | None, *,
            cell_m: float) -> str:
    """The map as SVG text: the riskiest cells shaded, circles for shootings per cell, territory centres with
    their names, lines for conflicts between territories. Plate carrée scaled by cos(latitude)."""
    lat, lon = _f(cells["lat"]), _f(cells["lon"])
    ok = np.isfinite(lat) & np.isfinite(lon)
    if not ok.any():
        return ""
    lat0 = float(np.nanmean(lat[ok]))
    k = math.cos(math.radians(lat0))
    xs, ys = lon * k, lat
    x0, x1 = float(np.nanmin(xs[ok])), float(np.nanmax(xs[ok]))
    y0, y1 = float(np.nanmin(ys[ok])), float(np.nanmax(ys[ok]))
    span = max(x1 - x0, y1 - y0, 1e-6)
    s = (W - 20) / span
    H = int((y1 - y0) * s) + 20

    def px(x):
        return 10 + (x - x0) * s

    def py(y):
        return H - 10 - (y - y0) * s

    cdeg = cell_m / 111_320.0 * s      # a cell's side on the page
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
           'aria-label="map of risk, shootings and group territories" class="places-map">',
           f'<rect x="0" y="0" width="{W}" height="{H}" fill="#fafafa" stroke="#ccc"/>']
    risk = _f(cells["risk"])
    order = np.lexsort((np.arange(len(risk)), -np.nan_to_num(risk, nan=-1)))
    n_top = min(MAX_RISK_CELLS, max(1, int(0.05 * len(risk))))
    top = order[:n_top]
    if len(top):
        rmax = float(np.nanmax(risk[top])) or 1.0
        rmin = float(np.nanmin(risk[top]))
        i = top[ok[top]]
        t = 0.15 + 0.85 * ((risk[i] - rmin) / (rmax - rmin) if rmax > rmin else np.ones(len(i)))
        side = f"{max(cdeg, 1):.1f}"
        out.extend('<rect x="' + _fmt(px(xs[i]) - cdeg / 2, 1) + '" y="' + _fmt(py(ys[i]) - cdeg / 2, 1)
                   + f'" width="{side}" height="{side}" fill="#d7301f" fill-opacity="' + _fmt(t, 2) + '"/>')
    sh = _f(cells["shootings"])
    i = np.flatnonzero((np.nan_to_num(sh) > 0) & ok)
    out.extend('<circle cx="' + _fmt(px(xs[i]), 1) + '" cy="' + _fmt(py(ys[i]), 1) + '" r="'
               + _fmt(1.5 + 1.2 * np.sqrt(sh[i]), 1) + '" fill="none" stroke="#08306b" stroke-width="0.8"/>')
    if groups is not None and {"territory_lat", "territory_lon", "group"} <= set(groups.columns):
        glat, glon = _f(groups["territory_lat"]), _f(groups["territory_lon"])
        fin = np.isfinite(glat) & np.isfinite(glon)
        pos = pd.DataFrame({"group": groups["group"].astype(str).to_numpy()[fin], "x": px(glon[fin] * k),
                            "y": py(glat[fin])}).groupby("group", sort=False).last()
        if conflicts is not None and len(conflicts) and {"group_a", "group_b"} <= set(conflicts.columns):
            rel = conflicts["relation"].astype(str) if "relation" in conflicts else pd.Series(["conflict"] * len(conflicts))
            shoot = _f(conflicts["shootings"]) if "shootings" in conflicts else np.zeros(len(conflicts))
            a, b = conflicts["group_a"].astype(str), conflicts["group_b"].astype(str)
            m = ((rel.to_numpy() == "conflict") & a.isin(pos.index).to_numpy() & b.isin(pos.index).to_numpy())
            pa, pb, n = pos.reindex(a[m]).to_numpy(), pos.reindex(b[m]).to_numpy(), shoot[m]
            fn = np.isfinite(n)
            w = 0.8 + np.where(fn, np.sqrt(np.where(fn, n, 0)), 0)
            out.extend('<line x1="' + _fmt(pa[:, 0], 1) + '" y1="' + _fmt(pa[:, 1], 1) + '" x2="' + _fmt(pb[:, 0], 1)
                       + '" y2="' + _fmt(pb[:, 1], 1) + '" stroke="#6a51a3" stroke-opacity="0.7" stroke-width="'
                       + _fmt(w, 1) + '"><title>' + _escape(a[m]) + " – " + _escape(b[m]) + ": "
                       + np.where(fn, np.where(fn, n, 0), 0).astype(np.int64).astype(str).astype(object)
                       + " shootings between them</title></line>")
        out.extend('<circle cx="' + _fmt(pos["x"].to_numpy(), 1) + '" cy="' + _fmt(pos["y"].to_numpy(), 1)
                   + '" r="3" fill="#6a51a3"><title>' + _escape(pd.Series(pos.index)) + "</title></circle>")
    out.append("</svg>")
    return "\n".join(out)


def _text(v, kind: str) -> np.ndarray:
    """A column of numbers as people read them: ``int`` (thousands separated), ``d1``/``d2``/``d3`` (that many
    decimals), ``pct`` (a share as a percentage, one decimal), ``yes`` (true/false as yes/no); missing is –."""
    if kind == "yes":
        t = pd.Series(v).astype(str).str.lower()
        return np.where(t.isin(["true", "1"]), "yes", np.where(t.isin(["false", "0"]), "no", "–")).astype(object)
    f = _f(v)
    ok = np.isfinite(f)
    g = np.where(ok, f, 0.0)
    if kind == "int":
        out = pd.Series(np.round(g).astype(np.int64)).map("{:,}".format).to_numpy(dtype=object)
    elif kind == "pct":
        out = (np.char.mod("%.1f", 100 * g).astype(object) + "%")
    else:
        out = np.char.mod(f"%.{int(kind[1])}f", g).astype(object)
    return np.where(ok, out, "–").astype(object)


def _rows(df: pd.DataFrame | None, cols: list[tuple], limit: int | None = None) -> dict | None:
    """A report table from a run table: ``cols`` are (header, column, format) with format a kind of
    :func:`_text`, ``None`` (text as it is) or ``"interval"`` (column names the low and high: [low, high])."""
    if df is None:
        return None
    d = df if limit is None else df.head(limit)
    heads, data, numeric = [], [], []
    for head, col, kind in cols:
        if kind == "interval":
            lo, hi = col
            if lo not in d.columns or hi not in d.columns:
                continue
            a, b = _text(d[lo], "d2"), _text(d[hi], "d2")
            data.append(np.where((a == "–") | (b == "–"), "–", "[" + a + ", " + b + "]").astype(object))
        else:
            if col not in d.columns:
                continue
            data.append(d[col].astype(str).to_numpy(dtype=object) if kind is None else _text(d[col], kind))
        heads.append(head)
        numeric.append(kind not in (None, "yes"))
    rows = np.column_stack(data).tolist() if data and len(d) else []
    return {"columns": heads, "rows": rows, "total": int(len(df)), "numeric": numeric, "flags": None}


def places_context(src, manifest: dict) -> dict | None:
    """The section's content, or None when the run has no places.csv."""
    cells = src.table("places")
    if cells is None:
        return None
    summ = manifest.get("places") if isinstance(manifest.get("places"), dict) else {}
    cell_m = float(summ.get("cell_m") or (manifest.get("policy") or {}).get("places", {}).get("cell_m", 150))
    svg = map_svg(cells, src.table("group_table"), src.table("conflicts"), cell_m=cell_m)
    acc = summ.get("accuracy") if isinstance(summ.get("accuracy"), dict) else {}
    acc_rows = []
    labels = {"risk_terrain": "risk terrain surface", "past_shootings": "past shootings (counts per cell)",
              "past_shootings_kde": "past shootings (kernel density)"}
    for key, label in labels.items():
        for m in (acc.get("maps") or {}).get(key) or []:
            acc_rows.append([label, f"{100 * float(m.get('area_share', 0)):g}%", _text([m.get("hit_rate")], "pct")[0],
                             _text([m.get("pai")], "d2")[0], _text([m.get("pei")], "d2")[0]])
    return {
        "svg": Markup(svg),
        "summary": summ,
        "factors": _rows(src.table("risk_factors"), [
            ("factor", "factor", None), ("relative risk", "relative_risk", "d2"),
            ("95% interval", ("ci95_low", "ci95_high"), "interval"), ("selected", "selected", "yes"),
            ("statistic", "statistic", "d1"), ("entry threshold", "entry_threshold", "d1"),
            ("cells exposed", "cells_exposed", "int")]),
        "place_list": _rows(src.table("place_list"), [
            ("rank", "rank", "int"), ("cell", "cell_id", None), ("lat", "lat", "d5"), ("lon", "lon", "d5"),
            ("risk", "risk", "d2"), ("terrain risk", "terrain_risk", "d2"), ("shootings", "shootings", "int"),
            ("other incidents", "other_incidents", "int"), ("drivers", "drivers", None)]),
        "knox": _rows(src.table("near_repeats"), [
            ("from (m)", "distance_from_m", "int"), ("to (m)", "distance_to_m", "int"),
            ("from (days)", "days_from", "int"), ("to (days)", "days_to", "int"), ("observed pairs", "observed", "int"),
            ("expected pairs", "expected", "d1"), ("ratio", "ratio", "d2"), ("p-value", "p_value", "d2")]),
        "accuracy": {"columns": ["map", "area share", "hit rate", "PAI", "PEI"], "rows": acc_rows,
                     "total": len(acc_rows), "numeric": [False, True, True, True, True], "flags": None}
        if acc_rows else None,
        "accuracy_info": acc,
    }
