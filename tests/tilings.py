"""Tilings whose answer is known by construction, for tests and benchmarks.

:func:`hierarchy` builds streets ⊃ communities ⊃ grid cells that tile each other exactly
(every shared edge has the same vertices on both sides), in metres (EPSG:4539, near Lhasa).
:func:`add_noise` then makes the boundaries disagree the way real files do — extra vertices
on one side only (T-junctions), a reprojection round trip — without changing any area by
more than floating-point noise. Defects are injected by the tests themselves.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

__all__ = ["hierarchy", "add_noise", "squares", "cell", "box", "strip_city"]

ORIGIN = (480_000.0, 3_270_000.0)  # metres in EPSG:4539, near Lhasa


def _groups(points: np.ndarray, n_groups: int, rng) -> np.ndarray:
    """Assign points to the nearest of ``n_groups`` random seeds (contiguous groups)."""
    seeds = points[rng.choice(len(points), n_groups, replace=False)]
    tree = shapely.STRtree(shapely.points(seeds))
    return tree.nearest(shapely.points(points))


def _dissolve(geoms: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(keys, kind="stable")
    uniq, starts = np.unique(keys[order], return_index=True)
    bounds = list(starts[1:]) + [len(order)]
    merged = [shapely.coverage_union_all(geoms[order[a:b]]) for a, b in zip(starts, bounds)]
    return uniq, np.array(merged, dtype=object)


def hierarchy(
    n_cells: int,
    *,
    cells_per_community: int = 12,
    communities_per_street: int = 20,
    cell_size: float = 150.0,
    seed: int = 0,
    crs: str = "EPSG:4539",
):
    """Streets, communities and grid cells (GeoDataFrames in metres) tiling a square.

    Grid cells are Voronoi cells of random points; communities are groups of neighbouring
    cells, streets groups of neighbouring communities, each the exact union of its parts.
    Codes follow the Chinese pattern (street 9 digits, community 12, grid 15).
    """
    rng = np.random.default_rng(seed)
    side = np.sqrt(n_cells) * cell_size
    x0, y0 = ORIGIN
    pts = np.column_stack(
        [rng.uniform(x0, x0 + side, n_cells), rng.uniform(y0, y0 + side, n_cells)]
    )
    square = shapely.box(x0, y0, x0 + side, y0 + side)
    cells = shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=square, ordered=True)
    cells = shapely.intersection(np.asarray(cells.geoms), square)
    n_comm = max(1, n_cells // cells_per_community)
    n_street = max(1, n_comm // communities_per_street)
    comm_of_cell = _groups(pts, n_comm, rng)
    comm_ids, comm_geoms = _dissolve(cells, comm_of_cell)
    comm_pts = shapely.get_coordinates(shapely.point_on_surface(comm_geoms))
    street_of_comm = _groups(comm_pts, n_street, rng)
    street_ids, street_geoms = _dissolve(comm_geoms, street_of_comm)

    street_code = {s: f"540102{i + 1:03d}" for i, s in enumerate(street_ids)}
    comm_code, serial = {}, {}
    for c, s in zip(comm_ids, street_of_comm):
        serial[s] = serial.get(s, 0) + 1
        comm_code[c] = f"{street_code[s]}{serial[s]:03d}"
    streets = gpd.GeoDataFrame(
        {
            "code": [street_code[s] for s in street_ids],
            "name": [f"街道{i + 1}" for i in range(len(street_ids))],
        },
        geometry=street_geoms,
        crs=crs,
    )
    communities = gpd.GeoDataFrame(
        {
            "code": [comm_code[c] for c in comm_ids],
            "name": [f"社区{i + 1}" for i in range(len(comm_ids))],
            "parent_code": [street_code[s] for s in street_of_comm],
        },
        geometry=comm_geoms,
        crs=crs,
    )
    grid_serial: dict = {}
    codes = []
    for c in comm_of_cell:
        grid_serial[c] = grid_serial.get(c, 0) + 1
        codes.append(f"{comm_code[c]}{grid_serial[c]:03d}")
    households = rng.integers(50, 950, n_cells)
    grids = gpd.GeoDataFrame(
        {
            "code": codes,
            "name": [f"网格{i + 1}" for i in range(n_cells)],
            "parent_code": [comm_code[c] for c in comm_of_cell],
            "households": households,
            "population": households * 3,
        },
        geometry=cells,
        crs=crs,
    )
    return streets, communities, grids


def add_noise(
    gdf: gpd.GeoDataFrame,
    *,
    share: float = 0.5,
    seed: int = 0,
    round_trip_crs: str | None = "EPSG:4490",
) -> gpd.GeoDataFrame:
    """The same tiling as real files have it: ``share`` of the features get extra vertices
    on their edges (T-junctions against their neighbours), and all go through a
    reprojection round trip. Areas change by floating-point noise only."""
    rng = np.random.default_rng(seed)
    out = gdf.copy()
    pick = rng.random(len(out)) < share
    geoms = out.geometry.values.copy()
    lengths = shapely.length(geoms[pick]) / 40.0
    dense = shapely.segmentize(geoms[pick], lengths)
    # GEOS's segmentize can collapse a valid but nearly degenerate ring (seen on a
    # difference result with a near-zero-width spike): keep those features as they were.
    same = np.isclose(shapely.area(dense), shapely.area(geoms[pick]), rtol=1e-9)
    geoms[np.flatnonzero(pick)[same]] = dense[same]
    out.geometry = geoms
    if round_trip_crs:
        out = out.to_crs(round_trip_crs).to_crs(gdf.crs)
    return out


def squares(n: int = 8, *, size: float = 100.0, block: int = 4, crs: str = "EPSG:4539"):
    """An n × n grid of ``size``-metre square cells; communities are ``block`` × ``block``
    blocks of cells, streets are the left and right halves. Areas are exact by construction.

    Cell (col, row) with col, row counted from the south-west corner has code
    ``community code + serial``; :func:`cell` finds one by position.
    """
    x0, y0 = ORIGIN
    grids, comms = [], {}
    for row in range(n):
        for col in range(n):
            bx, by = col // block, row // block
            street = f"540102{1 + (col >= n // 2):03d}"
            comm = f"{street}{1 + bx * (n // block) + by:03d}"
            comms.setdefault(comm, (street, []))[1].append(len(grids))
            grids.append(
                {
                    "code": f"{comm}{col:02d}{row:01d}",
                    "name": f"网格{col},{row}",
                    "parent_code": comm,
                    "households": 100 + col + row,
                    "population": 300,
                    "col": col,
                    "row": row,
                    "geometry": shapely.box(
                        x0 + col * size,
                        y0 + row * size,
                        x0 + (col + 1) * size,
                        y0 + (row + 1) * size,
                    ),
                }
            )
    grids = gpd.GeoDataFrame(grids, geometry="geometry", crs=crs)
    communities = gpd.GeoDataFrame(
        [
            {
                "code": c,
                "name": f"社区{c[-3:]}",
                "parent_code": s,
                "geometry": shapely.coverage_union_all(grids.geometry.values[idx]),
            }
            for c, (s, idx) in comms.items()
        ],
        geometry="geometry",
        crs=crs,
    )
    streets = gpd.GeoDataFrame(
        [
            {
                "code": s,
                "name": f"街道{s[-3:]}",
                "geometry": shapely.coverage_union_all(
                    communities.geometry.values[(communities["parent_code"] == s).to_numpy()]
                ),
            }
            for s in sorted(set(communities["parent_code"]))
        ],
        geometry="geometry",
        crs=crs,
    )
    return streets, communities, grids


def cell(grids: gpd.GeoDataFrame, col: int, row: int) -> int:
    """Row position of the square cell at (col, row)."""
    return int(
        np.flatnonzero((grids["col"] == col).to_numpy() & (grids["row"] == row).to_numpy())[0]
    )


def box(x0: float, y0: float, x1: float, y1: float):
    """A rectangle given in metres from :data:`ORIGIN`."""
    return shapely.box(ORIGIN[0] + x0, ORIGIN[1] + y0, ORIGIN[0] + x1, ORIGIN[1] + y1)


def strip_city():
    """:func:`squares` (8) with two police areas: PA1 is the west street and a 50 m strip
    of the east one (x 400–450, all 8 rows: the west half of column 4, 430 households and
    1,200 people), PA2 the east street less that strip; police posts P1 (west, PA1's), P2
    (in the strip, but PA2's) and P3 (east, PA2's), and station S1 (east). Returns
    (police, streets, grid, facilities)."""
    streets, _, grid = squares(8)
    police = gpd.GeoDataFrame(
        {"code": ["PA1", "PA2"], "name": ["一所", "二所"]},
        geometry=[box(0, 0, 450, 800), box(450, 0, 800, 800)],
        crs=grid.crs,
    )
    facilities = gpd.GeoDataFrame(
        {
            "code": ["P1", "P2", "P3", "S1"],
            "name": ["一站", "二站", "三站", "一所"],
            "kind": ["police_post"] * 3 + ["police_station"],
            "station": ["PA1", "PA2", "PA2", None],  # P2 is PA2's, in PA1's strip
        },
        geometry=[
            shapely.Point(ORIGIN[0] + x, ORIGIN[1] + y)
            for x, y in [(100, 100), (425, 100), (700, 700), (600, 300)]
        ],  # fmt: skip
        crs=grid.crs,
    )
    return police, streets, grid, facilities
