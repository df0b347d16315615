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

from dataclasses import dataclass

import numpy as np

from ..errors import UsageError


def local_crs(lat0: float, lon0: float) -> str:
    """The PROJ string of the local azimuthal equidistant plane centred on (lat0, lon0), in metres."""
    return f"+proj=aeqd +lat_0={lat0:.6f} +lon_0={lon0:.6f} +datum=WGS84 +units=m +no_defs"


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
        lat = np.asarray(lat, float)
        lon = np.asarray(lon, float)
        crs = crs or local_crs(float(np.median(lat)), float(np.median(lon)))
        from pyproj import Transformer
        t = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        x, y = t.transform(lon, lat)
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
        return cls(crs, float(x0), float(y0), float(cell_m), n_rows, n_cols)

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
        x, y = self._fwd().transform(np.asarray(lon, float), np.asarray(lat, float))
        return np.asarray(x, float), np.asarray(y, float)

    def unproject(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """(lat, lon) of plane points."""
        lon, lat = self._inv().transform(np.asarray(x, float), np.asarray(y, float))
        return np.asarray(lat, float), np.asarray(lon, float)

    def cell_of(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Flat cell index (row-major) of each point; -1 outside the grid."""
        c = np.floor((np.asarray(x) - self.x0) / self.cell_m).astype(np.int64)
        r = np.floor((np.asarray(y) - self.y0) / self.cell_m).astype(np.int64)
        ok = (c >= 0) & (c < self.n_cols) & (r >= 0) & (r < self.n_rows)
        return np.where(ok, r * self.n_cols + c, -1)

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
