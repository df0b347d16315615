"""Cells of the study area: a local metric projection, a square grid, counts per cell, kernel density.

Coordinates (WGS84 lat/lon) are projected with :mod:`pyproj` to a local azimuthal equidistant plane centred on
the median of the incidents' coordinates (metres; distances within a city are true to well under 0.1%). The study
area is the bounding box of the incidents in the window, cut into square cells of ``cell_m`` metres; a cell's
``cell_id`` is ``R<row>C<col>`` (rows from the south, columns from the west, zero-padded so that the text order
is the row-major order). Counts per cell are one :func:`numpy.bincount`; the kernel density is a Gaussian
kernel applied to the binned counts (:func:`scipy.ndimage.gaussian_filter`), in events per km².

>>> import numpy as np
>>> g = Grid.covering(np.array([40.0, 40.01]), np.array([-100.0, -100.01]), cell_m=500)
>>> g.n_cells, g.cell_ids[:2].tolist()
(8, ['R0C0', 'R0C1'])
>>> x, y = g.project(np.array([40.0]), np.array([-100.0]))
>>> int(g.cell_of(x, y)[0]) == g.n_cols - 1   # the south-east corner: row 0, last column
True
>>> int(g.counts(g.cell_of(x, y)).sum())
1
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..errors import UsageError


def local_crs(lat0: float, lon0: float) -> str:
    """The PROJ string of the local azimuthal equidistant plane centred on (lat0, lon0), in metres."""
    return f"+proj=aeqd +lat_0={lat0:.6f} +lon_0={lon0:.6f} +datum=WGS84 +units=m +no_defs"


_SPLIT = 200_000      # points from which a projection runs in two threads


def _transform(crs_from: str, crs_to: str, a, b) -> tuple[np.ndarray, np.ndarray]:
    """``Transformer.from_crs(crs_from, crs_to, always_xy=True).transform(a, b)``, with many points in two
    halves, the second in a background thread: pyproj releases the GIL around PROJ and each point is
    projected on its own, so the values are the same bits (checked on the 1.85M incidents at a million
    people, 1.2 s on one core), and two free cores can share the work. Each thread has its own Transformer
    (they are not thread-safe); the halves are projected in place in the copies pyproj would have made, so
    the memory is the same."""
    from pyproj import Transformer
    a = np.asarray(a)
    b = np.asarray(b)
    if a.ndim != 1 or a.shape != b.shape or len(a) < _SPLIT or (os.cpu_count() or 1) < 2:
        return Transformer.from_crs(crs_from, crs_to, always_xy=True).transform(a, b)
    a = np.array(a, dtype=float, order="C")
    b = np.array(b, dtype=float, order="C")
    from ..background import Background
    half = len(a) // 2

    def part(lo, hi):
        Transformer.from_crs(crs_from, crs_to, always_xy=True).transform(a[lo:hi], b[lo:hi], inplace=True)
    second = Background(part, half, len(a), name="fdnet-project")
    try:
        part(0, half)
    finally:
        second.result()             # joined either way; its error is raised when the first half went well
    return a, b


@dataclass(frozen=True)
class Grid:
    """A square grid over the study area in a local metric plane (see the module docstring)."""

    crs: str
    x0: float            # west edge, metres
    y0: float            # south edge, metres
    cell_m: float
    n_rows: int
    n_cols: int

    @classmethod
    def covering(cls, lat: np.ndarray, lon: np.ndarray, *, cell_m: float, max_cells: int = 4_000_000,
                 crs: str | None = None) -> "Grid":
        """The grid of ``cell_m`` cells over the bounding box of the points (at least one cell).

        A box that would need more than ``max_cells`` cells is refused (UsageError, exit 2): one valid
        coordinate far from the rest (a geocoding default, a sign error) would otherwise ask for a grid the
        size of a continent."""
        return cls.covering_points(lat, lon, cell_m=cell_m, max_cells=max_cells, crs=crs)[0]

    @classmethod
    def covering_points(cls, lat: np.ndarray, lon: np.ndarray, *, cell_m: float, max_cells: int = 4_000_000,
                        crs: str | None = None) -> tuple["Grid", np.ndarray, np.ndarray]:
        """:meth:`covering` and the points in the grid's plane (:meth:`project`), projected once."""
        lat = np.asarray(lat, float)
        lon = np.asarray(lon, float)
        crs = crs or local_crs(float(np.median(lat)), float(np.median(lon)))
        x, y = _transform("EPSG:4326", crs, lon, lat)
        x0 = np.floor(x.min() / cell_m) * cell_m
        y0 = np.floor(y.min() / cell_m) * cell_m
        n_cols = int(np.floor((x.max() - x0) / cell_m)) + 1
        n_rows = int(np.floor((y.max() - y0) / cell_m)) + 1
        if n_cols * n_rows > max_cells:
            raise UsageError(
                f"places: the incidents' coordinates span {n_cols * cell_m / 1000:,.1f} km by "
                f"{n_rows * cell_m / 1000:,.1f} km, {n_cols * n_rows:,} cells of {cell_m:g} m, more than "
                f"places.max_cells ({max_cells:,}); check incidents.csv for coordinates far from the rest "
                "(a geocoder's default point, a lost minus sign), or raise places.cell_m")
        return cls(crs, float(x0), float(y0), float(cell_m), n_rows, n_cols), x, y

    @property
    def n_cells(self) -> int:
        return self.n_rows * self.n_cols

    def _fwd(self):
        from pyproj import Transformer
        return Transformer.from_crs("EPSG:4326", self.crs, always_xy=True)

    def _inv(self):
        from pyproj import Transformer
        return Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True)

    def project(self, lat, lon) -> tuple[np.ndarray, np.ndarray]:
        """Metres (x east, y north) in the grid's plane."""
        x, y = _transform("EPSG:4326", self.crs, np.asarray(lon, float), np.asarray(lat, float))
        return np.asarray(x, float), np.asarray(y, float)

    def unproject(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """(lat, lon) of plane points."""
        lon, lat = self._inv().transform(np.asarray(x, float), np.asarray(y, float))
        return np.asarray(lat, float), np.asarray(lon, float)

    def cell_of(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Flat cell index (row-major) of each point; -1 outside the grid."""
        # in place, the same operations (one float temporary per axis, not three: 14 MB each per 1.8M points)
        c = self._index(x, self.x0)
        r = self._index(y, self.y0)
        ok = (c >= 0) & (c < self.n_cols) & (r >= 0) & (r < self.n_rows)
        r *= self.n_cols
        r += c
        del c
        r[~ok] = -1
        return r

    def _index(self, v, v0: float) -> np.ndarray:
        """floor((v - v0) / cell_m) as int64."""
        t = np.subtract(np.asarray(v), v0)
        t /= self.cell_m
        np.floor(t, out=t)
        return t.astype(np.int64)

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Plane coordinates of every cell's centre, in flat order."""
        k = np.arange(self.n_cells)
        return (self.x0 + (k % self.n_cols + 0.5) * self.cell_m, self.y0 + (k // self.n_cols + 0.5) * self.cell_m)

    def subpoints(self, m: int = 3) -> tuple[np.ndarray, np.ndarray]:
        """An m×m lattice of points inside every cell (cell-major: cell 0's m² points first), for the
        share of a cell's area within a distance of something."""
        xc, yc = self.centres()
        off = (np.arange(m) + 0.5) / m - 0.5
        ox, oy = np.meshgrid(off, off)
        return ((xc[:, None] + ox.ravel()[None, :] * self.cell_m).ravel(),
                (yc[:, None] + oy.ravel()[None, :] * self.cell_m).ravel())

    @property
    def cell_ids(self) -> np.ndarray:
        """``R<row>C<col>`` per cell, zero-padded to the grid's widest row and column numbers."""
        k = np.arange(self.n_cells)
        wr, wc = len(str(self.n_rows - 1)), len(str(self.n_cols - 1))
        r = np.char.zfill((k // self.n_cols).astype(str), wr)
        c = np.char.zfill((k % self.n_cols).astype(str), wc)
        return np.char.add(np.char.add("R", r), np.char.add("C", c)).astype(object)

    def counts(self, cells: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Events per cell (cells from :meth:`cell_of`; -1 ignored)."""
        ok = cells >= 0
        return np.bincount(cells[ok], weights=None if weights is None else weights[ok], minlength=self.n_cells)

    def smooth(self, per_cell: np.ndarray, bandwidth_m: float) -> np.ndarray:
        """Gaussian kernel density of binned counts, per km² (bandwidth = the kernel's standard deviation)."""
        from scipy.ndimage import gaussian_filter
        a = np.asarray(per_cell, float).reshape(self.n_rows, self.n_cols)
        s = gaussian_filter(a, sigma=bandwidth_m / self.cell_m, mode="constant", truncate=4.0)
        return s.ravel() / (self.cell_m / 1000.0) ** 2

    def blocks(self, block_m: float) -> np.ndarray:
        """Block of ``block_m`` metres of every cell (for the block-robust intervals)."""
        b = max(1, int(round(block_m / self.cell_m)))
        k = np.arange(self.n_cells)
        return (k // self.n_cols // b) * (self.n_cols // b + 1) + (k % self.n_cols) // b

    @property
    def kind(self) -> str:
        return "square"


def _h3():
    try:
        import h3
    except ImportError:
        raise UsageError("places.grid is h3 but the h3 package is not installed: pip install 'fdnet[h3]' "
                         "(or set places.grid: square)") from None
    return h3


@dataclass(frozen=True, eq=False)
class H3Grid:
    """Uber's H3 hexagons at ``resolution`` over the study area (``places.grid: h3``; docs/places.md).

    The cells are every H3 cell whose centre lies in the incidents' bounding box grown by two edge lengths
    (so every incident's own cell is in), sorted by their H3 index (``cell_id``). A point's cell is the nearest
    cell centre in the local plane (a :class:`scipy.spatial.cKDTree` query), and :func:`h3.latlng_to_cell`
    itself decides the points that are nearly as close to a second centre (within a tenth of an edge): H3's
    hexagons are not quite regular in the local plane, so only there could the nearest centre differ. The
    cells tile the area with equal areas to well under 1% in a city; ``cell_m`` is the side of the square of
    the same mean area (territory areas, the map). Counts and the kernel density are those of the square
    grid with the hexagons' centres: the density is a Gaussian kernel over the centres within four bandwidths
    (a sparse sum), per km². h3-py has no array interface, so the grid's cells are listed by one
    :func:`h3.cell_to_latlng` call each, once per run."""

    crs: str
    resolution: int
    ids: np.ndarray          # H3 indexes (text), sorted
    cx: np.ndarray           # centres in the local plane, metres
    cy: np.ndarray
    cell_m: float
    edge_m: float

    @classmethod
    def covering(cls, lat: np.ndarray, lon: np.ndarray, *, resolution: int, max_cells: int = 4_000_000,
                 crs: str | None = None) -> "H3Grid":
        h3 = _h3()
        lat = np.asarray(lat, float)
        lon = np.asarray(lon, float)
        crs = crs or local_crs(float(np.median(lat)), float(np.median(lon)))
        from pyproj import Transformer
        fwd = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        inv = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        x, y = fwd.transform(lon, lat)
        edge = float(h3.average_hexagon_edge_length(resolution, unit="m"))
        area = float(h3.average_hexagon_area(resolution, unit="m^2"))
        pad = 2.0 * edge
        bx0, bx1, by0, by1 = x.min() - pad, x.max() + pad, y.min() - pad, y.max() + pad
        est = (bx1 - bx0) * (by1 - by0) / area
        if est > max_cells:
            raise UsageError(
                f"places: the incidents' coordinates span {(bx1 - bx0) / 1000:,.1f} km by {(by1 - by0) / 1000:,.1f} "
                f"km, about {int(est):,} H3 cells of resolution {resolution}, more than places.max_cells "
                f"({max_cells:,}); check incidents.csv for coordinates far from the rest, or lower "
                "places.h3_resolution")
        # the box's outline, densified so its edges stay straight in the plane
        t = np.linspace(0.0, 1.0, 33)[:-1]
        ox = np.concatenate([bx0 + t * (bx1 - bx0), np.full(32, bx1), bx1 - t * (bx1 - bx0), np.full(32, bx0)])
        oy = np.concatenate([np.full(32, by0), by0 + t * (by1 - by0), np.full(32, by1), by1 - t * (by1 - by0)])
        olon, olat = inv.transform(ox, oy)
        cells = h3.polygon_to_cells(h3.LatLngPoly(list(zip(np.asarray(olat).tolist(), np.asarray(olon).tolist()))),
                                    resolution)
        ids = np.array(sorted(cells), dtype=object)
        ll = np.array([h3.cell_to_latlng(c) for c in ids], dtype=float).reshape(-1, 2)
        cx, cy = fwd.transform(ll[:, 1], ll[:, 0])
        return cls(crs, int(resolution), ids, np.asarray(cx, float), np.asarray(cy, float), float(np.sqrt(area)),
                   edge)

    @property
    def kind(self) -> str:
        return "h3"

    @property
    def n_cells(self) -> int:
        return len(self.ids)

    n_rows = None
    n_cols = None

    def _tree(self):
        t = self.__dict__.get("_kd")
        if t is None:
            from scipy.spatial import cKDTree
            t = cKDTree(np.column_stack([self.cx, self.cy]))
            object.__setattr__(self, "_kd", t)
        return t

    project = Grid.project
    unproject = Grid.unproject
    _fwd = Grid._fwd
    _inv = Grid._inv

    def cell_of(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Index (into ``cell_ids``) of each point's H3 cell; -1 when it is not one of the grid's."""
        x = np.asarray(x, float)
        y = np.asarray(y, float)
        out = np.full(len(x), -1, dtype=np.int64)
        if not len(x) or not self.n_cells:
            return out
        d, i = self._tree().query(np.column_stack([x, y]), k=min(2, self.n_cells))
        d, i = d.reshape(len(x), -1), i.reshape(len(x), -1)
        out[:] = i[:, 0]
        if d.shape[1] > 1:
            near = np.flatnonzero(d[:, 1] - d[:, 0] < 0.1 * self.edge_m)
            if len(near):
                h3 = _h3()
                lat, lon = self.unproject(x[near], y[near])
                exact = np.array([h3.latlng_to_cell(a, b, self.resolution) for a, b in zip(lat, lon)], dtype=object)
                pos = np.searchsorted(self.ids, exact)
                pos = np.minimum(pos, self.n_cells - 1)
                out[near] = np.where(self.ids[pos] == exact, pos, -1)
        return out

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        return self.cx, self.cy

    def subpoints(self, m: int = 3) -> tuple[np.ndarray, np.ndarray]:
        """Seven points per cell (its centre and six at 0.6 of the edge length around it, cell-major), for the
        share of a cell's area within a distance of something (``m`` is the square grid's and is ignored)."""
        a = np.deg2rad(np.arange(6) * 60.0 + 30.0)
        ox = np.r_[0.0, 0.6 * self.edge_m * np.cos(a)]
        oy = np.r_[0.0, 0.6 * self.edge_m * np.sin(a)]
        return (self.cx[:, None] + ox[None, :]).ravel(), (self.cy[:, None] + oy[None, :]).ravel()

    @property
    def cell_ids(self) -> np.ndarray:
        return self.ids

    counts = Grid.counts

    def smooth(self, per_cell: np.ndarray, bandwidth_m: float) -> np.ndarray:
        """Gaussian kernel density (standard deviation ``bandwidth_m``) of the counts at the cell centres, per
        km², kernels cut at four bandwidths."""
        v = np.asarray(per_cell, float)
        pairs = self._tree().query_pairs(4.0 * bandwidth_m, output_type="ndarray")
        i, j = pairs[:, 0], pairs[:, 1]
        d2 = (self.cx[i] - self.cx[j]) ** 2 + (self.cy[i] - self.cy[j]) ** 2
        w = np.exp(-d2 / (2.0 * bandwidth_m ** 2))
        s = v + np.bincount(i, weights=w * v[j], minlength=self.n_cells) \
            + np.bincount(j, weights=w * v[i], minlength=self.n_cells)
        return s / (2.0 * np.pi * (bandwidth_m / 1000.0) ** 2)

    def blocks(self, block_m: float) -> np.ndarray:
        bx = np.floor((self.cx - self.cx.min()) / block_m).astype(np.int64)
        by = np.floor((self.cy - self.cy.min()) / block_m).astype(np.int64)
        return by * (int(bx.max()) + 1) + bx


def h3_rings(ids) -> np.ndarray:
    """(cells, 7, 2) closed lon/lat rings of H3 cells (a pentagon repeats its last vertex): one
    :func:`h3.cell_to_boundary` call per cell, h3-py having no array interface."""
    h3 = _h3()
    rings = [h3.cell_to_boundary(str(c)) for c in ids]
    if not rings:
        return np.zeros((0, 7, 2))
    if any(len(r) != 6 for r in rings):         # a pentagon (none lies in a city; twelve on the globe)
        rings = [tuple(r) + (r[-1],) * (6 - len(r)) for r in rings]
    a = np.asarray(rings, float)[:, :, ::-1]
    return np.concatenate([a, a[:, :1]], axis=1)
