"""The map page works offline and shows data as text: static checks and headless Chromium."""

import contextlib
import json
import re
import time
import urllib.request
from html import unescape
from urllib.parse import urljoin, urlparse

import pytest
import shapely

from layers.storage import open_store
from tests.conftest import BROWSER, serve_in_thread
from tests.conftest import SAMPLE as SAMPLE_PATH
from tests.tilings import squares
from web import create_app

LOCAL = ("http://127.0.0.1", "http://localhost", "data:", "blob:", "about:")
XSS = ["<img src=x onerror=alert(1)>", "${alert(1)}", "</script><script>alert(2)</script>"]


def _refs(html: str) -> list[str]:
    return [unescape(r) for r in re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', html)]


@pytest.mark.parametrize("path", ["/", "/?lang=en"])
def test_pages_reference_nothing_outside_the_app(client, path):
    html = client.get(path, headers=BROWSER).get_data(as_text=True)
    refs = _refs(html)
    assert refs, "the page should load its scripts and styles"
    for ref in refs:
        assert not urlparse(ref).netloc and not ref.startswith("//"), ref
        if ref.startswith("/"):
            assert client.get(ref).status_code == 200, ref
    assert "cdn" not in html.lower() and "http://" not in html and "https://" not in html
    # every stylesheet's url(...) is local too
    for ref in refs:
        if ref.endswith(".css"):
            css = client.get(ref).get_data(as_text=True)
            # inline SVG icons are data, and their own url(#id) refer inside themselves
            css = re.sub(r"url\((['\"])data:.*?\1\)", "", css)
            for u in re.findall(r"url\(['\"]?([^'\")]+)", css):
                assert not urlparse(u).netloc, (ref, u)
                if not u.startswith("data:"):
                    assert client.get(urljoin(ref, u)).status_code == 200, (ref, u)


def test_chinese_by_default_english_on_request(client):
    zh = client.get("/", headers=BROWSER).get_data(as_text=True)
    en = client.get("/?lang=en", headers=BROWSER).get_data(as_text=True)
    assert "网格化管理地图" in zh and "人口专题" in zh
    assert "Grid management map" in en and "Population theme" in en


def test_basemap_is_configurable(tmp_path):
    from tests.conftest import SAMPLE

    none = (
        create_app({"DATASET": str(SAMPLE)})
        .test_client()
        .get("/", headers=BROWSER)
        .get_data(as_text=True)
    )
    assert "tileLayer" not in none
    tdt = create_app({"DATASET": str(SAMPLE), "BASEMAP": "tianditu", "TIANDITU_KEY": "KEY123"})
    html = tdt.test_client().get("/", headers=BROWSER).get_data(as_text=True)
    assert "vec_w" in html and "cva_w" in html and "tk=KEY123" in html
    intranet = create_app(
        {"DATASET": str(SAMPLE), "BASEMAP": "http://10.0.0.5/tiles/{z}/{x}/{y}.png"}
    )
    assert "10.0.0.5/tiles" in intranet.test_client().get("/", headers=BROWSER).get_data(
        as_text=True
    )
    with pytest.raises(ValueError, match="GRIDMAP_BASEMAP"):
        create_app({"DATASET": str(SAMPLE), "BASEMAP": "bing"})


# --------------------------------------------------------------------------- in a browser


def _open(browser, url, *, mobile=False, findings=True):
    page = browser.new_page(
        viewport={"width": 390, "height": 844} if mobile else {"width": 1400, "height": 900}
    )
    events = {"failed": [], "external": [], "dialogs": [], "errors": []}
    page.on("requestfailed", lambda r: events["failed"].append(r.url))
    page.on(
        "request", lambda r: None if r.url.startswith(LOCAL) else events["external"].append(r.url)
    )
    page.on("dialog", lambda d: (events["dialogs"].append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: events["errors"].append(str(e)))
    page.goto(url)
    page.wait_for_function(
        "window.gridmap && window.gridmap.current && "
        "window.gridmap.current.layers.grid.getLayers().length > 0",
        timeout=20_000,
    )
    if findings:  # listed once the check is done
        page.wait_for_function(
            "document.querySelectorAll('#gm-findings li:not(.gm-muted)').length > 0",
            timeout=20_000,
        )
    return page, events


def _counts(page):
    return page.evaluate("""() => {
        const c = window.gridmap.current, out = {};
        for (const [k, g] of Object.entries(c.layers)) out[k] = g.getLayers().length;
        out.findings = c.findings.getLayers().length;
        out.facilities = c.facilities.getLayers().length;
        return out; }""")


def test_sample_map_draws_its_layers_offline(browser, live_sample):
    page, events = _open(browser, live_sample + "/")
    counts = _counts(page)
    assert counts["street"] == 10 and counts["community"] == 50 and counts["grid"] == 651
    assert counts["road"] == 1269 and counts["findings"] == 11 and counts["facilities"] == 269
    assert events == {"failed": [], "external": [], "dialogs": [], "errors": []}
    # the map's legend: every layer shown, roads by class, the findings by rule
    page.wait_for_function(
        "document.getElementById('gm-maplegend').textContent.includes('检查结果 · ')"
    )
    legend = page.inner_text("#gm-maplegend")
    for shown in ("街道", "社区", "网格", "道路 · 主干路", "便民警务站", "检查结果 · 重叠"):
        assert shown in legend, (shown, legend)
    # names by zoom: communities at 15, none overlapping another or under the panel
    page.evaluate("window.gridmap.current.map.setView([29.652, 91.132], 15) && null")
    page.wait_for_timeout(1500)
    boxes = page.evaluate(
        "[...document.querySelectorAll('.gm-label')].map(n => {"
        "const r = n.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom, "
        "n.className, n.textContent]; })"
    )
    assert len([b for b in boxes if "gm-label-community" in b[4]]) >= 10, boxes
    assert any(b[5] == "八廓社区" for b in boxes)
    # findings are named on the map too, by rule and first feature, however small
    assert any(
        "gm-label-findings" in b[4] and b[5].startswith("重叠 · 拉萨河社区第1网格") for b in boxes
    ), [b for b in boxes if "findings" in b[4]]
    panel = page.locator("#gm-panel").bounding_box()
    for i, a in enumerate(boxes):
        assert not (a[2] > panel["x"] and a[1] < panel["y"] + panel["height"]), a
        for b in boxes[i + 1 :]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)
    # a theme colours the grid with the server's colours and shows a legend
    _tab(page, "check")
    page.select_option("#gm-theme", "households")
    assert page.locator("#gm-legend .gm-legend-row").count() == 5
    fill = page.evaluate("window.gridmap.current.layers.grid.getLayers()[0].options.fillColor")
    assert fill.startswith("#") and fill != "#999999"
    # click on the map: who is responsible here
    _tab(page, "query")
    page.fill("#gm-lon", "91.1172")
    page.fill("#gm-lat", "29.6558")
    page.click("#gm-coord button")
    page.wait_for_function("document.querySelector('#gm-lookup table') !== null")
    text = page.inner_text("#gm-lookup")
    assert "吉崩岗街道" in text and "布达拉社区" in text and "便民警务站" in text
    # search zooms to a community
    page.fill("#gm-search", "鲁固")
    page.wait_for_selector("#gm-results li")
    page.click("#gm-results li")
    page.wait_for_timeout(500)
    assert page.evaluate("window.gridmap.current.map.getZoom()") >= 15
    page.close()


def test_phone_sized_screen(browser, live_sample):
    page, events = _open(browser, live_sample + "/", mobile=True)
    assert not page.is_visible("#gm-search")  # panel starts folded on a phone
    page.click("#gm-toggle")
    assert page.is_visible("#gm-search")
    box = page.locator("#gm-panel").bounding_box()
    assert box["width"] <= 390
    # a sheet along the bottom: the map above it answers a click there, the answer shows
    # in the sheet without scrolling the page, and the feature's card opens above the sheet
    assert box["y"] + box["height"] == pytest.approx(844, abs=1) and box["y"] >= 844 * 0.4
    page.evaluate("window.gridmap.current.map.setView([29.6513, 91.1317], 16) && null")
    page.wait_for_timeout(800)
    page.mouse.click(195, 200)
    page.wait_for_function("document.querySelector('#gm-lookup table') !== null")
    page.wait_for_timeout(800)  # the card has been panned into view
    answer = page.locator("#gm-lookup table").first.bounding_box()
    box = page.locator("#gm-panel").bounding_box()
    assert box["y"] <= answer["y"] and answer["y"] + 60 < 844, (answer, box)
    card = page.locator(".leaflet-popup").bounding_box()
    assert card["y"] >= 0 and card["y"] + card["height"] <= box["y"] + 1, (card, box)
    assert card["x"] >= 0 and card["x"] + card["width"] <= 390, card
    assert events["errors"] == [] and events["external"] == []
    page.close()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A dataset whose names are attempts to run script."""
    streets, communities, grids = squares()
    streets["name"] = XSS[0]
    communities["name"] = [XSS[i % 3] for i in range(len(communities))]
    grids["name"] = [XSS[i % 3] for i in range(len(grids))]
    grids = grids.drop(columns=["col", "row"])
    grids.loc[0, "geometry"] = shapely.box(480000, 3270000, 480105, 3270100)  # one overlap
    facility = grids[["code", "name"]].iloc[:3].copy()
    facility["kind"] = "police_post"
    facility = facility.set_geometry(grids.geometry.iloc[:3].centroid.values).set_crs(4539)
    path = tmp_path_factory.mktemp("xss") / "xss.gpkg"
    store = open_store(path)
    for name, gdf in {
        "street": streets,
        "community": communities,
        "grid": grids,
        "facility": facility,
    }.items():
        store.write_layer(name, gdf.to_crs(4490))
    url, server = serve_in_thread(create_app({"DATASET": str(path)}))
    yield url
    server.close()


def test_names_are_text_never_markup(browser, hostile):
    page, events = _open(browser, hostile + "/")
    page.evaluate("""() => {  // open every kind of popup and tooltip the page has
        const c = window.gridmap.current;
        for (const g of Object.values(c.layers)) g.eachLayer(l => {
            l.openTooltip();
            l.fire("click", {latlng: l.getBounds().getCenter()}); });
        c.facilities.eachLayer(l => { l.openTooltip && l.openTooltip(); });
        c.findings.eachLayer(l => l.openPopup()); }""")
    page.fill("#gm-search", "alert")
    page.wait_for_selector("#gm-results li")
    page.click("#gm-coord button")  # empty coordinate: nothing happens
    page.fill("#gm-lon", "91.0")
    page.wait_for_timeout(800)
    body = page.inner_text("body")
    assert XSS[0] in body or XSS[0] in page.inner_text("#gm-results")
    assert "${alert(1)}" in page.inner_text("#gm-results")
    assert page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
    assert events["dialogs"] == [] and events["errors"] == []
    page.close()


def _screen(page, lonlat):
    """Page pixel of a lon/lat point on the map."""
    p = page.evaluate(
        """([x, y]) => { const m = window.gridmap.current.map;
        const r = m.getContainer().getBoundingClientRect();
        const q = m.latLngToContainerPoint([y, x]); return [q.x + r.left, q.y + r.top]; }""",
        lonlat,
    )
    return p[0], p[1]


def _tab(page, name: str) -> None:
    """Open the panel's tab for one job: query, check, align, service or edit."""
    page.click(f".gm-tabs [data-tab={name}]")
    page.wait_for_selector(f"#gm-tab-{name}:not([hidden])")


@contextlib.contextmanager
def _planner_on_the_map(browser, tmp_path):
    """A copy of the sample served, planner "ana" signed in on its map page with every
    grid cell drawn. Yields (app, page, external requests, script errors)."""
    from web.auth import add_user

    path = tmp_path / "city.gpkg"
    path.write_bytes(SAMPLE_PATH.read_bytes())
    app = create_app({"DATASET": str(path), "SECRET_KEY": "browser-test"})
    add_user(app.extensions["gridmap"].store, "ana", "planner", "long-secret")
    url, server = serve_in_thread(app)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        external, errors = [], []
        page.on("request", lambda r: None if r.url.startswith(LOCAL) else external.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url + "/login?next=/")
        page.fill("input[name=name]", "ana")
        page.fill("input[name=password]", "long-secret")
        page.click("button[type=submit]")
        page.wait_for_function(
            "window.gridmap && window.gridmap.current && "
            "window.gridmap.current.layers.grid.getLayers().length > 600"
        )
        _tab(page, "edit")
        yield app, page, external, errors
    finally:
        page.close()
        server.close()


def test_a_click_inside_a_finding_says_who_is_in_charge_there(browser, live_sample):
    """Issue 14.1 on the sample: inside the strip both PA02 and PA03 hold, the lookup
    lists both stations and says 交叉管; inside the police layer's hole it says 三不管.
    Both places lie inside findings, whose click used to open the finding only."""
    page, events = _open(browser, live_sample + "/")
    for (lon, lat), wanted in [
        (
            (91.105698, 29.657053),
            ["城关区公安分局公德林派出所", "城关区公安分局吉崩岗派出所", "交叉管"],
        ),
        ((91.113790, 29.666192), ["三不管"]),
    ]:
        page.evaluate("([x, y]) => { window.gridmap.current.map.setView([y, x], 17); }", [lon, lat])
        page.wait_for_timeout(800)
        page.evaluate("document.getElementById('gm-lookup').textContent = ''")
        page.mouse.click(*_screen(page, (lon, lat)))
        page.wait_for_function("document.querySelector('#gm-lookup table') !== null")
        page.wait_for_timeout(300)  # the card of the place before has faded out
        assert page.locator(".leaflet-popup").count() == 1  # the finding's card is open too
        row = page.locator("#gm-lookup tr", has_text="派出所辖区").inner_text()
        assert all(w in row for w in wanted), row
    assert events["errors"] == [] and events["dialogs"] == []
    page.close()


def test_an_address_typed_in_the_search_box_says_who_is_in_charge_there(browser, live_sample):
    """Issue 15.2: part of a standard address in the search box; its answer clicked, the
    map goes there and the lookup names the grid cell, the police beat and the nearest
    posts; an area found by name is outlined."""
    page, events = _open(browser, live_sample + "/")
    page.fill("#gm-search", "林廓北路12号")
    page.wait_for_selector("#gm-results li")
    assert "拉萨市城关区林廓北路12号" in page.inner_text("#gm-results")
    page.click("#gm-results li:has-text('林廓北路12号')")
    page.wait_for_function("document.querySelector('#gm-lookup table') !== null")
    lookup = page.inner_text("#gm-lookup")
    assert "540102001005005" in lookup and "哲蚌社区警务区" in lookup, lookup
    page.fill("#gm-search", "八廓社区")
    page.wait_for_selector("#gm-results li:has-text('八廓社区')")
    page.click("#gm-results li:has-text('八廓社区')")
    page.wait_for_function(  # the community's outline drawn
        "Object.values(window.gridmap.current.map._layers).some("
        "l => l.feature && l.options.color === '#ffd400' && l.feature.properties.code === "
        "'540102006003')"
    )
    assert events["errors"] == [] and events["dialogs"] == []
    page.close()


def test_the_alignment_panel_sorts_and_shows_a_stations_mismatch(browser, live_sample):
    """Issue 14.2: the officers' table of police areas, sorted by the area outside their
    street (largest first); a row zooms to the station and outlines its findings."""
    page, events = _open(browser, live_sample + "/")
    _tab(page, "align")
    page.wait_for_selector("#gm-align-table tbody tr")
    rows = page.locator("#gm-align-table tbody tr")
    with urllib.request.urlopen(live_sample + "/collections/police_area") as r:
        stations = json.load(r)["numberOfFeatures"]
    assert rows.count() == stations and page.locator("#gm-align-legend .gm-legend-row").count() == 3
    first = rows.first.inner_text()
    assert "540102PA02" in first  # the station reaching furthest into another street
    shared = page.locator("#gm-align-table th", has_text="重合")
    shared.click()  # by shared %: largest first, then again: smallest first
    shared = page.locator("#gm-align-table th", has_text="重合")
    assert shared.inner_text().endswith("▼")
    shared.click()
    assert page.locator("#gm-align-table th", has_text="重合").inner_text().endswith("▲")
    low = [
        float(t.split()[0])
        for t in page.locator("#gm-align-table tbody td:nth-child(3)").all_inner_texts()
    ]
    assert low == sorted(low)
    rows.filter(has_text="540102PA02").click()
    # zoomed in, its 跨界 strip and its own outline drawn
    page.wait_for_function(
        "window.gridmap.current.map.getZoom() >= 14 && "
        "window.gridmap.current.alignment.getLayers().length >= 2"
    )
    rules = page.evaluate(
        "window.gridmap.current.alignment.getLayers().map(l => l.feature.properties.rule)"
    )
    assert "misaligned" in rules
    card = page.inner_text("#gm-align-summary")
    assert "540102PA02" in card and "km²" in card and "便民警务站" in card
    assert page.locator("#gm-align-csv").get_attribute("href").endswith("f=csv")
    assert page.locator("#gm-align-xlsx").get_attribute("href").endswith("f=xlsx")
    page.select_option("#gm-align-layer", "police_beat")
    page.wait_for_function("document.querySelectorAll('#gm-align-table tbody tr').length > 10")
    assert events["errors"] == [] and events["dialogs"] == []
    page.close()


def test_planner_signs_in_and_splits_a_cell_on_the_map(browser, tmp_path):
    """The whole editing loop as a planner does it: sign in, click a cell, draw a line
    across it, read the preview, give a reason, save; the map and the history show it."""
    with _planner_on_the_map(browser, tmp_path) as (app, page, external, errors):
        assert "ana" in page.inner_text("#gm-user")
        feature = app.test_client().get("/collections/grid/items/540102001001002").get_json()
        cell_ = shapely.geometry.shape(feature["geometry"])
        x0, y0, x1, y1 = cell_.bounds
        page.evaluate(
            """b => window.gridmap.current.map.fitBounds([[b[1], b[0]], [b[3], b[2]]],
                                                                 {maxZoom: 16}) && null""",
            [x0, y0, x1, y1],
        )
        page.wait_for_timeout(600)
        inside = cell_.representative_point()
        page.mouse.click(*_screen(page, (inside.x, inside.y)))
        page.wait_for_function(
            "document.getElementById('gm-selected').textContent.includes('540102001001002')"
        )
        # the click also asks who is responsible here; let that answer arrive first (a
        # vertex clicked while it redraws the map can be lost)
        page.wait_for_function("document.querySelector('#gm-lookup table') !== null")
        page.click("#gm-op-split")
        page.wait_for_timeout(300)
        cx = cell_.centroid.x
        top, bottom = _screen(page, (cx, y1 + 0.0008)), _screen(page, (cx, y0 - 0.0008))
        page.mouse.move(top[0] - 10, top[1] - 10)
        page.mouse.move(*top, steps=4)
        page.mouse.click(*top)
        page.mouse.move(*bottom, steps=8)
        page.mouse.click(*bottom)
        page.mouse.move(bottom[0], bottom[1] + 25, steps=4)
        page.mouse.dblclick(bottom[0], bottom[1] + 25)
        page.wait_for_function(  # the preview, or an error said in the panel
            "document.querySelector('#gm-edit-result tr[data-code]') || "
            "document.getElementById('gm-edit-status').className.includes('gm-error')",
            timeout=60_000,
        )
        assert page.locator("#gm-edit-result tr[data-code]").count(), (
            page.inner_text("#gm-edit-status"),
            page.evaluate("window.gridmap.current.map.pm.globalDrawModeEnabled()"),
        )
        rows = page.locator("#gm-edit-result tr[data-code]")
        assert rows.count() == 2
        figures = [
            int(rows.nth(i).locator("td").nth(3).inner_text().replace(",", "")) for i in range(2)
        ]
        assert sum(figures) == 136  # the split keeps the cell's households
        page.fill("#gm-reason", "too large for one grid worker")
        page.click("#gm-save")
        page.wait_for_function(
            "document.getElementById('gm-edit-status').textContent.includes('#')"
        )
        page.wait_for_function("window.gridmap.current.layers.grid.getLayers().length === 652")
        page.wait_for_selector("#gm-history li[data-change]")
        assert "too large" in page.inner_text("#gm-history")
        # the change on the map: the old outline and the two new cells
        page.click("#gm-history li[data-change] button")
        page.wait_for_function("window.gridmap.editor.layers.diff.getLayers().length === 3")
        assert external == [] and errors == []
        revs = app.extensions["gridmap"].store.revisions("grid")
        assert [r["author"] for r in revs] == ["ana", "ana"] and revs[0]["change_id"] == revs[1][
            "change_id"
        ]
        # undoing it asks for its own reason (the save's is not reused)
        change = page.locator("#gm-history li[data-change]").first
        change.locator("button", has_text="撤销").first.click()
        why = change.locator(".gm-revert-reason")
        assert why.input_value() == ""
        change.locator("button", has_text="确认撤销").click()
        page.wait_for_function(
            "document.getElementById('gm-edit-status').className.includes('gm-error')"
        )
        assert len(app.extensions["gridmap"].store.revisions("grid")) == 2  # nothing undone
        why.fill("the line was wrong")
        change.locator("button", has_text="确认撤销").click()
        page.wait_for_function("window.gridmap.current.layers.grid.getLayers().length === 651")
        revs = app.extensions["gridmap"].store.revisions("grid")
        assert len(revs) == 4 and all("the line was wrong" in r["reason"] for r in revs[2:])


def test_planner_proposes_and_adopts_cells_for_a_whole_street(browser, tmp_path):
    """Select a cell, switch the proposal to its whole street, read current vs proposed,
    adopt: the preview lists every cell, the save is one change and the map redraws."""
    with _planner_on_the_map(browser, tmp_path) as (app, page, external, errors):
        feature = app.test_client().get("/collections/grid/items/540102005001001").get_json()
        inside = shapely.geometry.shape(feature["geometry"]).representative_point()
        # no animation: a click that falls while the map still zooms is lost; then the
        # cell is clicked once it is drawn
        page.evaluate(
            "p => window.gridmap.current.map.setView([p[1], p[0]], 16, {animate: false}) && null",
            [inside.x, inside.y],
        )
        page.wait_for_function(
            "window.gridmap.current.layers.grid.getLayers().some("
            "l => l.feature.properties.code === '540102005001001')"
        )
        # switching the communities off and on again draws them last; the cells must stay
        # on top all the same, or the click below selects the community, not the cell
        page.evaluate("""() => {
            const label = [...document.querySelectorAll('.leaflet-control-layers-overlays label')]
                .find(l => l.textContent.trim() === '社区');
            const box = label.querySelector('input'); box.click(); box.click(); }""")
        page.wait_for_timeout(300)
        page.mouse.click(*_screen(page, (inside.x, inside.y)))
        page.wait_for_function(
            "document.getElementById('gm-prop-community').value === '540102005001'", timeout=5_000
        )
        # first the cell's community: a wide wedge, zoomed to clear of the open panel
        page.click("#gm-propose")
        page.wait_for_selector("#gm-prop-metrics", timeout=60_000)
        page.wait_for_timeout(1000)
        east, panel_left = page.evaluate("""() => {
            const m = window.gridmap.current.map, b = window.gridmap.editor.layers.proposal.getBounds();
            const r = m.getContainer().getBoundingClientRect();
            return [m.latLngToContainerPoint(b.getNorthEast()).x + r.left,
                    document.getElementById('gm-panel').getBoundingClientRect().left]; }""")
        assert east <= panel_left
        page.select_option("#gm-prop-scope", "street")
        page.wait_for_function("document.getElementById('gm-prop-community').value === '540102005'")
        page.click("#gm-propose")
        page.wait_for_function("document.getElementById('gm-prop-metrics') === null")  # loading
        page.wait_for_selector("#gm-prop-metrics", timeout=60_000)
        metrics = page.inner_text("#gm-prop-metrics")
        assert "38" in metrics and "40" in metrics  # current cells, proposed cells
        assert "5 / 5" in metrics  # every community of the street within the band
        assert page.evaluate("window.gridmap.editor.layers.proposal.getLayers().length") == 40
        page.wait_for_timeout(1000)  # the map's zoom to the proposal
        page.screenshot(path=str(tmp_path / "street-proposal.png"))
        page.click("#gm-adopt")
        page.wait_for_selector("#gm-edit-result tr[data-code]", timeout=60_000)
        rows = page.locator("#gm-edit-result tr[data-code]").count()
        assert rows >= 40  # the 40 new cells, and the old codes that are gone
        page.fill("#gm-reason", "street re-partition 300-500")
        page.click("#gm-save")
        page.wait_for_function(
            "document.getElementById('gm-edit-status').textContent.includes('#')", timeout=60_000
        )
        page.wait_for_function("window.gridmap.current.layers.grid.getLayers().length === 653")
        page.screenshot(path=str(tmp_path / "street-adopted.png"))
        assert external == [] and errors == []
        grid = app.extensions["gridmap"].store.read_layer("grid")
        street = grid[grid["parent_code"].str.startswith("540102005")]
        assert len(street) == 40 and street["households"].between(299, 501).all()


def test_a_stale_save_says_who_changed_the_cell_and_draws_their_change(browser, tmp_path):
    """Two planners: ana previews a split, bob changes the same cell first; ana's save is
    refused, and the panel names bob, his time and reason, and the map draws his change."""
    import base64

    from web.auth import add_user

    code = "540102001001002"
    with _planner_on_the_map(browser, tmp_path) as (app, page, external, errors):
        add_user(app.extensions["gridmap"].store, "bob", "planner", "other-secret")
        client = app.test_client()
        feature = client.get(f"/collections/grid/items/{code}").get_json()
        g = shapely.geometry.shape(feature["geometry"])
        line = {
            "type": "LineString",
            "coordinates": [
                [g.centroid.x, g.bounds[1] - 0.001],
                [g.centroid.x, g.bounds[3] + 0.001],
            ],
        }
        page.evaluate("f => window.gridmap.editor.select(f)", feature)
        page.evaluate(
            "op => window.gridmap.editor.preview(op)", {"op": "split", "code": code, "line": line}
        )
        page.wait_for_selector("#gm-edit-result tr[data-code]", timeout=60_000)
        # bob, in a script, changes the cell's households meanwhile
        bob = {"Authorization": "Basic " + base64.b64encode(b"bob:other-secret").decode()}
        got = client.get(f"/collections/grid/items/{code}")
        r = client.put(
            f"/collections/grid/items/{code}",
            headers={"If-Match": got.headers["ETag"], **bob},
            json={**feature, "properties": {"households": 140}, "reason": "household survey 2026"},
        )
        assert r.status_code == 200, r.get_json()
        page.fill("#gm-reason", "split along the lane")
        page.click("#gm-save")
        page.wait_for_function(
            "document.getElementById('gm-edit-status').className.includes('gm-error')",
            timeout=30_000,
        )
        said = page.inner_text("#gm-edit-status")
        assert "bob" in said and "household survey 2026" in said and code in said
        sides = page.evaluate(
            "window.gridmap.editor.layers.diff.getLayers().map(l => l.feature.properties.side)"
        )
        assert sorted(sides) == ["after", "before"]
        # and the cell's history now lists bob's change
        page.wait_for_function("document.getElementById('gm-history').textContent.includes('bob')")
        assert external == [] and errors == []
        revs = app.extensions["gridmap"].store.revisions("grid")
        assert [r["author"] for r in revs] == ["bob"]  # ana's split was not saved


def test_an_officer_compares_adopts_and_reverts_an_aligned_layout(browser, tmp_path):
    """Issue 14.3 on the map: the layout proposal splits the map, current on the left and
    proposed on the right (one outline per station, moving together); the transfer list
    names the strip 公德林派出所 gives back; a planner adopts it with a reason (the police
    layer then is whole streets) and reverts it (the outlines come back)."""
    with _planner_on_the_map(browser, tmp_path) as (app, page, external, errors):
        _tab(page, "align")
        before = app.extensions["gridmap"].store.read_layer("police_area").set_index("code")
        page.click("#gm-layout-propose")
        page.wait_for_selector("#gm-layout-status", timeout=60_000)
        assert "已证明" in page.inner_text("#gm-layout-status")
        page.wait_for_function(
            "document.querySelectorAll('#gm-compare .leaflet-interactive').length >= 8"
        )
        rows = page.locator("#gm-layout-transfers li").all_inner_texts()
        assert any("吉崩岗街道" in r and "公德林" in r and "1,064" in r for r in rows)
        # side by side: each half shows the same place
        left, right = page.evaluate("""() => {
            const m = window.gridmap.current.map, a = m.getContainer().getBoundingClientRect(),
                  b = document.getElementById('gm-compare').getBoundingClientRect();
            return [[a.left, a.width, m.getCenter().lat], [b.left, b.width]]; }""")
        assert right[0] >= left[0] + left[1] - 1 and abs(left[1] - right[1]) < 4
        assert page.locator("#gm-layout-csv").get_attribute("href").endswith("f=csv")
        page.screenshot(path=str(tmp_path / "layout.png"))
        page.fill("#gm-layout-reason", "派出所辖区与街道一致")
        page.click("#gm-layout-adopt")
        page.wait_for_function(
            "document.querySelector('#gm-layout-result .gm-adopt').textContent.includes('已采纳')",
            timeout=30_000,
        )
        stored = app.extensions["gridmap"].store
        after = stored.read_layer("police_area").set_index("code")
        streets = stored.read_layer("street").set_index("code")
        assert after.geometry["540102PA02"].equals(streets.geometry["540102002"])
        page.fill("#gm-layout-revert-reason", "先撤销")
        page.click("#gm-layout-revert")
        page.wait_for_function(
            "document.querySelector('#gm-layout-result .gm-adopt').textContent.includes('已撤销')",
            timeout=30_000,
        )
        back = stored.read_layer("police_area").set_index("code")
        assert back.geometry["540102PA02"].equals(before.geometry["540102PA02"])
        page.click("#gm-layout-clear")
        assert page.locator("#gm-compare").count() == 0
        assert external == [] and errors == []


def test_a_large_grid_is_drawn_from_vector_tiles_at_city_zoom(browser, tmp_path):
    """8,000 cells: more than the page draws one by one, so at the city's zoom the grid
    comes as vector tiles (it used to say "zoom in"): tiles are painted, a hover names the
    cell and a click opens the whole feature's attributes and who is in charge there."""
    from tests.tilings import hierarchy

    streets, communities, grids = hierarchy(8000, seed=2)
    path = tmp_path / "city.gpkg"
    store = open_store(path)
    for name, gdf in {"street": streets, "community": communities, "grid": grids}.items():
        store.write_layer(name, gdf.to_crs(4490))
    url, server = serve_in_thread(create_app({"DATASET": str(path)}))
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    tiles, errors = [], []
    page.on("response", lambda r: tiles.append(r.status) if "/tiles/" in r.url else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(url + "/")
        page.wait_for_function(
            "window.gridmap && window.gridmap.current && (() => {"
            " const g = window.gridmap.current.layers.grid.getLayers();"
            " return g.length === 1 && g[0] instanceof L.VectorGrid; })()",
            timeout=30_000,
        )
        page.wait_for_function(
            "document.querySelectorAll('canvas.leaflet-tile-loaded').length >= 4", timeout=60_000
        )
        page.wait_for_timeout(1000)
        assert tiles and set(tiles) <= {200, 304} and errors == []
        painted = page.evaluate("""() => {
            let n = 0;
            for (const c of document.querySelectorAll('canvas.leaflet-tile-loaded')) {
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
            }
            return n; }""")
        assert painted > 100_000  # cells filled across the tiles, not a blank map
        centre = page.evaluate(
            "(() => { const m = window.gridmap.current.map;"
            " const p = m.latLngToContainerPoint(m.getCenter());"
            " const r = m.getContainer().getBoundingClientRect();"
            " return [r.left + p.x - 200, r.top + p.y]; })()"
        )
        page.mouse.move(*centre)
        page.wait_for_selector(".leaflet-tooltip", timeout=10_000)
        assert re.search(r"网格\d+ · 540102\d{9}", page.inner_text(".leaflet-tooltip"))
        page.mouse.click(*centre)
        page.wait_for_selector(".leaflet-popup-content table", timeout=10_000)
        popup = page.inner_text(".leaflet-popup-content")
        code = re.search(r"540102\d{9}", popup).group(0)
        assert code in set(grids["code"])
        page.screenshot(path=str(tmp_path / "tiles.png"))
    finally:
        page.close()
        server.close()


def _revert_upload(page, reason: str) -> None:
    """Revert the upload just committed, with ``reason``, and wait until it is saved."""
    page.fill("#gm-upload-revert input", reason)
    page.click("#gm-upload-revert button")
    page.wait_for_function(
        "document.getElementById('gm-upload-status').textContent.includes('已保存')"
    )


def test_planner_uploads_an_excel_sheet_maps_it_commits_and_reverts(browser, tmp_path):
    """The upload loop as a planner does it, offline: choose an .xlsx with Chinese
    headers, read it, choose update by code, read the diff and the findings it would add,
    give a reason, commit; the map shows the new post; revert it with its own reason."""
    import pandas as pd

    from tests.test_upload import _facilities

    with _planner_on_the_map(browser, tmp_path) as (app, page, external, errors):
        stored = app.extensions["gridmap"].stored["facility"]
        held = len(stored)
        book = tmp_path / "设施.xlsx"
        new = _facilities(["NEWPOST"], x0=91.125, crs=4326)
        pd.DataFrame(
            {"编码": [*stored["code"][:5], "NEWPOST"], "名称": [*stored["name"][:5], "新警务站"],
             "类型": [*stored["kind"][:5], "便民警务站"],
             "经度": [*stored.geometry.x[:5], new.geometry.x[0]],
             "纬度": [*stored.geometry.y[:5], new.geometry.y[0]]}
        ).to_excel(book, index=False)  # fmt: skip
        page.select_option("#gm-upload-layer", "facility")
        page.set_input_files("#gm-upload-file", str(book))
        page.select_option("#gm-upload-crs", "EPSG:4490")
        page.click("#gm-upload-read")
        page.wait_for_selector("#gm-upload-modes")
        mapping = page.inner_text("#gm-upload-mapping")
        assert "编码" in mapping and "经度" not in mapping  # coordinates are not fields
        assert page.eval_on_selector("select[data-column='类型']", "s => s.value") == "kind"
        assert "刷新" not in page.inner_text("#gm-upload")
        page.check("input[name=gm-upload-mode][value=update]")
        page.wait_for_selector("#gm-upload-findings")
        modes = page.inner_text("#gm-upload-modes")
        assert "新增 1" in modes and "修改 0" in modes and "不变 5" in modes, modes
        assert "新警务站 NEWPOST" in modes, modes  # names before codes
        assert page.evaluate("window.gridmap.editor.upload.getLayers().length") == 6  # previewed
        page.screenshot(path=str(tmp_path / "upload-preview.png"))
        page.click("#gm-upload-commit")  # no reason yet: asked for one
        assert "修改原因" in page.inner_text("#gm-upload-status")
        page.fill("#gm-upload-reason", "新设警务站")
        page.click("#gm-upload-commit")
        page.wait_for_function(
            "document.getElementById('gm-upload-status').textContent.includes('已导入为第')"
            " || document.getElementById('gm-upload-status').className.includes('gm-error')"
        )
        assert "已导入为第" in page.inner_text("#gm-upload-status"), page.inner_text(
            "#gm-upload-status"
        )
        assert len(app.extensions["gridmap"].stored["facility"]) == held + 1
        page.wait_for_function(  # the map's facilities drawn again, the new post among them
            f"window.gridmap.current.facilities.getLayers().length === {held + 1}"
        )
        page.screenshot(path=str(tmp_path / "upload-done.png"))
        _revert_upload(page, "位置未定")
        assert len(app.extensions["gridmap"].stored["facility"]) == held
        assert not external and not errors, (external, errors)


def test_planner_appends_roads_written_whole_and_reverts_them(browser, tmp_path):
    """A layer without codes is written whole: the page says so before the commit, the
    commit is a numbered change all the same, and its revert takes the roads back."""
    import json

    with _planner_on_the_map(browser, tmp_path) as (app, page, external, errors):
        held = len(app.extensions["gridmap"].stored["road"])
        road = {"type": "Feature", "properties": {"名称": "新修路", "class": "residential"},
                "geometry": {"type": "LineString",
                             "coordinates": [[91.118, 29.652], [91.124, 29.652]]}}  # fmt: skip
        path = tmp_path / "新路.geojson"
        path.write_text(json.dumps({"type": "FeatureCollection", "features": [road]}))
        page.select_option("#gm-upload-layer", "road")
        page.set_input_files("#gm-upload-file", str(path))
        page.click("#gm-upload-read")
        page.wait_for_selector("#gm-upload-modes")
        page.check("input[name=gm-upload-mode][value=append]")
        page.wait_for_function(
            "document.getElementById('gm-upload-modes').textContent.includes('可整体撤销')"
        )
        page.fill("#gm-upload-reason", "新路竣工")
        page.click("#gm-upload-commit")
        page.wait_for_function(
            "document.getElementById('gm-upload-status').textContent.includes('已导入为第')"
            " || document.getElementById('gm-upload-status').className.includes('gm-error')"
        )
        status = page.inner_text("#gm-upload-status")
        assert "已导入为第" in status and "没有编码" in status, status
        assert len(app.extensions["gridmap"].stored["road"]) == held + 1
        page.screenshot(path=str(tmp_path / "upload-whole.png"))
        _revert_upload(page, "录入有误")
        assert len(app.extensions["gridmap"].stored["road"]) == held
        assert not external and not errors, (external, errors)


def test_the_grid_history_lists_a_layer_written_whole_without_a_diff(browser, tmp_path):
    """The sample's grid holds a repeated code, so a replace of it is written whole: the
    edit tab's history names it by its feature counts and offers its revert, not a diff."""
    from layers.importing import import_layer

    with _planner_on_the_map(browser, tmp_path) as (app, page, external, errors):
        served = app.extensions["gridmap"]
        grid = served.stored["grid"].copy()
        grid.loc[0, "households"] = 1
        done = import_layer(served.store, "grid", grid, mode="replace", author="ana",
                            reason="整层替换", served=served)  # fmt: skip
        assert "codes repeat" in done["whole"]["en"]
        page.reload()
        page.wait_for_function("window.gridmap.current.layers.grid.getLayers().length > 600")
        _tab(page, "edit")
        item = page.locator(f"#gm-history li[data-change='{done['change_id']}']")
        item.wait_for()
        text = item.inner_text()
        assert f"整层写入：{len(grid)} → {len(grid)} 个要素" in text, text
        assert "上传（替换，整层写入）：整层替换" in text and "upload" not in text, text
        assert item.locator("button", has_text="撤销").count() == 1
        assert item.locator("button").count() == 1  # no diff to draw
        page.screenshot(path=str(tmp_path / "history-whole.png"))
        assert not external and not errors, (external, errors)


def test_placeholders_come_from_the_served_dataset(tmp_path):
    """Issue 15.6: another city's data, another city's example code and coordinates."""
    import geopandas as gpd

    store = open_store(tmp_path / "hangzhou.gpkg")
    square = shapely.box(120.14, 30.27, 120.16, 30.29)
    store.write_layer(
        "street",
        gpd.GeoDataFrame(
            {"code": ["330106001"], "name": ["北山街道"]}, geometry=[square], crs=4490
        ),
    )
    store.write_layer("community", gpd.GeoDataFrame(
        {"code": ["330106001001"], "name": ["保俶社区"], "parent_code": ["330106001"]},
        geometry=[square], crs=4490))  # fmt: skip
    html = (
        create_app({"DATASET": str(tmp_path / "hangzhou.gpkg")})
        .test_client()
        .get("/", headers=BROWSER)
        .get_data(as_text=True)
    )
    assert 'placeholder="330106001001"' in html
    assert 'placeholder="120.1500"' in html and 'placeholder="30.2800"' in html
    assert "540102" not in html and "91.11" not in html


def test_siting_in_the_browser_answers_in_seconds_and_says_it_is_optimal(browser, live_sample):
    """Issue 15.5: p new police posts suggested within seconds (it took 50–93 s with only
    "…" on screen), the seconds counted while it runs, and the answer says proven optimal."""
    page, events = _open(browser, live_sample + "/")
    _tab(page, "service")
    page.select_option("#gm-cov-kind", "police_post")
    page.fill("#gm-site-p", "3")
    started = time.perf_counter()
    page.click("#gm-site")
    assert "正在求解" in page.inner_text("#gm-site-result") or page.inner_text(
        "#gm-site-result"
    ).startswith("新增覆盖")
    page.wait_for_function(
        "document.getElementById('gm-site-result').textContent.includes('已证明最优')",
        timeout=15_000,
    )
    legend = page.inner_text("#gm-cov-legend")  # the coverage shading explained
    assert "未覆盖人口" in legend and "设施可达道路" in legend, legend
    assert time.perf_counter() - started < 10
    assert page.evaluate("window.gridmap.current.sites.getLayers().length") == 3
    assert events["errors"] == [] and events["dialogs"] == []
    page.close()


def test_the_findings_panel_says_how_far_the_check_is(browser, tmp_path, monkeypatch):
    """Issue 13.4: while the service checks in the background, the findings panel names
    the step under way and the seconds so far; GET /check says the same, then done."""
    import threading
    import time

    import geo
    from geo.progress import step

    gate, real = threading.Event(), geo.check

    def held(layers, **options):  # the real check, held at its first step
        options["progress"](step("overlaps", layer="grid", n=651))
        gate.wait(30)
        return real(layers, **options)

    monkeypatch.setattr(geo, "check", held)
    path = tmp_path / "city.gpkg"
    path.write_bytes(SAMPLE_PATH.read_bytes())
    app = create_app({"DATASET": str(path)})
    client = app.test_client()
    status = client.get("/check").get_json()
    for _ in range(50):  # the background check starts with the service
        if status["state"] == "running":
            break
        time.sleep(0.1)
        status = client.get("/check").get_json()
    assert status["state"] == "running" and status["steps_done"] == 1 and status["last_s"] is None
    assert status["step"] == {
        "en": "grid: overlaps (651 features)",
        "zh": "网格：重叠（651 个要素）",
    }
    url, server = serve_in_thread(app)
    try:
        page, events = _open(browser, url + "/", findings=False)
        _tab(page, "check")
        page.wait_for_function(
            "(document.getElementById('gm-check-progress') || {}).textContent"
            "?.includes('网格：重叠（651 个要素） · 已用')"
        )
        page.screenshot(path=str(tmp_path / "check-progress.png"))
        gate.set()
        page.wait_for_function("document.querySelectorAll('#gm-findings li.gm-link').length > 0")
        assert page.locator("#gm-check-progress").count() == 0  # gone with the findings
        done = client.get("/check").get_json()
        assert done["state"] == "done" and done["findings"] == 11 and done["seconds"] > 0
        assert events["errors"] == [] and events["external"] == []
        page.close()
    finally:
        gate.set()
        server.close()
