"""Benchmark: the map page in headless Chromium, against geopandas.explore() of the same layers.

    python -m tests.benchmarks.bench_page [--big 50000] [--explore-timeout 180]

For the bundled sample and for a dataset with ``--big`` grid cells it measures, in the same
run and the same browser:

- gridmap: bytes transferred (page, scripts, API responses) and seconds from navigation
  until every layer in view is drawn (grid cells, streets, communities, roads, findings,
  facilities). For the big dataset, the first view is the whole city, where the page asks
  to zoom in rather than draw every cell; it then zooms to level 15 and times the cells.
- reference: ``GeoDataFrame.explore()`` maps of the same layers (roads, polygons,
  facilities; no findings) in one folium page (every feature embedded, styling by folium). Offline its CDN scripts cannot load, so
  Leaflet's URL is pointed at gridmap's local copy and the other CDN assets (jQuery,
  Bootstrap, Font Awesome: not needed to draw) are dropped; the time is until the SVG
  elements of all features exist.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import geopandas as gpd
from playwright.sync_api import sync_playwright

from layers.storage import open_store
from tests.conftest import CHROMIUM_ARGS, SAMPLE, serve_in_thread
from tests.tilings import hierarchy
from web import create_app


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no request log in the benchmark's output
        pass


ARGS = CHROMIUM_ARGS
POLYGONS = ["street", "community", "grid", "police_area", "police_beat"]
DRAWN = ["road"] + POLYGONS + ["facility"]  # what gridmap's first view draws


def _transferred(page) -> int:
    return int(
        page.evaluate("""() => {
        const nav = performance.getEntriesByType('navigation')[0];
        return nav.transferSize + performance.getEntriesByType('resource')
            .reduce((s, r) => s + r.transferSize, 0); }""")
    )


def measure_gridmap(browser, url: str, zoom: int | None = None) -> dict:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    t0 = time.perf_counter()
    page.goto(url)
    page.wait_for_function(
        """() => { const c = window.gridmap && window.gridmap.current;
        return c && c.layers.street.getLayers().length > 0
                 && c.layers.community.getLayers().length > 0
                 && document.querySelectorAll('#gm-findings li:not(.gm-muted)').length > 0
                 && (c.layers.grid.getLayers().length > 0
                     || !document.getElementById('gm-notice').hidden); }""",
        timeout=300_000,
    )
    first = time.perf_counter() - t0
    out = {
        "first_view_s": first,
        "grid_drawn": page.evaluate("window.gridmap.current.layers.grid.getLayers().length"),
    }
    if zoom:
        t1 = time.perf_counter()
        page.evaluate(f"() => {{ window.gridmap.current.map.setZoom({zoom}); }}")
        page.wait_for_function(
            "window.gridmap.current.layers.grid.getLayers().length > 0", timeout=300_000
        )
        page.wait_for_timeout(50)
        out["zoomed_s"] = time.perf_counter() - t1
        out["grid_drawn_zoomed"] = page.evaluate(
            "window.gridmap.current.layers.grid.getLayers().length"
        )
    out["bytes"] = _transferred(page)
    page.close()
    return out


def explore_page(layers: dict[str, gpd.GeoDataFrame], folder: Path, leaflet_url: str) -> Path:
    """One folium page with explore() of the layers gridmap draws, CDN links made offline."""
    m = None
    for name in DRAWN:
        if name in layers:
            tooltip = [c for c in ("code", "name") if c in layers[name].columns] or False
            m = layers[name].explore(m=m, name=name, tooltip=tooltip)
    html = m.get_root().render()
    html = html.replace(re.search(r'src="(https://[^"]*leaflet\.js)"', html).group(1), leaflet_url)
    css = re.search(r'href="(https://[^"]*leaflet\.css)"', html).group(1)
    html = html.replace(css, leaflet_url.replace(".js", ".css"))
    html = re.sub(r'<script src="https?://(?!127\.0\.0\.1)[^"]*"></script>', "", html)
    html = re.sub(r'<link rel="stylesheet" href="https?://(?!127\.0\.0\.1)[^"]*"/>', "", html)
    path = folder / "explore.html"
    path.write_text(html, encoding="utf-8")
    return path


def measure_explore(browser, url: str, n_features: int, timeout_s: float) -> dict:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    t0 = time.perf_counter()
    page.goto(url, timeout=timeout_s * 1000)
    try:
        page.wait_for_function(
            f"document.querySelectorAll('.leaflet-interactive').length >= {n_features}",
            timeout=timeout_s * 1000,
        )
        drawn = time.perf_counter() - t0
    except Exception:  # noqa: BLE001 - a timeout is the measurement
        drawn = None
    out = {"drawn_s": drawn, "bytes": _transferred(page)}
    page.close()
    return out


def run(layers, label, browser, folder, *, zoom=None, explore_timeout=180.0):
    path = folder / f"{label}.gpkg"
    if not path.exists():
        store = open_store(path)
        for name, gdf in layers.items():
            store.write_layer(name, gdf)
    url, server = serve_in_thread(create_app({"DATASET": str(path)}))
    try:
        ours = measure_gridmap(browser, url + "/", zoom=zoom)
        page = explore_page(layers, folder, url + "/static/vendor/leaflet/leaflet.js")
        files = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietFiles, directory=str(folder)))
        threading.Thread(target=files.serve_forever, daemon=True).start()
        n = sum(len(layers[k]) for k in DRAWN if k in layers)
        try:
            ref = measure_explore(
                browser, f"http://127.0.0.1:{files.server_port}/{page.name}", n, explore_timeout
            )
        finally:
            files.shutdown()
    finally:
        server.close()
    mb = lambda b: f"{b / 1e6:7.2f} MB"  # noqa: E731
    print(
        f"\n{label}: {sum(len(g) for g in layers.values()):,} features "
        f"({len(layers['grid']):,} grid cells)"
    )
    print(
        f"  gridmap : first view drawn in {ours['first_view_s']:6.2f} s, "
        f"{ours['grid_drawn']:,} cells drawn; {mb(ours['bytes'])} transferred"
    )
    if zoom:
        print(
            f"            zoom {zoom}: {ours['grid_drawn_zoomed']:,} cells drawn in "
            f"{ours['zoomed_s']:.2f} s"
        )
    drawn = (
        f"{ref['drawn_s']:6.2f} s" if ref["drawn_s"] else f"not drawn in {explore_timeout:.0f} s"
    )
    print(f"  explore(): all {n:,} features drawn: {drawn}; {mb(ref['bytes'])} transferred")
    if ref["drawn_s"]:
        print(
            f"  ratio gridmap/explore: time {ours['first_view_s'] / ref['drawn_s']:.2f}×, "
            f"bytes {ours['bytes'] / ref['bytes']:.2f}×"
        )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--big", type=int, default=50_000)
    ap.add_argument("--explore-timeout", type=float, default=180.0)
    args = ap.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="gridmap-bench-"))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        run(open_store(SAMPLE).load(), "sample", browser, folder)
        streets, communities, grids = hierarchy(args.big)
        big = {
            k: v.to_crs("EPSG:4490")
            for k, v in {"street": streets, "community": communities, "grid": grids}.items()
        }
        run(big, f"grid{args.big}", browser, folder, zoom=15, explore_timeout=args.explore_timeout)
        browser.close()


if __name__ == "__main__":
    main()
