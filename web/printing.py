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

import numpy as np
import shapely
from flask import Blueprint, Response, current_app, render_template, request

from geo.errors import InputError, NotFound
from geo.kinds import KINDS
from layers.export import export_layer
from web.i18n import STRINGS, pick_lang

bp = Blueprint("printing", __name__)

_FORMATS = {"gpkg": ".gpkg", "geojson": ".geojson", "shp": ".shp"}
_ENCODINGS = {"utf-8": "UTF-8", "gbk": "GBK"}


def _catalog():
    return current_app.extensions["gridmap"]


@bp.get("/export/<layer>")
def export(layer):
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


class _Sheet:
    """Metric coordinates → SVG user units (y down), fitted to a ``width``×``height`` box."""

    def __init__(self, bounds, width=1000.0, height=1000.0, margin=20.0):
        x0, y0, x1, y1 = bounds
        self.scale = min(
            (width - 2 * margin) / max(x1 - x0, 1e-9), (height - 2 * margin) / max(y1 - y0, 1e-9)
        )
        self.x0, self.y1, self.margin = x0, y1, margin
        self.width = (x1 - x0) * self.scale + 2 * margin
        self.height = (y1 - y0) * self.scale + 2 * margin

    def xy(self, coords: np.ndarray) -> np.ndarray:
        out = np.empty_like(coords)
        out[:, 0] = (coords[:, 0] - self.x0) * self.scale + self.margin
        out[:, 1] = (self.y1 - coords[:, 1]) * self.scale + self.margin
        return out

    def path(self, geom) -> str:
        """An SVG path ``d`` for polygons (rings closed) and lines."""
        parts = []
        for g in shapely.get_parts(geom):
            rings = [g.exterior, *g.interiors] if g.geom_type == "Polygon" else [g]
            for ring in rings:
                pts = self.xy(shapely.get_coordinates(ring))
                d = "M" + " L".join(f"{x:.1f} {y:.1f}" for x, y in pts)
                parts.append(d + (" Z" if g.geom_type == "Polygon" else ""))
        return " ".join(parts)


@bp.get("/print/community/<code>")
@bp.get("/print/community/", defaults={"code": ""})
def community(code):
    cat = _catalog()
    lang = pick_lang(request.args.get("lang"))
    comm, grid = cat.layers.get("community"), cat.layers.get("grid")
    if comm is None or grid is None:
        raise NotFound("printing needs community and grid layers", zh="打印需要社区和网格图层")
    if not code:  # the list of communities to print
        counts = grid.groupby(grid["parent_code"].astype(str))["households"].agg(["size", "sum"])
        rows = [
            {
                "code": str(c.code),
                "name": c.name,
                "cells": int(counts["size"].get(str(c.code), 0)),
                "households": int(counts["sum"].get(str(c.code), 0)),
            }
            for c in comm.sort_values("code").itertuples()
        ]
        return render_template("print_index.html", s=STRINGS[lang], lang=lang, rows=rows)
    row = comm[comm["code"].astype(str) == code]
    if len(row) != 1:
        raise NotFound(
            f"no community with code '{code}'; select a grid cell on the map "
            "first, or give the community's code",
            zh=f"没有编码为 {code} 的社区；请先在地图上选择一个网格，或给出社区编码",
        )
    crs = cat.dataset.metric_crs
    area = row.to_crs(crs)
    outline = area.geometry.iloc[0]
    cells = grid[grid["parent_code"].astype(str) == code].to_crs(crs)
    cells = cells.sort_values("code", kind="stable")  # the table in serial order
    sheet = _Sheet(outline.bounds, 1000, 1300)
    roads = []
    if "road" in cat.layers:
        r = cat.layers["road"].to_crs(crs)
        r = r[r.intersects(outline)]
        inside = shapely.intersection(r.geometry.values, outline)
        roads = [sheet.path(g) for g in inside[shapely.length(inside) > 1.0]]
    facilities = []
    if "facility" in cat.layers:
        f = cat.layers["facility"].to_crs(crs)
        f = f[f.within(outline)]
        for p in f.itertuples():
            ((x, y),) = sheet.xy(np.array([[p.geometry.x, p.geometry.y]]))
            facilities.append({"x": x, "y": y, "name": p.name, "kind": p.kind})
    drawn = []
    for c in cells.itertuples():
        # labelled by the cell's serial within the community (its code after the
        # community's), which is what grid staff call it
        serial = c.code[len(code) :] if str(c.code).startswith(code) else c.code
        ((lx, ly),) = sheet.xy(shapely.get_coordinates(c.geometry.representative_point()))
        drawn.append(
            {
                "serial": serial,
                "code": c.code,
                "name": c.name,
                "d": sheet.path(c.geometry),
                "x": lx,
                "y": ly,
                "households": c.households,
                "population": c.population,
                "floating": getattr(c, "floating_population", None),
                "area_km2": c.geometry.area / 1e6,
            }
        )
    # a scale bar of a round length about a fifth of the sheet
    span = (outline.bounds[2] - outline.bounds[0]) / 5
    bar_m = float(10 ** np.floor(np.log10(max(span, 1))))
    bar_m *= 5 if span / bar_m >= 5 else 2 if span / bar_m >= 2 else 1
    street = ""
    if "street" in cat.layers:
        st = cat.layers["street"]
        hit = st[st["code"].astype(str) == str(row["parent_code"].iloc[0])]
        street = hit["name"].iloc[0] if len(hit) else ""
    return render_template(
        "print.html",
        s=STRINGS[lang],
        lang=lang,
        community=row.iloc[0],
        street=street,
        outline=sheet.path(outline),
        cells=drawn,
        roads=roads,
        facilities=facilities,
        width=sheet.width,
        height=sheet.height,
        bar_m=bar_m,
        bar_px=bar_m * sheet.scale,
        total_households=int(cells["households"].sum()),
        crs=crs,
        today=dt.date.today().isoformat(),
        revision=_last_revision(cat),
    )


def _last_revision(cat) -> int:
    revs = cat.store.revisions("grid")
    return revs[-1]["id"] if revs else 0
