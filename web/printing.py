"""For grid staff on paper and desktop GIS: a printable map per community, and downloads of
a layer as GeoPackage, GeoJSON or zipped Shapefile (UTF-8 or GBK for older tools).

    GET /print/community/{code}               an A4 page: the community's cells drawn to
                                              scale with their serials and households,
                                              roads and facilities, and a table of cells
    GET /export/{layer}?format=gpkg|geojson|shp[&encoding=gbk]
"""

from __future__ import annotations

import datetime as dt
import io
import tempfile
import zipfile
from pathlib import Path

from flask import Blueprint, Response, current_app, render_template, request

from geo.errors import InputError, NotFound
from geo.kinds import KINDS
from geo.sheet import community_index, community_sheet
from layers.export import export_layer
from web.i18n import STRINGS, pick_lang
from web.params import accepts

bp = Blueprint("printing", __name__)

_FORMATS = {"gpkg": ".gpkg", "geojson": ".geojson", "shp": ".shp"}
_ENCODINGS = {"utf-8": "UTF-8", "gbk": "GBK"}


def _catalog():
    return current_app.extensions["gridmap"]


@bp.get("/export/<layer>")
@accepts("format", "encoding", formats=("gpkg", "geojson", "zip"), f=False)
def export(layer):
    """A layer as a file: GeoPackage, GeoJSON or zipped Shapefile."""
    stored = _catalog().stored
    if layer not in stored or layer not in KINDS:
        raise NotFound(
            f"no layer '{layer}'; available: {', '.join(stored)}",
            zh=f"没有图层“{layer}”；可用：{', '.join(stored)}",
        )
    fmt = request.args.get("format", "gpkg")
    enc = request.args.get("encoding", "utf-8").lower()
    if fmt not in _FORMATS:
        raise InputError(
            f"format must be one of {', '.join(_FORMATS)}",
            zh=f"format 须为 {', '.join(_FORMATS)} 之一",
        )
    if enc not in _ENCODINGS or (enc != "utf-8" and fmt != "shp"):
        raise InputError(
            "encoding must be utf-8 or gbk (gbk for shapefiles only)",
            zh="encoding 须为 utf-8 或 gbk（gbk 仅用于 Shapefile）",
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = export_layer(
            stored[layer],
            Path(tmp) / f"{layer}{_FORMATS[fmt]}",
            layer=layer,
            encoding=_ENCODINGS[enc] if fmt == "shp" else None,
        )
        if fmt == "shp":  # a shapefile is several files: send them zipped
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
                for part in sorted(Path(tmp).iterdir()):
                    z.write(part, part.name)
            data, name, mime = buf.getvalue(), f"{layer}_{enc}.zip", "application/zip"
        else:
            data, name = path.read_bytes(), path.name
            mime = "application/geopackage+sqlite3" if fmt == "gpkg" else "application/geo+json"
    return Response(
        data, mimetype=mime, headers={"Content-Disposition": f"attachment; filename={name}"}
    )


@bp.get("/print/community/<code>")
@bp.get("/print/community/", defaults={"code": ""})
@accepts("lang", formats=("html",))
def community(code):
    """A community's printable grid sheet (or the list of communities)."""
    cat = _catalog()
    lang = pick_lang(request.args.get("lang"), request.accept_languages)
    if not code:  # the list of communities to print
        rows = community_index(cat.layers)
        return render_template("print_index.html", s=STRINGS[lang], lang=lang, rows=rows)
    sheet = community_sheet(cat.layers, code)
    return render_template(
        "print.html",
        s=STRINGS[lang],
        lang=lang,
        **sheet,
        today=dt.date.today().isoformat(),
        revision=_last_revision(cat),
    )


def _last_revision(cat) -> int:
    revs = cat.store.revisions("grid")
    return revs[-1]["id"] if revs else 0
