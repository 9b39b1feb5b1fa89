"""geo.mvt writes the same tiles as mapbox-vector-tile, only faster: both are decoded (by
the library's decoder, and by GDAL's MVT driver) and compared feature by feature."""

from __future__ import annotations

import mapbox_vector_tile
import numpy as np
import pyogrio
import pytest
import shapely

from geo.mvt import Tags, encode_tile, uniform
from geo.tiles import encode


def _library(layers) -> bytes:
    spec = [
        {"name": name, "features": [{"geometry": g, "properties": p} for g, p in zip(gs, ps)]}
        for name, gs, ps in layers
    ]
    options = {"quantize_bounds": None, "extents": 4096, "check_winding_order": False,
               "y_coord_down": True}  # fmt: skip
    return mapbox_vector_tile.encode(spec, default_options=options)


def _decode(data: bytes) -> dict:
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})


def _tile_units(geoms) -> np.ndarray:
    """On the integer grid, outer rings clockwise on screen, nothing empty: as
    geo.tiles hands geometries to the encoder."""
    geoms = shapely.set_precision(np.asarray(geoms, dtype=object), 1.0, mode="pointwise")
    geoms = shapely.orient_polygons(geoms, exterior_cw=False)
    return geoms[~shapely.is_empty(geoms)]


