"""The projection of many points in two threads gives the same bits as one pyproj call."""
import numpy as np

from fdnet.places import grid as G


def test_split_projection_is_the_same(monkeypatch):
    from pyproj import Transformer
    rng = np.random.default_rng(0)
    lat, lon = 41.8 + rng.normal(0, 0.05, 5001), -87.7 + rng.normal(0, 0.05, 5001)
    crs = G.local_crs(41.8, -87.7)
    x0, y0 = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    monkeypatch.setattr(G, "_SPLIT", 100)
    monkeypatch.setattr(G.os, "cpu_count", lambda: 2)
    lat_in, lon_in = lat.copy(), lon.copy()
    x1, y1 = G._transform("EPSG:4326", crs, lon, lat)
    assert np.array_equal(x0, x1) and np.array_equal(y0, y1)
    assert np.array_equal(lat, lat_in) and np.array_equal(lon, lon_in)      # the inputs are left alone
    g, x2, y2 = G.Grid.covering_points(lat, lon, cell_m=250, crs=crs)
    assert np.array_equal(x0, x2) and np.array_equal(y0, y2)
    x3, y3 = g.project(lat, lon)
    assert np.array_equal(x0, x3) and np.array_equal(y0, y3)
