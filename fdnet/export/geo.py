"""``--format geo``: the places analysis as GIS layers for QGIS or ArcGIS (docs/exports.md, docs/places.md).

From a run with places.csv: ``places.geojson`` (one polygon per cell with its counts and risk; RFC 7946,
WGS84 lon/lat), ``territories.geojson`` (each group's territory centre as a point, conflicts between
territories as lines) and, when geopandas and pyogrio are installed, ``places.gpkg`` holding the layers
``cells``, ``territories`` and ``conflicts``. Cell squares are rebuilt in the run's local metric plane
(manifest ``places.crs``) and unprojected, so they tile exactly. The GeoPackage's timestamps are pinned
(``OGR_CURRENT_DATE``), so the same run exported twice gives the same bytes. A run without places.csv
exports none of these. A run whose cells are H3 hexagons (manifest ``places.grid``: ``h3``) gets the
hexagons' own outlines.

Everything is built a column at a time (numpy and pandas string operations; :mod:`shapely`'s array
constructors for the GeoPackage), never a Python loop per cell or feature: the text is what
:func:`json.dumps` would write for the same features, byte for byte.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

PINNED_DATE = "2000-01-01T00:00:00.000Z"


def _num(s: pd.Series) -> np.ndarray:
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)


def _numbers(df: pd.DataFrame) -> set[str]:
    from .runfolder import number_columns
    return set(number_columns(df))


_CTRL = {**{chr(i): f"\\u{i:04x}" for i in range(32)}, "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _json_text(s: pd.Series) -> pd.Series:
    """JSON string literals of a text column, as :func:`json.dumps` (``ensure_ascii=False``) writes them."""
    t = s.astype(str).str.replace("\\", "\\\\", regex=False).str.replace('"', '\\"', regex=False)
    if t.str.contains("[\x00-\x1f]", regex=True).any():
        for ch, esc in _CTRL.items():
            t = t.str.replace(ch, esc, regex=False)
    return '"' + t + '"'


def _number_values(s: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(value, is_int, is_null) of a number column read as text: an integer where the text is a whole number
    written without a point, else a float; empty or non-finite text is null."""
    text = s.astype(str)
    f = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
    null = ~np.isfinite(f)
    whole = np.zeros(len(f), bool)
    whole[~null] = np.floor(f[~null]) == f[~null]
    is_int = whole & ~text.str.contains(".", regex=False).to_numpy() & (np.abs(np.nan_to_num(f)) < 2.0 ** 63)
    return f, is_int, null


def _json_number(s: pd.Series) -> np.ndarray:
    f, is_int, null = _number_values(s)
    out = np.where(is_int, np.where(is_int, f, 0).astype(np.int64).astype(str), f.astype(str)).astype(object)
    out[null] = "null"
    return out


def _json_objects(df: pd.DataFrame, numbers: set[str]) -> pd.Series:
    """``{"col":value,...}`` per row, the JSON of the row's properties (column order kept)."""
    out = pd.Series(["{"] * len(df), index=df.index, dtype=object)
    for j, c in enumerate(df.columns):          # a loop over columns, never over rows
        key = ("," if j else "") + json.dumps(str(c), ensure_ascii=False) + ":"
        val = _json_number(df[c]) if c in numbers else _json_text(df[c]).to_numpy(dtype=object)
        out = out + key + val
    return out + "}"


