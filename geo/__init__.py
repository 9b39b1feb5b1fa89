"""gridmap's analysis on GeoDataFrames: pure functions in, findings and metrics out (metres).

The small public API for notebooks; everything measures in the dataset's local metric CRS.

>>> import geopandas as gpd, shapely
>>> import geo
>>> cells = gpd.GeoDataFrame(      # two grid cells in CGCS2000 / GK CM 90E, 10 m overlap
...     {"code": ["A", "B"], "name": ["a", "b"]},
...     geometry=[shapely.box(500000, 3280000, 500100, 3280100),
...               shapely.box(500090, 3280000, 500200, 3280100)], crs="EPSG:4539")
>>> report = geo.check({"grid": cells})
>>> report.summary()
{'overlap': 1}
>>> float(report.findings.area_m2.iloc[0])
1000.0
>>> lonlat = cells.to_crs("EPSG:4490")
>>> p = lonlat.geometry.iloc[0].centroid
>>> geo.lookup({"grid": lonlat}, p.x, p.y)["grid"]["code"]
'A'

Four cells of one community holding 150, 250, 350 and 450 households; proposed cells
within a band of 250–350 households each:

>>> cells = gpd.GeoDataFrame(
...     {"code": [f"5401020010010{i:02d}" for i in range(4)], "name": list("abcd"),
...      "parent_code": "540102001001", "households": [150, 250, 350, 450],
...      "population": 1000},
...     geometry=[shapely.box(500000 + 200 * i, 3280000, 500200 + 200 * i, 3280400)
...               for i in range(4)], crs="EPSG:4539")
>>> community = gpd.GeoDataFrame(
...     {"code": ["540102001001"], "name": ["x"], "parent_code": ["540102001"]},
...     geometry=[shapely.box(500000, 3280000, 500800, 3280400)], crs="EPSG:4539")
>>> proposal = geo.propose({"community": community, "grid": cells},
...                        community="540102001001", band=(250, 350))
>>> proposal.current["cells_in_band"], proposal.metrics["cells_in_band"], proposal.feasible
(2, 4, True)
"""

from __future__ import annotations

from geo.dataset import Dataset
from geo.errors import GridmapError

__all__ = ["Dataset", "GridmapError", "check", "lookup", "propose"]


def check(layers, **options):
    """Check a dataset (a :class:`Dataset` or ``{kind: GeoDataFrame}``): every rule on
    every layer present; returns a :class:`geo.checker.Report` (see
    :func:`geo.checker.check_dataset` for ``tolerances`` and ``progress``). A dataset whose
    streets lie in more than one projection zone is checked part by part, each part in its
    own zone (:func:`geo.partitioned.check_partitioned`)."""
    from geo.checker import check_dataset
    from geo.partitioned import check_partitioned, spans_zones

    ds = Dataset.of(layers)  # one Dataset: its projected copies serve both steps
    if spans_zones(ds):
        return check_partitioned(ds, **options)
    return check_dataset(ds, **options)


def lookup(layers, lon: float, lat: float) -> dict:
    """Who is responsible at a point (lon/lat in the dataset's geographic CRS): for each
    partition layer present every feature holding it and whether that is one, an overlap
    (交叉管), a gap (三不管) or none needed (see :meth:`geo.locator.Locator.locate`; build
    a Locator yourself for many queries)."""
    from geo.locator import Locator

    return Locator(layers).locate(lon, lat)


def propose(
    layers,
    *,
    community: str | None = None,
    street: str | None = None,
    band: tuple[float, float] = (300, 500),
    **options,
):
    """Propose grid cells for a community or a whole street within a household ``band``
    (see :func:`geo.proposals.propose_for`)."""
    from geo.proposals import propose_for

    return propose_for(layers, community=community, street=street, band=band, **options)
