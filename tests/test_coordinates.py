"""GCJ-02/BD-09 conversions and the choice of metric CRS."""

import numpy as np
import pytest
from pyproj import CRS

from geo.chinacoords import (
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from geo.crs import coordinate_problems, metric_crs, metric_crs_for_bounds


def test_gcj02_forward_matches_the_published_reference_point():
    # Tiananmen: WGS 84 (116.404, 39.915) is GCJ-02 (116.41024449916938, 39.91640428150164)
    lon, lat = wgs84_to_gcj02(116.404, 39.915)
    assert lon == pytest.approx(116.41024449916938, abs=1e-12)
    assert lat == pytest.approx(39.91640428150164, abs=1e-12)
    blon, blat = gcj02_to_bd09(lon, lat)
    assert blon == pytest.approx(116.41662724378733, abs=1e-12)
    assert blat == pytest.approx(39.922699552216216, abs=1e-12)


def test_inverse_transforms_round_trip_to_a_millimetre_over_china():
    rng = np.random.default_rng(1)
    lon = rng.uniform(74, 134, 5000)
    lat = rng.uniform(19, 53, 5000)
    for fwd, inv in [(wgs84_to_gcj02, gcj02_to_wgs84), (wgs84_to_bd09, bd09_to_wgs84)]:
        back = inv(*fwd(lon, lat))
        assert np.abs(back[0] - lon).max() < 1e-8
        assert np.abs(back[1] - lat).max() < 1e-8


def test_no_offset_outside_china():
    lon, lat = wgs84_to_gcj02(np.array([13.4, -74.0]), np.array([52.5, 40.7]))
    np.testing.assert_array_equal(lon, [13.4, -74.0])
    np.testing.assert_array_equal(lat, [52.5, 40.7])


@pytest.mark.parametrize(
    "bounds, epsg",
    [
        ((91.0, 29.6, 91.2, 29.7), 4539),  # Lhasa, CM 90E
        ((87.5, 43.7, 87.7, 43.9), 4538),  # Urumqi, CM 87E
        ((121.4, 31.1, 121.6, 31.3), 4549),  # Shanghai, CM 120E
        ((-74.1, 40.6, -73.9, 40.8), 32618),  # New York, UTM 18N
    ],
)
def test_metric_crs_is_the_local_zone(bounds, epsg):
    assert metric_crs_for_bounds(*bounds).to_epsg() == epsg


def test_metric_crs_of_frames(grid_layer):
    assert metric_crs(grid_layer).to_epsg() == 4539


def test_plausible_coordinates_pass():
    assert coordinate_problems((500000, 3280000, 501000, 3281000), CRS.from_epsg(4539)) == []
    assert coordinate_problems((91.0, 29.6, 91.2, 29.7), CRS.from_epsg(4326)) == []


def test_far_outside_area_of_use_is_refused():
    # Gauss-Kruger CM 90E coordinates labelled as the CM 120E zone
    problems = coordinate_problems((500000, 3280000, 501000, 3281000), CRS.from_epsg(4549))
    assert problems == []  # same numbers are plausible in the other zone: cannot tell
    problems = coordinate_problems((5e7, 3280000, 5.1e7, 3281000), CRS.from_epsg(4539))
    assert problems and "fall outside" in problems[0]


@pytest.mark.parametrize("shared_out", [False, True])
def test_kept_transformers_give_geopandas_coordinates_in_any_thread(shared_out, monkeypatch):
    """geo.crs.to_crs makes later threads' Transformers from the pipeline PROJ chose once
    (no database search per thread): the coordinates are those of GeoDataFrame.to_crs,
    bit for bit, for Chinese zones, UTM and Web Mercator, from the main and a new thread,
    and also when a large array is projected in parts on several threads."""
    import threading

    import geo._parallel

    if shared_out:
        monkeypatch.setattr(geo._parallel, "_MIN_CHUNK", 16)
        monkeypatch.setenv("GRIDMAP_THREADS", "4")

    import geopandas as gpd
    import shapely

    from geo.crs import to_crs

    rng = np.random.default_rng(7)
    pts = gpd.GeoDataFrame(
        {"k": range(200)},
        geometry=shapely.points(rng.uniform(73, 135, 200), rng.uniform(18, 53, 200)),
        crs="EPSG:4490",
    )
    targets = ["EPSG:4539", "EPSG:4326", "EPSG:32646", "EPSG:3857", "EPSG:4549"]
    results = {}

    def run(name):
        results[name] = [shapely.get_coordinates(to_crs(pts, t).geometry.values) for t in targets]

    run("main")
    worker = threading.Thread(target=run, args=("thread",))
    worker.start()
    worker.join()
    for k, t in enumerate(targets):
        expected = shapely.get_coordinates(pts.to_crs(t).geometry.values)
        assert np.array_equal(results["main"][k], expected), t
        assert np.array_equal(results["thread"][k], expected), t
    back = to_crs(to_crs(pts, "EPSG:4539"), "EPSG:4490")
    assert back.crs.to_epsg() == 4490 and list(back.columns) == list(pts.columns)


def test_a_reprojection_that_moves_nothing_is_a_new_label():
    """CGCS2000 → WGS 84 is PROJ's null transformation: the geometries come back as they
    are, only labelled (at start, 150,000 cells' lon/lat copy costs nothing); a real
    reprojection still moves them."""
    import geopandas as gpd
    import shapely

    from geo.crs import moves_nothing, to_crs, transformer

    cells = gpd.GeoDataFrame(geometry=[shapely.box(91.1, 29.6, 91.2, 29.7)], crs=4490)
    assert moves_nothing(transformer(4490, 4326)) and not moves_nothing(transformer(4490, 4539))
    wgs = to_crs(cells, 4326)
    assert wgs.crs.to_epsg() == 4326 and wgs.geometry.iloc[0].equals_exact(
        cells.geometry.iloc[0], 0
    )
    metric = to_crs(cells, 4539)
    assert metric.geometry.iloc[0].area == pytest.approx(1.074e8, rel=0.005)  # 9.68 × 11.09 km


def test_the_service_starts_without_the_slow_imports():
    """What a service start need not pay (issue 13.4, start < 5 s): tobler (1.5 s, for
    edit previews: imported in the background once the service answers), the CQL2 text
    grammar (0.3 s, on the first filter), SciPy's MIP solver (0.25 s, in the siting
    child), SciPy's graphs (0.4 s, when a lookup first meets the roads) and networkx (0.2 s,
    in a layout proposal)."""
    import subprocess
    import sys

    code = (
        "import sys, web, web.catalog, web.analysis, web.pages, web.editing; "
        "print(sorted(m for m in ('tobler', 'lark', 'scipy.optimize', 'scipy.sparse.csgraph',"
        " 'networkx') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