def _json_points(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return "[" + np.asarray(lon, float).astype(str).astype(object) + "," + \
        np.asarray(lat, float).astype(str).astype(object) + "]"


def _json_rings(rings: np.ndarray) -> np.ndarray:
    """``[[lon,lat],...]`` per ring of an (n, k, 2) lon/lat array."""
    out = np.full(len(rings), "[", dtype=object)
    for v in range(rings.shape[1]):             # a loop over a ring's vertices, never over cells
        out = out + ("," if v else "") + _json_points(rings[:, v, 0], rings[:, v, 1])
    return out + "]"


def _collection(name: str, features) -> bytes:
    return ('{"type":"FeatureCollection","name":' + json.dumps(name) + ',"features":[' + ",".join(features)
            + "]}\n").encode("utf-8")


@dataclass
class _Layer:
    name: str
    props: pd.DataFrame          # the run's text
    numbers: set
    kind: str                    # Polygon, Point or LineString
    coords: np.ndarray           # (n, k, 2) lon/lat: a ring, one point (k = 1) or a line's points
    ids: pd.Series | None = None

    def features(self) -> np.ndarray:
        if self.kind == "Polygon":
            geom = "[" + _json_rings(self.coords) + "]"
        elif self.kind == "Point":
            geom = _json_points(self.coords[:, 0, 0], self.coords[:, 0, 1])
        else:
            geom = _json_rings(self.coords)
        head = '{"type":"Feature",'
        if self.ids is not None:
            head = head + '"id":' + _json_text(self.ids).to_numpy(dtype=object) + ","
        props = _json_objects(self.props, self.numbers).to_numpy(dtype=object)
        return head + '"properties":' + props + ',"geometry":{"type":"' + self.kind + '","coordinates":' + geom + "}}"

    def frame(self):
        """The layer as a GeoDataFrame, columns typed as GeoPandas reads the GeoJSON's values."""
        import geopandas as gpd
        import shapely
        cols = {}
        for c in self.props.columns:
            if c in self.numbers:
                f, is_int, null = _number_values(self.props[c])
                if null.all():
                    cols[c] = pd.Series([None] * len(f), dtype=object)
                elif is_int.all():
                    cols[c] = f.astype(np.int64)
                else:
                    cols[c] = np.where(null, np.nan, f)
            else:
                cols[c] = self.props[c].astype(str).to_numpy(dtype=object)
        if self.kind == "Polygon":
            geom = shapely.polygons(self.coords)
        elif self.kind == "Point":
            geom = shapely.points(self.coords[:, 0, :])
        else:
            geom = shapely.linestrings(self.coords)
        df = pd.DataFrame({"geometry": geom, **cols})
        return gpd.GeoDataFrame(df, geometry="geometry", crs="EPSG:4326")


def _cell_rings(cells: pd.DataFrame, crs: str, cell_m: float, summ: dict) -> np.ndarray:
    if summ.get("grid") == "h3":
        from ..places.grid import h3_rings
        return np.round(h3_rings(cells["cell_id"].to_numpy(dtype=object)), 7)
    from pyproj import Transformer
    lat, lon = _num(cells["lat"]), _num(cells["lon"])
    fwd = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    inv = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    x, y = fwd.transform(lon, lat)
    h = cell_m / 2
    cx = np.stack([x - h, x + h, x + h, x - h, x - h], axis=1)
    cy = np.stack([y - h, y - h, y + h, y + h, y - h], axis=1)
    plon, plat = inv.transform(cx.ravel(), cy.ravel())
    plon = np.round(np.asarray(plon).reshape(cx.shape), 7)
    plat = np.round(np.asarray(plat).reshape(cx.shape), 7)
    return np.stack([plon, plat], axis=2)


def _layers(tables: dict[str, pd.DataFrame], manifest: dict) -> dict[str, _Layer] | None:
    """The cells, territories and conflicts layers, or None without places.csv."""
    cells = tables.get("places")
    if cells is None:
        return None
    summ = manifest.get("places") or {}
    crs = summ.get("crs")
    cell_m = float(summ.get("cell_m") or 150)
    if not crs:
        from ..places.grid import local_crs
        crs = local_crs(float(np.nanmedian(_num(cells["lat"]))), float(np.nanmedian(_num(cells["lon"]))))
    layers = {"cells": _Layer("cells", cells, _numbers(cells), "Polygon", _cell_rings(cells, crs, cell_m, summ),
                              ids=cells["cell_id"])}
    empty = pd.DataFrame()
    layers["territories"] = _Layer("territories", empty, set(), "Point", np.zeros((0, 1, 2)))
    layers["conflicts"] = _Layer("conflicts", empty, set(), "LineString", np.zeros((0, 2, 2)))
    gt = tables.get("group_table")
    if gt is not None and {"territory_lat", "territory_lon"} <= set(gt.columns):
        keep = [c for c in ("group", "territory_lat", "territory_lon", "territory_incidents", "territory_cells",
                            "territory_km2", "members") if c in gt.columns]
        g = gt[keep]
        glat, glon = _num(g["territory_lat"]), _num(g["territory_lon"])
        ok = np.isfinite(glat) & np.isfinite(glon)
        g = g[ok].reset_index(drop=True)
        pts = np.stack([glon[ok], glat[ok]], axis=1)[:, None, :]
        layers["territories"] = _Layer("territories", g, _numbers(gt[keep]), "Point", pts)
        c = tables.get("conflicts")
        if c is not None and len(c):
            cc = c[[k for k in ("group_a", "group_b", "relation", "source", "shootings", "incidents") if k in c.columns]]
            at = pd.DataFrame({"lon": pts[:, 0, 0], "lat": pts[:, 0, 1]},
                              index=g["group"].astype(str).to_numpy()) if len(g) else pd.DataFrame(columns=["lon", "lat"])
            at = at[~at.index.duplicated(keep="last")]
            a, b = cc["group_a"].astype(str), cc["group_b"].astype(str)
            both = (a.isin(at.index) & b.isin(at.index)).to_numpy()
            ca, cb = at.reindex(a[both]).to_numpy(dtype=float), at.reindex(b[both]).to_numpy(dtype=float)
            layers["conflicts"] = _Layer("conflicts", cc[both].reset_index(drop=True), _numbers(cc), "LineString",
                                         np.stack([ca, cb], axis=1).reshape(-1, 2, 2))
    return layers


def geo_files(tables: dict[str, pd.DataFrame], manifest: dict) -> dict[str, bytes]:
    """places.geojson, territories.geojson and (with geopandas and pyogrio) places.gpkg; {} without places."""
    layers = _layers(tables, manifest)
    if layers is None:
        return {}
    files = {"places.geojson": _collection("cells", layers["cells"].features()),
             "territories.geojson": _collection("territories", np.concatenate(
                 [layers["territories"].features(), layers["conflicts"].features()]))}
    gpkg = _gpkg(layers)
    if gpkg is not None:
        files["places.gpkg"] = gpkg
    return files


def _gpkg(layers: dict[str, _Layer]) -> bytes | None:
    try:
        import geopandas  # noqa: F401
        import pyogrio
    except ImportError:      # pragma: no cover - both are in the project's environment
        return None
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": PINNED_DATE, "OGR_SQLITE_JOURNAL": "OFF"})
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "places.gpkg"
        for name in ("cells", "territories", "conflicts"):
            layer = layers[name]
            if not len(layer.coords):
                continue
            layer.frame().to_file(path, layer=name, driver="GPKG", engine="pyogrio",
                                  mode="a" if path.exists() else "w")
        if not path.exists():
            return None
        return path.read_bytes()


__all__ = ["geo_files"]
