import geopandas as gpd
import pytest
import shapely

from layers.errors import LayerError
from layers.fields import map_fields, parse_field_options
from layers.schema import LAYERS, conform


def test_every_layer_kind_of_the_design_is_known():
    assert set(LAYERS) == {
        "street",
        "community",
        "grid",
        "police_area",
        "police_beat",
        "facility",
        "address",  # standard addresses (一标三实), issue 15.2
        "road",
        "household",
        "building",
        "household_unit",
        # other departments' grids (多网合一, DESIGN.md): 综治, 城管, 党建, 警务
        "grid_governance",
        "grid_urban",
        "grid_party",
        "grid_police",
    }
    assert LAYERS["grid_urban"].required == ["code", "name"]
    assert LAYERS["grid"].required == ["code", "name", "parent_code", "households", "population"]
    assert LAYERS["community"].parent == "street"
    assert LAYERS["grid"].parent == "community"


def test_missing_field_names_layer_field_and_fix(grid_layer):
    with pytest.raises(LayerError) as err:
        conform(grid_layer.drop(columns=["households"]), "grid")
    msg = str(err.value)
    assert "'grid'" in msg and "households" in msg and "户数" in msg
    assert "--field" in msg


def test_all_problems_are_reported_together(grid_layer):
    bad = grid_layer.drop(columns=["households", "name"])
    with pytest.raises(LayerError) as err:
        conform(bad, "grid")
    assert len(err.value.problems) == 2


def test_wrong_geometry_type_is_refused(grid_layer):
    points = grid_layer.copy()
    points.geometry = points.geometry.representative_point()
    with pytest.raises(LayerError, match="Polygon or MultiPolygon.*found Point"):
        conform(points, "grid")


def test_missing_and_empty_geometries_are_named_by_code(grid_layer):
    g = grid_layer.copy()
    g.loc[1, "geometry"] = None
    g.loc[2, "geometry"] = shapely.Polygon()
    with pytest.raises(LayerError, match="540102001001002, 540102001001003"):
        conform(g, "grid")


def test_codes_become_text_and_counts_integers(grid_layer):
    g = grid_layer.copy()
    g["code"] = [540102001001001.0, 540102001001002.0, 540102001001003.0, 540102001001004.0]
    g["households"] = ["120", "480", "905", "60"]
    out = conform(g, "grid")
    assert out["code"].tolist()[0] == "540102001001001"
    assert out["households"].dtype == "int64"
    assert out["households"].sum() == 1565


def test_negative_or_fractional_counts_are_refused(grid_layer):
    g = grid_layer.copy()
    g["households"] = [10, -1, 2.5, 3]
    with pytest.raises(LayerError, match="whole number.*540102001001002, 540102001001003"):
        conform(g, "grid")


def test_chinese_facility_kinds_are_normalised():
    f = gpd.GeoDataFrame(
        {
            "code": ["a", "b", "c"],
            "name": ["x", "y", "z"],
            "kind": ["便民警务站", "社区卫生服务中心", "library"],
        },
        geometry=shapely.points([[91.1, 29.6]] * 3),
        crs=4490,
    )
    assert conform(f, "facility")["kind"].tolist() == ["police_post", "health_center", "library"]


def test_unknown_layer_kind_lists_the_valid_ones(grid_layer):
    with pytest.raises(LayerError, match="must be one of street, community, grid"):
        conform(grid_layer, "grids")


def test_chinese_column_names_map_to_fields():
    df = gpd.GeoDataFrame(
        {
            "网格编码": ["1"],
            "网格名称": ["甲"],
            "社区编码": ["c"],
            "户数": [5],
            "人口": [9],
            "备注": ["x"],
        },
        geometry=[shapely.box(0, 0, 1, 1)],
    )
    out, applied = map_fields(df, "grid")
    assert applied == {
        "网格编码": "code",
        "网格名称": "name",
        "社区编码": "parent_code",
        "户数": "households",
        "人口": "population",
    }
    assert "备注" in out.columns  # unknown columns are kept


def test_community_file_takes_its_own_code_and_the_street_code_as_parent():
    df = gpd.GeoDataFrame(
        {"社区编码": ["c"], "街道编码": ["s"], "名称": ["鲁固社区"]},
        geometry=[shapely.box(0, 0, 1, 1)],
    )
    _, applied = map_fields(df, "community")
    assert applied == {"社区编码": "code", "街道编码": "parent_code", "名称": "name"}


def test_explicit_mapping_wins_and_bad_mapping_is_explained():
    df = gpd.GeoDataFrame({"HU": [5], "户数": [7]}, geometry=[shapely.box(0, 0, 1, 1)])
    out, _ = map_fields(df, "grid", {"HU": "households"})
    assert out["households"].tolist() == [5]
    with pytest.raises(LayerError, match="no column 'HH'"):
        map_fields(df, "grid", {"HH": "households"})
    with pytest.raises(LayerError, match="not a field of the grid layer"):
        map_fields(df, "grid", {"HU": "hh_total"})
    assert parse_field_options(["户数=households"]) == {"户数": "households"}
    with pytest.raises(LayerError, match="YOUR_COLUMN=field"):
        parse_field_options(["户数"])
