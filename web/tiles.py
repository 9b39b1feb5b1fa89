"""The tiles API: OGC API – Tiles (Part 1) with Mapbox Vector Tiles of every collection.

    GET /tileMatrixSets                              the tiling schemes (WebMercatorQuad)
    GET /tileMatrixSets/WebMercatorQuad              its definition (OGC TMS 2.0 JSON)
    GET /collections/{id}/tiles                      the collection's tilesets
    GET /collections/{id}/tiles/WebMercatorQuad      the tileset's metadata: the tile URL
                                                     template, limits, layer and properties
    GET /collections/{id}/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}
                                                     one tile (zoom, row from the north,
                                                     column from the west), as MVT

Tiles are built on first request and kept for the version served (see
:mod:`web.tilecache`); each carries an ETag, and a client revalidates it (``no-cache``).
"""

from __future__ import annotations

from flask import Blueprint, Response, request, url_for

from geo.errors import NotFound
from geo.kinds import KINDS
from geo.report import FINDINGS_LAYERS
from geo.tiles import EXACT_FROM, MAX_ZOOM, TMS
from web.features import JSON, _json, collection_of, link
from web.negotiation import MEDIA_TYPES
from web.params import accepts, catalog

bp = Blueprint("tiles", __name__)

MVT = MEDIA_TYPES["mvt"]
TMS_ID = "WebMercatorQuad"
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
_REL = "http://www.opengis.net/def/rel/ogc/1.0/"
CONFORMANCE = [
    f"http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/{c}"
    for c in ("core", "tileset", "tilesets-list", "geodata-tilesets", "mvt")
] + ["http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset"]


def _tms(tms: str) -> None:
    if tms != TMS_ID:
        raise NotFound(
            f"no tile matrix set '{tms}'; available: {TMS_ID}",
            zh=f"没有瓦片矩阵集“{tms}”；可用：{TMS_ID}",
        )


@bp.get("/tileMatrixSets")
@accepts()
def tile_matrix_sets():
    """The tile matrix sets tiles are offered in."""
    return _json(
        {
            "tileMatrixSets": [
                {
                    "id": TMS_ID,
                    "title": "Google Maps Compatible for the World",
                    "uri": TMS_URI,
                    "links": [link("self", JSON, "tiles.tile_matrix_set", tms=TMS_ID)],
                }
            ],
            "links": [link("self", JSON, "tiles.tile_matrix_sets")],
        }
    )


@bp.get("/tileMatrixSets/<tms>")
@accepts()
def tile_matrix_set(tms):
    """A tile matrix set's definition (OGC Two Dimensional Tile Matrix Set 2.0, JSON)."""
    _tms(tms)
    doc = TMS.model_dump(mode="json", exclude_none=True, by_alias=True)
    # The same in the names of the standard's first version (17-083r2), which GDAL
    # before 3.7 (Debian 12's) reads: a client of either version finds what it knows.
    (minx, miny), (maxx, maxy) = TMS.xy_bbox[:2], TMS.xy_bbox[2:]
    doc.update(
        identifier=TMS_ID,
        supportedCRS="http://www.opengis.net/def/crs/EPSG/0/3857",
        wellKnownScaleSet="http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible",
        boundingBox={
            "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
            "lowerCorner": [minx, miny],
            "upperCorner": [maxx, maxy],
        },
    )
    for matrix in doc["tileMatrices"]:
        matrix.update(identifier=matrix["id"], topLeftCorner=matrix["pointOfOrigin"])
    doc["links"] = [link("self", JSON, "tiles.tile_matrix_set", tms=tms)]
    return _json(doc)


def _tileset_links(layer: str) -> list[dict]:
    template = url_for(
        "tiles.tile", layer=layer, tms=TMS_ID, z=0, row=0, col=0, _external=True
    ).rsplit("/0/0/0", 1)[0]
    return [
        link("self", JSON, "tiles.tileset", layer=layer, tms=TMS_ID),
        link(f"{_REL}tiling-scheme", JSON, "tiles.tile_matrix_set", tms=TMS_ID),
        link("collection", JSON, "features.collection", layer=layer),
        {
            "rel": "item",
            "type": MVT,
            "title": "Mapbox Vector Tiles",
            "templated": True,
            "href": template + "/{tileMatrix}/{tileRow}/{tileCol}",
        },
    ]


def _properties_schema(layer: str) -> dict:
    types = catalog().queryables(layer)
    wanted = {k: v for k, v in types.items() if v in ("string", "integer", "number", "boolean")}
    return {
        "type": "object",
        "properties": {"id": {"type": "string"}, **{k: {"type": v} for k, v in wanted.items()}},
    }


