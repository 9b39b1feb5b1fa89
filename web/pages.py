"""The map page: a folium/Leaflet map whose every asset is served by the app.

folium builds the page and the Leaflet map; its CDN links (Leaflet, jQuery, Bootstrap, Font
Awesome, plugins) are replaced by the copies in ``web/static/vendor``. Layers are not
embedded: the page's ES modules (``static/js``) fetch them from the API for the current view.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from flask import Blueprint, Response, current_app, render_template, request, url_for

from geo.findings import RULES, SLIVER
from geo.kinds import FACILITY_KINDS, KINDS, jurisdictions, map_layers, partitions
from web.i18n import STRINGS, pick_lang
from web.negotiation import chosen_format
from web.params import accepts

if TYPE_CHECKING:
    import folium

bp = Blueprint("pages", __name__)

TIANDITU = (
    "http://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile"
    "&VERSION=1.0.0&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
    "&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}"
)


def check_basemap(setting: str) -> None:
    """Refuse a base-map setting that is none of the supported kinds."""
    if setting not in ("", "none", "osm", "tianditu") and "{z}" not in setting:
        raise ValueError(
            f"GRIDMAP_BASEMAP '{setting}' must be none, osm, tianditu or an XYZ "
            "URL template with {z}/{x}/{y}"
        )


def warm() -> None:
    """Import folium now (0.3-0.5 s: it compiles its page templates), so that the first
    map page does not wait for it; the service calls this in the background once it
    answers, rather than paying it before."""
    import folium  # noqa: F401


def _basemap(m: folium.Map, setting: str, key: str) -> None:
    """Add the configured base map: none (default), osm, tianditu or an XYZ URL."""
    import folium

    if setting in ("", "none"):
        return
    if setting == "osm":
        folium.TileLayer("OpenStreetMap", name="OpenStreetMap").add_to(m)
    elif setting == "tianditu":
        for layer, name in (("vec", "天地图"), ("cva", "天地图注记")):
            folium.TileLayer(
                TIANDITU.format(s="{s}", layer=layer, key=key),
                name=name,
                attr="天地图",
                subdomains="01234567",
                overlay=layer == "cva",
            ).add_to(m)
    else:
        folium.TileLayer(setting, name="basemap", attr="basemap").add_to(m)


def _static(path: str) -> str:
    return url_for("static", filename=path)


def render_map(
    catalog,
    lang: str,
    basemap: str,
    key: str,
    user: dict | None = None,
    band: tuple[int, int] = (300, 500),
) -> str:
    """The map page's HTML; ``user`` is the signed-in account (editing tools for planners)."""
    import folium

    from web.auth import csrf_token

    x0, y0, x1, y1 = catalog.extent()
    m = folium.Map(
        location=[(y0 + y1) / 2, (x0 + x1) / 2], zoom_start=13, tiles=None, prefer_canvas=True
    )
    m.default_js = [
        ("leaflet", _static("vendor/leaflet/leaflet.js")),
        ("vectorgrid", _static("vendor/leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js")),
        ("markercluster", _static("vendor/leaflet.markercluster/leaflet.markercluster.js")),
        ("geoman", _static("vendor/leaflet-geoman/leaflet-geoman.min.js")),
    ]
    m.default_css = [
        ("leaflet_css", _static("vendor/leaflet/leaflet.css")),
        ("markercluster_css", _static("vendor/leaflet.markercluster/MarkerCluster.css")),
        (
            "markercluster_default_css",
            _static("vendor/leaflet.markercluster/MarkerCluster.Default.css"),
        ),
        ("geoman_css", _static("vendor/leaflet-geoman/leaflet-geoman.css")),
        ("gridmap_css", _static("gridmap.css")),
    ]
    _basemap(m, basemap, key)
    m.fit_bounds([[y0, x0], [y1, x1]])
    strings = STRINGS[lang]
    root = m.get_root()
    root.header.add_child(folium.Element(f"<title>{strings['title']} · gridmap</title>"))
    # the page's own scripts: ES modules in static/js (deferred: they run after the vendored
    # classic scripts, before the load event that calls gridmap.start)
    root.header.add_child(
        folium.Element(f'<script type="module" src="{_static("js/main.js")}"></script>')
    )
    root.html.add_child(
        folium.Element(
            render_template(
                "panel.html",
                s=strings,
                lang=lang,
                other="en" if lang == "zh" else "zh",
                themes=catalog.themes,
                kinds=_kinds(catalog),
                user=user,
                csrf=csrf_token(),
                band=band,
                example=_examples(catalog, (x0, y0, x1, y1)),
            )
        )
    )
    config = {
        "lang": lang,
        "strings": strings,
        # what the page draws, from the registry of kinds and the rule table
        "layers": [
            _layer_config(n, strings, len(catalog.collections[n]))
            for n in map_layers()
            if n in catalog.collections
        ],
        "lookupLayers": [n for n in partitions() if n in catalog.collections],
        # the jurisdictions whose alignment with the hierarchy the officers' panel shows
        "alignmentLayers": [n for n in jurisdictions() if n in catalog.collections],
        "facilityKinds": {
            n: {"label": strings["kinds"][n], "color": f.color, "shape": f.shape}
            for n, f in FACILITY_KINDS.items()
        },
        "rules": {n: {"label": strings["rules"][n], "color": r.color} for n, r in RULES.items()},
        "sliverColor": SLIVER["color"],
        "facilities": "facility" in catalog.collections,
        "themes": catalog.themes,
        "api": {
            "items": url_for("features.items", layer="LAYER"),
            # Mapbox Vector Tiles (OGC API – Tiles): zoom, row, column
            "tiles": url_for("tiles.tileset", layer="LAYER", tms="WebMercatorQuad")
            + "/{z}/{y}/{x}",
            "findings": url_for("analysis.findings"),
            "check": url_for("analysis.check_status"),
            "lookup": url_for("analysis.lookup"),
            "alignment": url_for("analysis.alignment"),
            "realign": url_for("analysis.alignment_proposal"),
            "changes": url_for("edit.change_list", layer="LAYER"),
            "search": url_for("analysis.search"),
            "coverage": url_for("sites.coverage"),
            "whatif": url_for("sites.whatif"),
            "areas": url_for("sites.service_areas"),
            "siting": url_for("sites.siting"),
        },
        # the editor; the CSRF token goes with every editing request of this session
        "edit": {
            "user": user,
            "csrf": csrf_token(),
            "band": list(band),
            "preview": url_for("edit.preview"),
            "apply": url_for("edit.apply"),
            "changes": url_for("edit.change_list", layer="grid"),
            "change": url_for("edit.change", layer="grid", change_id=0),
            "revert": url_for("edit.revert", layer="grid", change_id=0),
            "diff": url_for("edit.diff"),
            "proposal": url_for("analysis.proposal"),
            "print": url_for("printing.community", code="CODE"),
            # uploads: the layer kinds a file may be brought in as, and where to send it
            "uploads": url_for("upload.create"),
            "uploadKinds": list(KINDS),
            "layerChanges": url_for("edit.change_list", layer="LAYER"),
            "layerRevert": url_for("edit.revert", layer="LAYER", change_id=0),
        },
    }
    payload = script_json(config)
    # folium writes the map's own script after this one: start once the page has loaded.
    root.script.add_child(
        folium.Element(
            f'window.addEventListener("load", function () {{ gridmap.start({m.get_name()}, {payload}); }});'
        )
    )
    return root.render()


