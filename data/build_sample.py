"""Build the bundled sample dataset ``data/lhasa.gpkg`` reproducibly from a seed.

    python -m data.build_sample [--seed 2024] [-o data/lhasa.gpkg]

The sample sits in the urban core of Lhasa's Chengguan district (城关区). Street, community
and road names are real names from the area; **every geometry and every figure is
illustrative**: streets, communities and grid cells are Voronoi tessellations seeded near
the places the names belong to, clipped to a coarse real outline of the district
(``chengguan_outline_gcj02.geojson``, converted from GCJ-02 to WGS 84 here). Households,
population and facilities are random draws shaped like the real city core (dense old town,
sparser edges). None of it is official data.

Geometry is built in metres in CGCS2000 / 3-degree Gauss-Kruger CM 90E (EPSG:4539) and
stored in CGCS2000 geographic coordinates (EPSG:4490). After the clean layers are built, a
handful of deliberate defects is injected at known places; they are written to
``data/lhasa_defects.csv`` (and documented in data/README.md) so that a user, and the
tests, can see the checker find exactly them.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components
from shapely.geometry import MultiPoint, Point, Polygon

from geo.chinacoords import gcj02_to_wgs84
from layers.storage import open_store

HERE = Path(__file__).resolve().parent
OUTLINE = HERE / "chengguan_outline_gcj02.geojson"
METRIC = "EPSG:4539"
STORED = "EPSG:4490"
DISTRICT_CODE = "540102"
# The urban core, lon/lat WGS 84: the valley north of the Lhasa river.
CORE_BOX = (91.045, 29.625, 91.215, 29.69)

# Streets (街道): name, approximate centre (lon, lat WGS 84), communities (社区).
STREETS = [
    ("金珠西路", (91.065, 29.660), ["金珠", "哲蚌", "罗布林卡", "西郊", "察古"]),
    ("公德林", (91.095, 29.662), ["公德林", "拉鲁", "宇拓", "白定", "格桑林卡"]),
    ("吉崩岗", (91.116, 29.655), ["吉崩岗", "布达拉", "雪", "德吉", "团结新村"]),
    ("扎细", (91.120, 29.675), ["扎细", "藏热", "娘热", "夺底", "色拉"]),
    ("冲赛康", (91.129, 29.660), ["冲赛康", "塔玛", "八朗学", "然玛", "林廓"]),
    ("八廓", (91.134, 29.652), ["鲁固", "八廓", "河坝林", "吉苏", "丹杰林"]),
    ("吉日", (91.143, 29.658), ["吉日", "俄杰塘", "夏萨苏", "雪新村", "邦达仓"]),
    ("两岛", (91.130, 29.640), ["仙足岛", "太阳岛", "雄嘎", "拉萨河", "江苏路"]),
    ("嘎玛贡桑", (91.160, 29.660), ["嘎玛贡桑", "当巴", "热木齐", "康昂东", "藏大"]),
    ("纳金", (91.192, 29.662), ["纳金", "嘎巴", "扎基", "加措", "蔡公堂"]),
]
# Police areas (派出所辖区): name and the streets each one follows.
POLICE_AREAS = [
    ("金珠西路派出所", ["金珠西路"]),
    ("公德林派出所", ["公德林"]),
    ("吉崩岗派出所", ["吉崩岗"]),
    ("扎细派出所", ["扎细"]),
    ("冲赛康派出所", ["冲赛康", "吉日"]),
    ("八廓派出所", ["八廓"]),
    ("两岛派出所", ["两岛"]),
    ("嘎玛贡桑派出所", ["嘎玛贡桑", "纳金"]),
]
ROAD_NAMES = [
    "北京中路",
    "北京东路",
    "北京西路",
    "金珠中路",
    "金珠西路",
    "江苏路",
    "林廓北路",
    "林廓东路",
    "林廓南路",
    "林廓西路",
    "宇拓路",
    "朵森格路",
    "娘热路",
    "纳金路",
    "色拉路",
    "当热中路",
    "藏大中路",
    "德吉路",
    "罗布林卡路",
    "民族路",
    "夺底路",
    "扎基路",
    "仙足岛路",
    "太阳岛一路",
    "格桑路",
    "八一路",
    "环城南路",
    "夏萨苏路",
]
OLD_TOWN = (91.1332, 29.6528)  # Jokhang temple, WGS 84: densest households

TARGET_GRIDS = 650


# --------------------------------------------------------------------------- helpers


def _to_metric(lon, lat):
    return gpd.GeoSeries([Point(lon, lat)], crs=STORED).to_crs(METRIC).iloc[0]


def random_points_in(poly: Polygon, n: int, rng: np.random.Generator, *, min_gap: float = 0.0):
    """n random points inside ``poly`` (rejection sampling), at least ``min_gap`` m apart."""
    x0, y0, x1, y1 = poly.bounds
    pts: list[Point] = []
    shapely.prepare(poly)
    tries = 0
    while len(pts) < n and tries < 200 * n:
        tries += 1
        p = Point(rng.uniform(x0, x1), rng.uniform(y0, y1))
        if not poly.contains(p):
            continue
        if min_gap and any(p.distance(q) < min_gap for q in pts):
            continue
        pts.append(p)
    return pts


def tessellate(parent: Polygon, seeds: list[Point]) -> list[Polygon]:
    """Voronoi cells of ``seeds`` clipped to ``parent``: an exact tiling of it."""
    if len(seeds) == 1:
        return [parent]
    cells = shapely.voronoi_polygons(MultiPoint(seeds), extend_to=parent.buffer(100), ordered=True)
    out = []
    for cell in cells.geoms:
        piece = cell.intersection(parent)
        if piece.geom_type == "MultiPolygon":  # keep the part holding most area
            piece = max(piece.geoms, key=lambda g: g.area)
        out.append(piece)
    return out


def _fix_tiling(parent: Polygon, cells: list[Polygon]) -> list[Polygon]:
    """Give any area dropped by keeping only main parts back to the neighbour that touches
    it, so the cells tile the parent exactly."""
    rest = parent.difference(shapely.union_all(cells))
    if rest.is_empty or rest.area < 1e-6:
        return cells
    cells = list(cells)
    for piece in getattr(rest, "geoms", [rest]):
        if piece.area < 1e-9:
            continue
        best = max(
            range(len(cells)), key=lambda i: cells[i].boundary.intersection(piece.boundary).length
        )
        cells[best] = cells[best].union(piece)
    return cells


def geo_order(geoms) -> np.ndarray:
    """Order for serial numbers: north to south in 300 m rows, west to east within a row."""
    c = shapely.centroid(np.asarray(geoms))
    x, y = shapely.get_x(c), shapely.get_y(c)
    return np.lexsort((x, -np.floor(y / 300.0)))


# --------------------------------------------------------------------------- layers


def core_area() -> Polygon:
    outline = gpd.read_file(OUTLINE)
    gcj = outline.geometry.iloc[0]
    wgs = shapely.transform(gcj, lambda c: np.column_stack(gcj02_to_wgs84(c[:, 0], c[:, 1])))
    core = wgs.intersection(shapely.box(*CORE_BOX))
    if core.geom_type == "MultiPolygon":
        core = max(core.geoms, key=lambda g: g.area)
    return gpd.GeoSeries([core], crs=STORED).to_crs(METRIC).iloc[0]


def build_hierarchy(rng: np.random.Generator):
    core = core_area()
    seeds = [_to_metric(*centre) for _, centre, _ in STREETS]
    street_polys = _fix_tiling(core, tessellate(core, seeds))
    streets, communities, grids = [], [], []
    ox, oy = _to_metric(*OLD_TOWN).coords[0]

    def density(pt):  # households per km², high in the old town, low at the edges
        d = np.hypot(pt.x - ox, pt.y - oy)
        return 900 + 9000 * np.exp(-d / 1800.0)

    for si, ((sname, _, cnames), spoly) in enumerate(zip(STREETS, street_polys), start=1):
        scode = f"{DISTRICT_CODE}{si:03d}"
        streets.append(
            {"code": scode, "name": f"{sname}街道", "parent_code": DISTRICT_CODE, "geometry": spoly}
        )
        cseeds = random_points_in(spoly, len(cnames), rng, min_gap=np.sqrt(spoly.area) / 6)
        cpolys = _fix_tiling(spoly, tessellate(spoly, cseeds))
        order = geo_order(cpolys)
        for ci, idx in enumerate(order, start=1):
            cpoly = cpolys[idx]
            communities.append(
                {
                    "code": f"{scode}{ci:03d}",
                    "name": f"{cnames[idx]}社区",
                    "parent_code": scode,
                    "geometry": cpoly,
                }
            )
    # Grid counts follow expected households (area × density).
    expected = np.array(
        [c["geometry"].area / 1e6 * density(c["geometry"].centroid) for c in communities]
    )
    n_grids = np.maximum(4, np.round(expected / expected.sum() * TARGET_GRIDS)).astype(int)
    for c, n, hh in zip(communities, n_grids, expected):
        cpoly = c["geometry"]
        gseeds = random_points_in(cpoly, n, rng, min_gap=np.sqrt(cpoly.area / n) / 3)
        gpolys = _fix_tiling(cpoly, tessellate(cpoly, gseeds))
        areas = np.array([g.area for g in gpolys])
        share = areas / areas.sum() * rng.lognormal(0.0, 0.55, len(gpolys))
        households = np.clip(np.round(share / share.sum() * hh * 1.1), 12, 1150).astype(int)
        for gi, idx in enumerate(geo_order(gpolys), start=1):
            h = int(households[idx])
            pop = int(round(h * rng.uniform(2.6, 3.4)))
            grids.append(
                {
                    "code": f"{c['code']}{gi:03d}",
                    "name": f"{c['name']}第{gi}网格",
                    "parent_code": c["code"],
                    "households": h,
                    "population": pop,
                    "floating_population": int(round(pop * rng.beta(2, 6))),
                    "geometry": gpolys[idx],
                }
            )
    frame = lambda rows: gpd.GeoDataFrame(rows, geometry="geometry", crs=METRIC)  # noqa: E731
    return frame(streets), frame(communities), frame(grids)


def build_police(streets: gpd.GeoDataFrame, communities: gpd.GeoDataFrame):
    by_name = {n.removesuffix("街道"): g for n, g in zip(streets["name"], streets.geometry)}
    street_code = dict(zip(streets["name"].str.removesuffix("街道"), streets["code"]))
    areas = []
    for i, (name, snames) in enumerate(POLICE_AREAS, start=1):
        areas.append(
            {
                "code": f"{DISTRICT_CODE}PA{i:02d}",
                "name": f"城关区公安分局{name}",
                "streets": [street_code[s] for s in snames],
                "geometry": shapely.union_all([by_name[s] for s in snames]),
            }
        )
    areas = gpd.GeoDataFrame(areas, geometry="geometry", crs=METRIC)
    # One police beat per community, two small neighbouring communities sometimes share one.
    beats = []
    for i, c in enumerate(communities.itertuples(), start=1):
        area_code = areas.loc[[c.parent_code in s for s in areas["streets"]], "code"].iloc[0]
        beats.append(
            {
                "code": f"{DISTRICT_CODE}PB{i:03d}",
                "name": f"{c.name.removesuffix('社区')}社区警务区",
                "parent_code": area_code,
                "geometry": c.geometry,
            }
        )
    beats = gpd.GeoDataFrame(beats, geometry="geometry", crs=METRIC)
    return areas.drop(columns="streets"), beats


def build_roads(streets, communities, grids, rng):
    """Roads along street and community boundaries, plus some lanes between grid cells."""
    lines = shapely.union_all(shapely.boundary(grids.geometry.values))
    merged = shapely.line_merge(lines)
    segs = list(getattr(merged, "geoms", [merged]))
    street_edges = shapely.union_all(shapely.boundary(streets.geometry.values)).buffer(0.5)
    comm_edges = shapely.union_all(shapely.boundary(communities.geometry.values)).buffer(0.5)
    shapely.prepare(street_edges)
    shapely.prepare(comm_edges)
    rows = []
    names = iter(ROAD_NAMES)
    for seg in segs:
        if street_edges.contains(seg):
            cls = "primary"
        elif comm_edges.contains(seg):
            cls = "secondary"
        elif rng.random() < 0.55:
            cls = "residential"
        else:
            continue
        name = next(names, None) if cls == "primary" and seg.length > 600 else None
        rows.append({"name": name, "class": cls, "geometry": seg})
    roads = gpd.GeoDataFrame(rows, geometry="geometry", crs=METRIC)
    # Lanes cut off by the random thinning would be islands: keep the connected network.
    ends = np.round(
        np.vstack(
            [shapely.get_coordinates(shapely.get_point(roads.geometry.values, i)) for i in (0, -1)]
        ),
        3,
    )
    _, node = np.unique(ends, axis=0, return_inverse=True)
    node = node.ravel()
    n = len(roads)
    graph = sp.coo_matrix((np.ones(n), (node[:n], node[n:])), shape=(node.max() + 1,) * 2)
    _, label = connected_components(graph, directed=False)
    main = np.bincount(label[node[:n]]).argmax()
    return roads[label[node[:n]] == main].reset_index(drop=True)


def build_facilities(streets, communities, grids, police_areas, rng):
    rows = []

    def add(kind, prefix, name, pt):
        n = sum(1 for r in rows if r["kind"] == kind) + 1
        rows.append({"code": f"{prefix}{n:03d}", "name": name, "kind": kind, "geometry": pt})

    for a in police_areas.itertuples():
        add(
            "police_station",
            "PS",
            a.name.replace("城关区公安分局", ""),
            a.geometry.representative_point(),
        )
    # 160 convenience police posts, placed where the households are.
    weights = grids["households"].to_numpy(float)
    picks = rng.choice(len(grids), size=160, replace=True, p=weights / weights.sum())
    street_name = dict(zip(streets["code"], streets["name"]))
    for k, gi in enumerate(picks, start=1):
        g = grids.iloc[gi]
        sname = street_name[g["parent_code"][:9]]
        add("police_post", "PP", f"{sname}第{k}便民警务站", random_points_in(g.geometry, 1, rng)[0])
    for s in streets.iloc[:9].itertuples():  # nine health centres
        add(
            "health_center",
            "HC",
            f"{s.name}社区卫生服务中心",
            random_points_in(s.geometry, 1, rng)[0],
        )
    hall_comms = rng.choice(len(communities), size=30, replace=False)
    for ci in sorted(hall_comms):
        c = communities.iloc[ci]
        add(
            "service_hall",
            "SH",
            f"{c['name']}便民服务大厅",
            random_points_in(c.geometry, 1, rng)[0],
        )
    for c in communities.itertuples():
        add(
            "party_service_station",
            "PSS",
            f"{c.name}党群服务站",
            random_points_in(c.geometry, 1, rng)[0],
        )
    for k, si in enumerate(rng.choice(len(streets), size=12, replace=True), start=1):
        add(
            "school",
            "SC",
            f"拉萨市城关区第{k}小学(示意)",
            random_points_in(streets.geometry.iloc[si], 1, rng)[0],
        )
    out = gpd.GeoDataFrame(rows, geometry="geometry", crs=METRIC)
    # each police post is run by the station whose area holds it (before the defects
    # move police boundaries: a post may then stand outside its own station's area)
    posts = (out["kind"] == "police_post").to_numpy()
    where, area = shapely.STRtree(police_areas.geometry.values).query(
        out.geometry.values[posts], predicate="within"
    )
    station = np.full(posts.sum(), None, dtype=object)
    station[where] = police_areas["code"].to_numpy()[area]
    out["station"] = None
    out.loc[posts, "station"] = station
    return out


# --------------------------------------------------------------------------- defects


def _neighbour_pairs(gdf):
    """Pairs (i, j) of features sharing a border longer than 80 m."""
    tree = shapely.STRtree(gdf.geometry.values)
    left, right = tree.query(gdf.geometry.values, predicate="intersects")
    keep = left < right
    pairs = []
    for i, j in zip(left[keep], right[keep]):
        shared = gdf.geometry.iloc[i].boundary.intersection(gdf.geometry.iloc[j].boundary).length
        if shared > 80:
            pairs.append((int(i), int(j)))
    return pairs


def inject_defects(communities, grids, police_areas, beats, streets, rng):
    """Inject one defect of each kind at separate, known places; return the list."""
    grids = grids.copy()
    police_areas = police_areas.copy()
    beats = beats.copy()
    defects = []
    used: set[str] = set()
    gcode = grids["code"].to_numpy()
    same_comm_pairs = [
        (i, j)
        for i, j in _neighbour_pairs(grids)
        if grids.parent_code.iloc[i] == grids.parent_code.iloc[j]
    ]
    rng.shuffle(same_comm_pairs)

    def take_pair(pairs):
        for i, j in pairs:
            ci, cj = grids.parent_code.iloc[i], grids.parent_code.iloc[j]
            if ci not in used and cj not in used:
                used.update({ci, cj})
                return i, j
        raise RuntimeError("no free neighbour pair left for a defect")

    def record(layer, rule, codes, area, what, width=None):
        defects.append(
            {
                "layer": layer,
                "rule": rule,
                "codes": ";".join(codes),
                "area_m2": round(float(area), 1),
                "width_m": None if width is None else round(float(width), 2),
                "description": what,
            }
        )

    # overlap: cell i reaches 25 m into neighbour j (j keeps its shape).
    i, j = take_pair(same_comm_pairs)
    gi, gj = grids.geometry.iloc[i], grids.geometry.iloc[j]
    grids.loc[i, "geometry"] = gi.union(gj.intersection(gi.buffer(25)))
    ov = grids.geometry.iloc[i].intersection(gj).area
    record(
        "grid", "overlap", [gcode[i], gcode[j]], ov, "cell reaches about 25 m into its neighbour"
    )

    # gap: a 60 m-wide bite taken out of cell i along its border with j.
    i, j = take_pair(same_comm_pairs)
    gi, gj = grids.geometry.iloc[i], grids.geometry.iloc[j]
    border = gi.boundary.intersection(gj.boundary)
    bite = shapely.buffer(border.interpolate(0.5, normalized=True), 30).intersection(gi)
    grids.loc[i, "geometry"] = gi.difference(bite)
    record(
        "grid",
        "gap",
        [gcode[i], gcode[j]],
        bite.area,
        "a bite of about 30 m radius cut from the cell at its border; nobody covers it",
    )

    # sliver: cell i pulled back 0.4 m from neighbour j along their whole shared border.
    i, j = take_pair(same_comm_pairs)
    gi, gj = grids.geometry.iloc[i], grids.geometry.iloc[j]
    new = gi.difference(gj.buffer(0.4, join_style="mitre"))
    if new.geom_type == "MultiPolygon":
        new = max(new.geoms, key=lambda g: g.area)
    grids.loc[i, "geometry"] = new
    record(
        "grid",
        "gap",
        [gcode[i], gcode[j]],
        gi.area - new.area,
        "sliver: cell pulled back 0.4 m from its neighbour (digitising error)",
        width=0.4,
    )

    # not_nested: cell i takes a 40 m strip of cell j in the neighbouring community.
    cross_pairs = [
        (i, j)
        for i, j in _neighbour_pairs(grids)
        if grids.parent_code.iloc[i] != grids.parent_code.iloc[j]
    ]
    rng.shuffle(cross_pairs)
    i, j = take_pair(cross_pairs)
    gi, gj = grids.geometry.iloc[i], grids.geometry.iloc[j]
    piece = gj.intersection(gi.buffer(40))
    grids.loc[i, "geometry"] = gi.union(piece)
    rest = gj.difference(piece)
    if rest.geom_type == "MultiPolygon":
        rest = max(rest.geoms, key=lambda g: g.area)
    grids.loc[j, "geometry"] = rest
    record(
        "grid",
        "not_nested",
        [gcode[i], grids.parent_code.iloc[j]],
        piece.area,
        f"cell takes a 40 m strip of cell {gcode[j]} in the neighbouring community",
    )

    # parent_mismatch: a cell declares a neighbouring community as its parent.
    candidates = [k for k in range(len(grids)) if grids.parent_code.iloc[k] not in used]
    k = int(rng.choice(candidates))
    right = grids.parent_code.iloc[k]
    wrong = next(c for c in communities["code"] if c != right and c[:9] == right[:9])
    used.add(right)
    grids.loc[k, "parent_code"] = wrong
    record(
        "grid",
        "parent_mismatch",
        [gcode[k], wrong],
        0.0,
        f"parent_code says {wrong}, the cell lies in {right}",
    )

    # duplicate_code: a cell carries its neighbour's code.
    candidates = [
        k
        for k in range(len(grids) - 1)
        if grids.parent_code.iloc[k] not in used
        and grids.parent_code.iloc[k] == grids.parent_code.iloc[k + 1]
    ]
    k = int(rng.choice(candidates))
    used.add(grids.parent_code.iloc[k])
    dup = gcode[k]
    record(
        "grid",
        "duplicate_code",
        [dup],
        0.0,
        f"two cells carry code {dup} (the second was {gcode[k + 1]})",
    )
    grids.loc[k + 1, "code"] = dup

    # invalid_geometry: a zero-width spike on a cell's ring (self-intersection), area unchanged.
    candidates = [k for k in range(len(grids)) if grids.parent_code.iloc[k] not in used]
    k = int(rng.choice(candidates))
    used.add(grids.parent_code.iloc[k])
    g = grids.geometry.iloc[k]
    ring = list(g.exterior.coords)[:-1]
    a, b = np.array(ring[0]), np.array(ring[1])
    mid = (a + b) / 2
    normal = np.array([-(b - a)[1], (b - a)[0]]) / np.linalg.norm(b - a)
    spike = mid - normal * 15  # inward or outward, a spike has no area either way
    coords = [ring[0], tuple(mid), tuple(spike), tuple(mid)] + ring[1:]
    grids.loc[k, "geometry"] = Polygon(coords, [i.coords for i in g.interiors])
    record(
        "grid",
        "invalid_geometry",
        [grids.code.iloc[k]],
        0.0,
        "a 15 m zero-width spike on the boundary (self-intersection)",
    )

    # Police: 三不管 hole — part of a community on a police-area border left to nobody.
    area_of_street = {}
    for a in police_areas.itertuples():
        for s in streets.itertuples():
            if s.geometry.intersection(a.geometry).area > 0.5 * s.geometry.area:
                area_of_street[s.code] = a.Index
    comm_free = [c for c in communities.itertuples() if c.code not in used]
    border_comms = [
        c
        for c in comm_free
        if c.geometry.boundary.intersection(
            police_areas.geometry.iloc[area_of_street[c.parent_code]].boundary
        ).length
        > 200
        and not c.geometry.boundary.intersection(
            shapely.boundary(shapely.union_all(police_areas.geometry.values))
        ).length
    ]
    c = border_comms[int(rng.integers(len(border_comms)))]
    used.add(c.code)
    ai = area_of_street[c.parent_code]
    # The strip runs along the part of the community's edge that is the police-area border.
    border = c.geometry.boundary.intersection(police_areas.geometry.iloc[ai].boundary)
    hole = c.geometry.intersection(shapely.buffer(border, 120, cap_style="flat"))
    if hole.geom_type == "MultiPolygon":
        hole = max(hole.geoms, key=lambda g: g.area)
    hole = shapely.set_precision(hole, 0.001)  # clean vertices: no pinched rings
    police_areas.loc[ai, "geometry"] = police_areas.geometry.iloc[ai].difference(hole)
    bi = int(np.flatnonzero(beats.geometry.values == c.geometry)[0])
    beats.loc[bi, "geometry"] = beats.geometry.iloc[bi].difference(hole)
    record(
        "police_area",
        "gap",
        [police_areas.code.iloc[ai]],
        hole.area,
        f"三不管: a 120 m strip of {c.name} ({c.code}) along the police-area border is "
        "covered by no police area",
    )
    record(
        "police_beat",
        "gap",
        [beats.code.iloc[bi]],
        hole.area,
        "the same strip is left out of the community's police beat too",
    )

    # Police: 交叉管 — one police area reaches 150 m into a neighbouring street.
    s_free = [s for s in streets.itertuples() if not any(u.startswith(s.code) for u in used)]
    for s in s_free:
        own = area_of_street[s.code]
        for other in police_areas.itertuples():
            if other.Index == own or other.Index == ai:
                continue
            shared = other.geometry.boundary.intersection(s.geometry.boundary).length
            if shared > 500:
                piece = s.geometry.intersection(other.geometry.buffer(150))
                police_areas.loc[other.Index, "geometry"] = other.geometry.union(piece)
                record(
                    "police_area",
                    "overlap",
                    [other.code, police_areas.code.iloc[own]],
                    piece.area,
                    f"交叉管: {other.name} reaches 150 m into {s.name} ({s.code}), "
                    f"which {police_areas.name.iloc[own]} also covers",
                )
                record(
                    "police_area",
                    "misaligned",
                    [other.code, s.code],
                    piece.area,
                    f"{other.name} cuts across {s.name}",
                )
                return grids, police_areas, beats, defects
    raise RuntimeError("no street found for the 交叉管 defect")


# --------------------------------------------------------------------------- 联户单位

UNIT_HOUSEHOLDS = 10  # households of a joint-household unit (联户单位), about


def build_household_units(streets, grids, defects, rng) -> gpd.GeoDataFrame:
    """Joint-household units (联户单位) tiling every grid cell of one street: about ten
    households each, a Voronoi tessellation of the cell from random seeds, clipped to it;
    households and population of the cell shared out exactly. Codes append three digits to
    the cell's code. The street is the first whose codes no defect names (so no defective
    cell), and the units add no finding of their own."""
    touched = {c for d in defects for c in d["codes"].split(";")}
    street = next(s for s in streets.itertuples() if not any(c.startswith(s.code) for c in touched))
    rows = []
    cells = grids[grids["code"].str.startswith(street.code)].sort_values("code")
    for cell in cells.itertuples():
        n = max(2, int(round(cell.households / UNIT_HOUSEHOLDS)))
        seeds = random_points_in(cell.geometry, n, rng)
        pieces = _fix_tiling(cell.geometry, tessellate(cell.geometry, seeds))
        share = rng.dirichlet(np.full(len(pieces), 8.0))
        hh = rng.multinomial(cell.households, share)
        pop = rng.multinomial(cell.population, share)
        for k, (piece, h, p) in enumerate(zip(pieces, hh, pop), start=1):
            rows.append(
                {
                    "code": f"{cell.code}{k:03d}",
                    "name": f"{cell.name}第{k}联户",
                    "parent_code": cell.code,
                    "households": int(h),
                    "population": int(p),
                    "geometry": piece,
                }
            )
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=grids.crs)


def build_addresses(communities, roads, rng) -> gpd.GeoDataFrame:
    """Standard addresses (标准地址) along the roads, as doors are numbered in China: odd
    numbers on one side, even on the other, a door every 40–70 m, 12 m off the road's
    centre line. A named road keeps its name; a lane is named after a community it runs
    through ("八廓3巷"). Codes: the code of the community holding the door and a
    five-digit serial."""
    middle = gpd.GeoDataFrame(geometry=roads.geometry.interpolate(0.5, normalized=True),
                              crs=roads.crs)  # fmt: skip
    through = gpd.sjoin(middle, communities[["code", "name", "geometry"]], predicate="intersects")
    through = through[~through.index.duplicated()]
    lanes: dict[str, int] = {}
    doors = []
    for i, road in enumerate(roads.itertuples()):
        if isinstance(road.name, str):
            label = road.name
        elif i in through.index:
            com = through.loc[i]
            lanes[com["code"]] = lanes.get(com["code"], 0) + 1
            label = f"{str(com['name']).removesuffix('社区')}{lanes[com['code']]}巷"
        else:
            continue
        line = road.geometry
        at, door = float(rng.uniform(10, 40)), 1
        while at < line.length - 10:
            side = 1 if door % 2 else -1
            p0, p1 = line.interpolate(at), line.interpolate(min(at + 1.0, line.length))
            dx, dy = p1.x - p0.x, p1.y - p0.y
            norm = float(np.hypot(dx, dy)) or 1.0
            point = Point(p0.x - side * 12 * dy / norm, p0.y + side * 12 * dx / norm)
            doors.append((f"拉萨市城关区{label}{door}号", f"{door}号", point))
            at += float(rng.uniform(40, 70))
            door += 1
    gdf = gpd.GeoDataFrame(doors, columns=["address", "door", "geometry"], crs=roads.crs)
    held = gpd.sjoin(gdf, communities[["code", "geometry"]], predicate="within", how="inner")
    held = held[~held.index.duplicated()].sort_index()
    serial = held.groupby("code").cumcount() + 1
    held["code"] = held["code"] + serial.map("{:05d}".format)
    return held[["code", "address", "door", "geometry"]].reset_index(drop=True)


# --------------------------------------------------------------------------- main


def build(seed: int = 2024) -> tuple[dict[str, gpd.GeoDataFrame], list[dict]]:
    """All layers (in EPSG:4490) and the list of injected defects, for one seed."""
    rng = np.random.default_rng(seed)
    streets, communities, grids = build_hierarchy(rng)
    police_areas, beats = build_police(streets, communities)
    roads = build_roads(streets, communities, grids, rng)
    facilities = build_facilities(streets, communities, grids, police_areas, rng)
    grids, police_areas, beats, defects = inject_defects(
        communities, grids, police_areas, beats, streets, rng
    )
    # a generator of its own, so the layers above do not depend on whether units are made
    units = build_household_units(streets, grids, defects, np.random.default_rng(seed + 1))
    addresses = build_addresses(communities, roads, np.random.default_rng(seed + 2))
    layers = {
        "street": streets,
        "community": communities,
        "grid": grids,
        "household_unit": units,
        "police_area": police_areas,
        "police_beat": beats,
        "facility": facilities,
        "address": addresses,
        "road": roads,
    }
    stored = {k: v.to_crs(STORED) for k, v in layers.items()}
    invalid = {k: v["code"][~v.is_valid].tolist() for k, v in stored.items() if "code" in v}
    expected = [d["codes"] for d in defects if d["rule"] == "invalid_geometry"]
    if sum(invalid.values(), []) != expected:
        raise RuntimeError(f"unintended invalid geometries in the sample: {invalid}")
    return stored, defects


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("-o", "--output", default=str(HERE / "lhasa.gpkg"))
    ap.add_argument("--defects", default=str(HERE / "lhasa_defects.csv"))
    args = ap.parse_args(argv)
    layers, defects = build(args.seed)
    out = Path(args.output)
    out.unlink(missing_ok=True)
    store = open_store(out)
    for name, gdf in layers.items():
        store.write_layer(name, gdf)
    with open(args.defects, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(defects[0]))
        w.writeheader()
        w.writerows(defects)
    for name, gdf in layers.items():
        print(f"{name:12s} {len(gdf):5d}")
    print(pd.DataFrame(defects).to_string(index=False))


if __name__ == "__main__":
    main()