def _polygons(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        c = rng.uniform(0, 4096, 2)
        r = rng.uniform(0.4, 80)
        g = shapely.Point(c).buffer(r, quad_segs=int(rng.integers(1, 6)))
        if i % 3 == 0:  # a hole
            g = g.difference(shapely.Point(c).buffer(r / 2))
        if i % 5 == 0:  # a second part, thinner than a tile unit: gone when rounded
            g = shapely.MultiPolygon(
                [*shapely.get_parts(g), shapely.box(c[0] + 300, c[1], c[0] + 301, c[1] + 0.4)]
            )
        out.append(g)
    return _tile_units(out)


PROPS = [
    {"id": "G1", "名称": "网格一", "households": 120, "share": 0.25, "flag": True, "n": 1},
    {"id": "G2", "名称": "网格二", "households": -3, "share": 1.0, "flag": False, "n": 2**40},
    {"id": "G3", "households": 1, "share": 1.5, "flag": True, "list": [1, 2], "none": None},
]


def _props(n: int) -> list[dict]:
    return [dict(PROPS[i % 3], id=f"G{i}") for i in range(n)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_polygons_decode_as_the_library_writes_them(seed):
    geoms = _polygons(400, seed)
    layers = [("grid", geoms, _props(len(geoms)))]
    ours, theirs = _decode(encode_tile(layers)), _decode(_library(layers))
    assert ours == theirs
    assert len(ours["grid"]["features"]) == len(geoms)


def test_lines_and_points_decode_as_the_library_writes_them():
    rng = np.random.default_rng(3)
    lines = _tile_units(
        [shapely.LineString(rng.uniform(0, 4096, (int(rng.integers(2, 9)), 2))) for _ in range(200)]
        + [shapely.MultiLineString([[(0, 0), (0.2, 0.1)], [(5, 5), (9, 9), (9, 9)]])]
    )
    points = _tile_units(
        [shapely.Point(rng.uniform(0, 4096, 2)) for _ in range(100)]
        + [shapely.MultiPoint([(1, 1), (1, 1), (3, 4)])]
    )
    for name, geoms in (("roads", lines), ("posts", points)):
        layers = [(name, geoms, _props(len(geoms)))]
        assert _decode(encode_tile(layers)) == _decode(_library(layers)), name


def test_what_the_library_leaves_out_is_left_out():
    """Repeated vertices go; a ring or line with one distinct vertex goes, a polygon with
    its outer ring; a feature with nothing left is not written."""
    square = shapely.Polygon([(0, 0), (0, 10), (10, 10), (10, 10), (10, 0), (0, 0)])
    dot = shapely.Polygon([(5, 5), (5, 5), (5, 5), (5, 5)])
    stub = shapely.LineString([(1, 1), (1, 1)])
    geoms = [square, dot]
    layers = [("grid", geoms, _props(2))]
    got = _decode(encode_tile(layers))["grid"]["features"]
    assert got == _decode(_library(layers))["grid"]["features"]
    assert len(got) == 1 and len(got[0]["geometry"]["coordinates"][0]) == 5  # 4 corners, closed
    lines = [("roads", [stub], _props(1))]
    assert _decode(encode_tile(lines)) == _decode(_library(lines))
    assert _decode(encode_tile(lines))["roads"]["features"] == []


def test_values_keep_their_types_and_are_written_once():
    geoms = _polygons(30)
    data = encode_tile([("grid", geoms, _props(len(geoms)))])
    tile = mapbox_vector_tile.Mapbox.vector_tile_pb2.tile()
    tile.ParseFromString(data)
    values = tile.layers[0].values
    seen = [(v.string_value, v.double_value, v.int_value, v.bool_value, v.HasField("bool_value"))
            for v in values]  # fmt: skip
    assert len(seen) == len(set(seen)), "a value written twice"
    props = [f["properties"] for f in _decode(data)["grid"]["features"]]
    assert props[0]["flag"] is True and props[2]["households"] == 1 and props[2]["flag"] is True
    assert props[1]["n"] == 2**40 and props[1]["households"] == -3 and props[0]["share"] == 0.25
    assert "list" not in props[2] and "none" not in props[2]
    assert props[0]["名称"] == "网格一"


def test_mixed_families_go_to_the_library():
    mixed = _tile_units([shapely.box(0, 0, 10, 10), shapely.LineString([(0, 0), (50, 50)])])
    assert not uniform(mixed) and uniform(mixed[:1])
    layers = [("findings", mixed, _props(2))]
    assert _decode(encode(layers)) == _decode(_library(layers))


def test_gdal_reads_the_tiles(tmp_path):
    """GDAL's MVT driver, a decoder nobody here wrote, reads every feature and attribute."""
    geoms = _polygons(200)
    props = _props(len(geoms))
    path = tmp_path / "9" / "400" / "200.pbf"  # GDAL takes z/x/y from the path
    path.parent.mkdir(parents=True)
    path.write_bytes(encode_tile([("grid", geoms, props)]))
    frame = pyogrio.read_dataframe(path, layer="grid")
    assert len(frame) == len(geoms)
    assert sorted(frame["id"]) == sorted(p["id"] for p in props)
    assert set(frame["名称"].dropna()) == {"网格一", "网格二"}
    assert (frame.geometry.area > 0).all()


@pytest.mark.parametrize("in_place", [True, False])
def test_a_table_carried_through_a_save_writes_the_same_tiles_as_a_fresh_one(in_place):
    """A tile layer's tag table is worked out once and carried through saves (spliced:
    a save that replaces a feature in place, or one that moves it to the end): its tiles
    are byte for byte those of a table made afresh, and a value keeps its type (7 an
    int, 7.0 a double)."""
    from layers.storage.edits import Splice

    geoms = _polygons(60)
    props = _props(len(geoms))
    changed = [dict(props[3], households=7, share=7.0, 名称="新网格")]
    if in_place:  # feature 3 replaced where it is
        rows = np.array([0, 1, 2, len(props), *range(4, len(props))])
        after = props[:3] + changed + props[4:]
    else:  # feature 3 removed, the changed one last
        rows = np.array([0, 1, 2, *range(4, len(props)), len(props)])
        after = props[:3] + props[4:] + changed
    plan = Splice(np.array([0]), rows)
    carried = Tags.of(props).spliced(plan, {k: [v] for k, v in changed[0].items()}, 1)
    fresh = Tags.of(after)
    everyone = np.arange(len(geoms))
    data = encode_tile([("grid", geoms, (carried, everyone))])
    assert data == encode_tile([("grid", geoms, (fresh, everyone))])
    got = _decode(data)["grid"]["features"][list(rows).index(len(props))]["properties"]
    assert got["名称"] == "新网格"
    assert type(got["households"]) is int and type(got["share"]) is float
