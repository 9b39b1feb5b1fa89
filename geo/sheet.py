"""A community's grid map for paper: its cells, roads and facilities drawn to scale on an
SVG sheet, with the cells' serials and figures and a scale bar — geometry only, no HTML.

Coordinates are projected into the dataset's metric CRS (metres) and fitted to the sheet
(SVG user units, y down), so distances on paper are true to scale.
"""

from __future__ import annotations

import numpy as np
import shapely

from geo.dataset import Dataset
from geo.errors import NotFound

__all__ = ["Sheet", "community_index", "community_sheet"]


class Sheet:
    """Metric coordinates → SVG user units (y down), fitted to a ``width``×``height`` box.

    >>> s = Sheet((0, 0, 100, 50), width=220, height=220, margin=10)
    >>> s.scale, s.width, s.height
    (2.0, 220.0, 120.0)
    >>> s.path(shapely.box(0, 0, 10, 10))
    'M30.0 110.0 L30.0 90.0 L10.0 90.0 L10.0 110.0 L30.0 110.0 Z'
    """

    def __init__(self, bounds, width=1000.0, height=1000.0, margin=20.0):
        x0, y0, x1, y1 = bounds
        self.scale = min(
            (width - 2 * margin) / max(x1 - x0, 1e-9), (height - 2 * margin) / max(y1 - y0, 1e-9)
        )
        self.x0, self.y1, self.margin = x0, y1, margin
        self.width = (x1 - x0) * self.scale + 2 * margin
        self.height = (y1 - y0) * self.scale + 2 * margin

    def xy(self, coords: np.ndarray) -> np.ndarray:
        out = np.empty_like(coords)
        out[:, 0] = (coords[:, 0] - self.x0) * self.scale + self.margin
        out[:, 1] = (self.y1 - coords[:, 1]) * self.scale + self.margin
        return out

    def point(self, geom) -> tuple[float, float]:
        ((x, y),) = self.xy(shapely.get_coordinates(geom))
        return float(x), float(y)

    def path(self, geom) -> str:
        """An SVG path ``d`` for polygons (rings closed) and lines."""
        parts = []
        for g in shapely.get_parts(geom):
            rings = [g.exterior, *g.interiors] if g.geom_type == "Polygon" else [g]
            for ring in rings:
                pts = self.xy(shapely.get_coordinates(ring))
                d = "M" + " L".join(f"{x:.1f} {y:.1f}" for x, y in pts)
                parts.append(d + (" Z" if g.geom_type == "Polygon" else ""))
        return " ".join(parts)


def _needs(ds: Dataset) -> None:
    if "community" not in ds or "grid" not in ds:
        raise NotFound("printing needs community and grid layers", zh="打印需要社区和网格图层")


def community_index(layers) -> list[dict]:
    """Every community with its number of cells and households, by code."""
    ds = Dataset.of(layers)
    _needs(ds)
    grid = ds["grid"]
    counts = grid.groupby(grid["parent_code"].astype(str))["households"].agg(["size", "sum"])
    return [
        {"code": str(c.code), "name": c.name,
         "cells": int(counts["size"].get(str(c.code), 0)),
         "households": int(counts["sum"].get(str(c.code), 0))}
        for c in ds["community"].sort_values("code").itertuples()
    ]  # fmt: skip


def _scale_bar(width_m: float) -> float:
    """A round length (1, 2 or 5 × 10^k m) about a fifth of ``width_m``."""
    span = width_m / 5
    bar = float(10 ** np.floor(np.log10(max(span, 1))))
    return bar * (5 if span / bar >= 5 else 2 if span / bar >= 2 else 1)


def community_sheet(layers, code: str, *, width: float = 1000, height: float = 1300) -> dict:
    """The sheet of community ``code``: its outline, cells (serial within the community,
    households, population, area in km²), roads and facilities inside it as SVG, the
    street's name, a scale bar (``bar_m`` metres, ``bar_px`` units) and the metric CRS."""
    ds = Dataset.of(layers)
    _needs(ds)
    comm = ds.metric("community")
    row = comm[comm["code"].astype(str) == code]
    if len(row) != 1:
        raise NotFound(
            f"no community with code '{code}'; select a grid cell on the map "
            "first, or give the community's code",
            zh=f"没有编码为 {code} 的社区；请先在地图上选择一个网格，或给出社区编码",
        )
    outline = row.geometry.iloc[0]
    grid = ds.metric("grid")
    cells = grid[grid["parent_code"].astype(str) == code].sort_values("code", kind="stable")
    sheet = Sheet(outline.bounds, width, height)
    roads = []
    if "road" in ds:
        r = ds.metric("road")
        inside = shapely.intersection(r.geometry.values[r.intersects(outline).to_numpy()], outline)
        roads = [sheet.path(g) for g in inside[shapely.length(inside) > 1.0]]
    facilities = []
    if "facility" in ds:
        f = ds.metric("facility")
        f = f[f.within(outline)]
        facilities = [dict(zip(("x", "y"), sheet.point(p.geometry)), name=p.name, kind=p.kind)
                      for p in f.itertuples()]  # fmt: skip
    drawn = []
    for c in cells.itertuples():
        # labelled by the cell's serial within the community (its code after the
        # community's), which is what grid staff call it
        serial = c.code[len(code) :] if str(c.code).startswith(code) else c.code
        x, y = sheet.point(c.geometry.representative_point())
        drawn.append({"serial": serial, "code": c.code, "name": c.name,
                      "d": sheet.path(c.geometry), "x": x, "y": y,
                      "households": c.households, "population": c.population,
                      "floating": getattr(c, "floating_population", None),
                      "area_km2": c.geometry.area / 1e6})  # fmt: skip
    street = ""
    if "street" in ds:
        st = ds["street"]
        hit = st[st["code"].astype(str) == str(row["parent_code"].iloc[0])]
        street = hit["name"].iloc[0] if len(hit) else ""
    bar_m = _scale_bar(outline.bounds[2] - outline.bounds[0])
    return {"community": row.iloc[0], "street": street, "outline": sheet.path(outline),
            "cells": drawn, "roads": roads, "facilities": facilities,
            "width": sheet.width, "height": sheet.height, "bar_m": bar_m,
            "bar_px": bar_m * sheet.scale, "total_households": int(cells["households"].sum()),
            "crs": ds.metric_crs}  # fmt: skip