# Characters that could end or change the script element the JSON is written into ("</",
# "<!--", "<script"), or break it as JavaScript (line and paragraph separators).
_SCRIPT_UNSAFE = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def script_json(value) -> str:
    """``value`` as JSON to write inside an HTML ``<script>``: ``<``, ``>`` and ``&`` as
    ``\\u`` escapes, so that no data (an account named ``<!--<script>``, a feature named
    ``</script>``) can end the element early or turn the rest of the page into script.

    >>> script_json({"user": "<!--<script>"})
    '{"user": "\\\\u003c!--\\\\u003cscript\\\\u003e"}'
    """
    return json.dumps(value, ensure_ascii=False).translate(_SCRIPT_UNSAFE)


def _examples(catalog, extent) -> dict:
    """Placeholders from the served dataset, not from any one city: a community's code,
    and the middle of its extent as longitude and latitude."""
    x0, y0, x1, y1 = extent
    com = catalog.collections.get("community")
    code = str(com.codes[0]) if com is not None and len(com) else ""
    return {"community": code, "lon": f"{(x0 + x1) / 2:.4f}", "lat": f"{(y0 + y1) / 2:.4f}"}


def _layer_config(name: str, strings: dict, count: int) -> dict:
    """A map layer as the page draws it: title, shown at first, Leaflet style."""
    k = KINDS[name]
    style = {key: v for key, v in k.style.items() if key != "classWeight"}
    out = {
        "id": name,
        "title": strings[name],
        "shown": k.shown,
        "count": count,
        "geometry": k.geometry,
        "style": style,
    }
    if "classWeight" in k.style:  # line weight by road class
        out["classWeight"] = k.style["classWeight"]
    return out


def _kinds(catalog) -> list[str]:
    if "facility" not in catalog.layers or "grid" not in catalog.layers:
        return []
    return sorted(set(catalog.layers["facility"]["kind"].astype(str)))


@bp.get("/favicon.ico")
@accepts(formats=())
def favicon():
    from web.features import no_content

    return no_content()


@bp.get("/")
@accepts("lang", formats=("json", "html"))
def index():
    """The map for browsers (they ask for text/html first), or the OGC API landing page
    for clients asking for JSON or anything (``*/*``: curl, OWSLib, scripts)."""
    if chosen_format() == "json":
        from web.features import landing

        return landing()
    lang = pick_lang(request.args.get("lang"), request.accept_languages)
    from web.auth import session_user

    catalog = current_app.extensions["gridmap"]
    html = render_map(
        catalog,
        lang,
        current_app.config["BASEMAP"],
        current_app.config["TIANDITU_KEY"],
        user=session_user(catalog.store),
        band=current_app.config["HOUSEHOLD_BAND"],
    )
    response = Response(html, mimetype="text/html")
    response.vary.add("Accept-Language")  # the language follows the browser's unless asked
    return response
