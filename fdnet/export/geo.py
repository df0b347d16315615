"""``--format geo``: the places analysis as GIS layers for QGIS or ArcGIS (docs/exports.md, docs/places.md).

From a run with places.csv: ``places.geojson`` (one polygon per cell with its counts and risk; RFC 7946,
WGS84 lon/lat), ``territories.geojson`` (each group's territory centre as a point, conflicts between
territories as lines) and, when geopandas and pyogrio are installed, ``places.gpkg`` holding the layers
``cells``, ``territories`` and ``conflicts``. Cell squares are rebuilt in the run's local metric plane
(manifest ``places.crs``) and unprojected, so they tile exactly. The GeoPackage's timestamps are pinned
(``OGR_CURRENT_DATE``), so the same run exported twice gives the same bytes. A run without places.csv
exports none of these.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

PINNED_DATE = "2000-01-01T00:00:00.000Z"


def _num(s: pd.Series) -> np.ndarray:
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)


def _props(df: pd.DataFrame, i: int, numbers: set[str]) -> dict:
    out = {}
    for c in df.columns:
        v = df[c].iloc[i]
        if c in numbers:
            f = pd.to_numeric(v, errors="coerce")
            out[c] = None if pd.isna(f) else (int(f) if float(f).is_integer() and "." not in str(v) else float(f))
        else:
            out[c] = None if v is None else str(v)
    return out


def _cell_polygons(cells: pd.DataFrame, crs: str, cell_m: float) -> list[list[list[float]]]:
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
    return [[[float(a), float(b)] for a, b in zip(plon[i], plat[i])] for i in range(len(cells))]


def _numbers(df: pd.DataFrame) -> set[str]:
    from .runfolder import number_columns
    return set(number_columns(df))


def geo_layers(tables: dict[str, pd.DataFrame], manifest: dict) -> dict | None:
    """The layers as GeoJSON feature collections (dicts), or None without places.csv."""
    cells = tables.get("places")
    if cells is None:
        return None
    summ = manifest.get("places") or {}
    crs = summ.get("crs")
    cell_m = float(summ.get("cell_m") or 150)
    if not crs:
        from ..places.grid import local_crs
        crs = local_crs(float(np.nanmedian(_num(cells["lat"]))), float(np.nanmedian(_num(cells["lon"]))))
    polys = _cell_polygons(cells, crs, cell_m)
    nums = _numbers(cells)
    cell_features = [{"type": "Feature", "id": str(cells["cell_id"].iloc[i]),
                      "properties": _props(cells, i, nums), "geometry": {"type": "Polygon", "coordinates": [polys[i]]}}
                     for i in range(len(cells))]
    terr_features, line_features = [], []
    gt = tables.get("group_table")
    if gt is not None and {"territory_lat", "territory_lon"} <= set(gt.columns):
        keep = [c for c in ("group", "territory_lat", "territory_lon", "territory_incidents", "territory_cells",
                            "territory_km2", "members") if c in gt.columns]
        g = gt[keep]
        glat, glon = _num(g["territory_lat"]), _num(g["territory_lon"])
        gn = _numbers(g)
        pos = {}
        for i in range(len(g)):
            if np.isfinite(glat[i]) and np.isfinite(glon[i]):
                pos[str(g["group"].iloc[i])] = [float(glon[i]), float(glat[i])]
                terr_features.append({"type": "Feature", "properties": _props(g, i, gn),
                                      "geometry": {"type": "Point", "coordinates": pos[str(g["group"].iloc[i])]}})
        c = tables.get("conflicts")
        if c is not None and len(c):
            cc = c[[k for k in ("group_a", "group_b", "relation", "source", "shootings", "incidents") if k in c.columns]]
            cn = _numbers(cc)
            for i in range(len(cc)):
                a, b = str(cc["group_a"].iloc[i]), str(cc["group_b"].iloc[i])
                if a in pos and b in pos:
                    line_features.append({"type": "Feature", "properties": _props(cc, i, cn),
                                          "geometry": {"type": "LineString", "coordinates": [pos[a], pos[b]]}})
    fc = lambda feats, name: {"type": "FeatureCollection", "name": name, "features": feats}   # noqa: E731
    return {"cells": fc(cell_features, "cells"), "territories": fc(terr_features, "territories"),
            "conflicts": fc(line_features, "conflicts")}


def _dump(obj) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n").encode("utf-8")


def geo_files(tables: dict[str, pd.DataFrame], manifest: dict) -> dict[str, bytes]:
    """places.geojson, territories.geojson and (with geopandas and pyogrio) places.gpkg; {} without places."""
    layers = geo_layers(tables, manifest)
    if layers is None:
        return {}
    files = {"places.geojson": _dump(layers["cells"]),
             "territories.geojson": _dump({"type": "FeatureCollection", "name": "territories",
                                           "features": layers["territories"]["features"]
                                           + layers["conflicts"]["features"]})}
    gpkg = _gpkg(layers)
    if gpkg is not None:
        files["places.gpkg"] = gpkg
    return files


def _gpkg(layers: dict) -> bytes | None:
    try:
        import geopandas as gpd
        import pyogrio
    except ImportError:      # pragma: no cover - both are in the project's environment
        return None
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": PINNED_DATE, "OGR_SQLITE_JOURNAL": "OFF"})
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "places.gpkg"
        for name in ("cells", "territories", "conflicts"):
            fc = layers[name]
            if not fc["features"]:
                continue
            gdf = gpd.GeoDataFrame.from_features(fc["features"], crs="EPSG:4326")
            gdf.to_file(path, layer=name, driver="GPKG", engine="pyogrio", mode="a" if path.exists() else "w")
        if not path.exists():
            return None
        return path.read_bytes()


__all__ = ["geo_files", "geo_layers"]