def _lonlat_bounds(layer: str) -> tuple[float, float, float, float]:
    col = collection_of(layer)
    return col.bounds if len(col) else catalog().extent()


def _limits(layer: str) -> list[dict]:
    """Rows and columns of tiles holding the layer's features, per zoom."""
    west, south, east, north = _lonlat_bounds(layer)
    out = []
    for z in range(MAX_ZOOM + 1):
        ul = TMS.tile(west, north, z)
        lr = TMS.tile(east, south, z)
        out.append(
            {
                "tileMatrix": str(z),
                "minTileRow": ul.y,
                "maxTileRow": lr.y,
                "minTileCol": ul.x,
                "maxTileCol": lr.x,
            }
        )
    return out


def _mercator_box(layer: str) -> dict:
    """The layer's bounds in the tiles' CRS (Web Mercator metres)."""
    west, south, east, north = _lonlat_bounds(layer)
    minx, miny = TMS.xy(west, south)
    maxx, maxy = TMS.xy(east, north)
    return {
        "lowerLeft": [minx, miny],
        "upperRight": [maxx, maxy],
        "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
    }


def _title(layer: str) -> str:
    if layer in FINDINGS_LAYERS:
        return " ".join(FINDINGS_LAYERS[layer])
    return f"{KINDS[layer].zh} {KINDS[layer].en_plural}"


@bp.get("/collections/<layer>/tiles")
@accepts()
def tilesets(layer):
    """The tilesets of a collection (vector tiles in WebMercatorQuad)."""
    collection_of(layer)
    summary = {
        "title": _title(layer),
        "dataType": "vector",
        "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
        "tileMatrixSetURI": TMS_URI,
        "links": _tileset_links(layer),
    }
    return _json(
        {
            "tilesets": [summary],
            "links": [
                link("self", JSON, "tiles.tilesets", layer=layer),
                link("collection", JSON, "features.collection", layer=layer),
            ],
        }
    )


@bp.get("/collections/<layer>/tiles/<tms>")
@accepts()
def tileset(layer, tms):
    """A collection's tileset: where its tiles are, which zooms hold its features, the
    layer each tile holds and its properties. Below zoom 13 polygons are generalised as a
    coverage (neighbours keep their shared edges)."""
    _tms(tms)
    collection_of(layer)
    doc = {
        "title": _title(layer),
        "description": f"Mapbox Vector Tiles; exact from zoom {EXACT_FROM}, generalised "
        f"below it without opening gaps between neighbours",
        "dataType": "vector",
        "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
        "tileMatrixSetURI": TMS_URI,
        "boundingBox": _mercator_box(layer),
        "tileMatrixSetLimits": _limits(layer),
        "layers": [
            {
                "id": layer,
                "title": _title(layer),
                "dataType": "vector",
                "minTileMatrix": "0",
                "maxTileMatrix": str(MAX_ZOOM),
                "propertiesSchema": _properties_schema(layer),
            }
        ],
        "links": _tileset_links(layer),
    }
    return _json(doc)


@bp.get("/collections/<layer>/tiles/<tms>/<int:z>/<int:row>/<int:col>")
@accepts(formats=("mvt",))
def tile(layer, tms, z, row, col):
    """One tile of a collection: Mapbox Vector Tile with one layer named as the collection,
    each feature with its properties and ``id`` (empty when no feature reaches it)."""
    _tms(tms)
    if not 0 <= z <= MAX_ZOOM or not (0 <= row < 2**z and 0 <= col < 2**z):
        raise NotFound(
            f"no tile {z}/{row}/{col} in {TMS_ID} (zoom 0–{MAX_ZOOM}, row and column "
            f"0 to 2^zoom − 1)",
            zh=f"{TMS_ID} 中没有瓦片 {z}/{row}/{col}（级别 0–{MAX_ZOOM}，行列号 0 至 2^级别−1）",
        )
    built = catalog().tiles.tile(layer, collection_of(layer), z, col, row)
    headers = {"Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    if request.if_none_match.contains(built.etag):
        response = Response(status=304, headers=headers)
    else:
        body = built.data
        if built.gzipped and "gzip" in request.headers.get("Accept-Encoding", ""):
            body = built.gzipped
            headers["Content-Encoding"] = "gzip"
        response = Response(body, mimetype=MVT, headers=headers)
    response.set_etag(built.etag)
    return response
