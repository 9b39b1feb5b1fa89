"""Editing one feature: check the base revision, validate against its neighbourhood, save a
revision — all inside one store edit, so two editors can never lose each other's work.

The validation runs the checker on the affected part of the dataset (the communities the
old and new geometry touch, their grid cells and streets) before and after the change; a
finding that was not there before rejects the edit unless the planner accepts it with a
reason, which is recorded with the revision.
"""

from __future__ import annotations

import json

import geopandas as gpd
import shapely
from shapely.geometry import shape

from geo.check import check_dataset
from geo.findings import new_since
from layers.schema import spec
from layers.storage.edits import now

__all__ = ["StaleEdit", "EditRejected", "EDITABLE", "preview_feature", "update_feature",
           "revert_feature"]

EDITABLE = ("name", "parent_code", "households", "population", "floating_population")


class StaleEdit(Exception):
    """The feature changed since the editor read it; ``latest`` is the revision that did."""

    def __init__(self, current: int, latest: dict | None):
        super().__init__(f"the feature is at revision {current}")
        self.current, self.latest = current, latest


class EditRejected(Exception):
    """The change would create findings; ``findings`` lists them (rule, codes, area)."""

    def __init__(self, findings: list[dict]):
        super().__init__(f"the change creates {len(findings)} finding(s)")
        self.findings = findings


def _feature_json(gdf: gpd.GeoDataFrame, i: int) -> dict:
    """One feature as GeoJSON in the stored CRS (NaN → null)."""
    return json.loads(gdf.iloc[[i]].to_json(drop_id=True, na="null"))["features"][0]


def _neighbourhood(layers: dict, geoms) -> dict:
    """The communities touched by ``geoms`` (stored CRS), their cells and streets."""
    area = shapely.union_all(geoms)
    out = {}
    comm = layers.get("community")
    grid = layers["grid"]
    if comm is not None:
        comms = comm[comm.intersects(area)]
        out["community"] = comms
        out["grid"] = grid[grid["parent_code"].isin(comms["code"]) | grid.intersects(area)]
        street = layers.get("street")
        if street is not None:
            out["street"] = street[street["code"].isin(comms["parent_code"])]
    else:
        out["grid"] = grid[grid.intersects(area)]  # touching neighbours included
    return out


def _new_findings(before, after) -> list[dict]:
    """What the change adds, as plain records for the API."""
    added = new_since(before.findings, after.findings)
    return [{"rule": r.rule, "layer": r.layer, "features": list(r.features),
             "area_m2": None if r.area_m2 != r.area_m2 else r.area_m2,
             "width_m": None if r.width_m != r.width_m else r.width_m, "detail": r.detail}
            for r in added.itertuples(index=False)]


def _parse(layer: str, feature: dict):
    if layer != "grid":
        raise ValueError("only grid cells can be edited here")
    try:
        geom = shape(feature["geometry"])
    except Exception as err:  # noqa: BLE001 - any parse failure is the user's input
        raise ValueError(f"geometry is not GeoJSON: {err}") from None
    if geom.geom_type not in spec(layer).geom_types or geom.is_empty:
        raise ValueError(f"geometry must be a Polygon or MultiPolygon, got {geom.geom_type}")
    if not geom.is_valid:
        raise ValueError(f"geometry is invalid: {shapely.is_valid_reason(geom)}")
    props = feature.get("properties") or {}
    unknown = set(props) - set(EDITABLE) - {"code"}
    if unknown:
        raise ValueError(f"cannot edit {', '.join(sorted(unknown))}; editable: {', '.join(EDITABLE)}")
    return geom, props


def _evaluate(layers: dict, layer: str, code: str, geom, props: dict):
    """Apply the change to a copy; return (changed layer, row, before, after, new findings)."""
    grid = layers[layer]
    hits = (grid["code"].astype(str) == code).to_numpy().nonzero()[0]
    if len(hits) != 1:
        raise KeyError(f"{len(hits)} features in '{layer}' have code '{code}'")
    i = int(hits[0])
    new_geom = gpd.GeoSeries([geom], crs="EPSG:4326").to_crs(grid.crs).iloc[0]
    changed = grid.copy()
    changed.loc[changed.index[i], "geometry"] = new_geom
    for k, v in props.items():
        if k in EDITABLE:
            changed.loc[changed.index[i], k] = v
    region = [grid.geometry.iloc[i], new_geom]
    check_before = check_dataset(_neighbourhood(layers, region))
    check_after = check_dataset(_neighbourhood({**layers, layer: changed}, region))
    return (changed, i, _feature_json(grid, i), _feature_json(changed, i),
            _new_findings(check_before, check_after))


def preview_feature(layers: dict, layer: str, code: str, feature: dict) -> dict:
    """What saving would do, without saving: the cell after the change and the findings it
    would add (``layers`` as loaded, stored CRS)."""
    geom, props = _parse(layer, feature)
    _, _, before, after, new = _evaluate(layers, layer, code, geom, props)
    return {"before": before, "after": after, "new_findings": new}


def update_feature(store, layer: str, code: str, feature: dict, *, base_revision: int,
                   author: str, reason: str, accepted: str | None = None) -> dict:
    """Replace a grid cell's geometry and editable attributes from a GeoJSON Feature
    (lon/lat WGS 84). Raises StaleEdit, EditRejected, KeyError (no such feature) or
    ValueError (bad feature). Returns ``{"revision", "before", "after"}``."""
    geom, props = _parse(layer, feature)
    if not reason or not reason.strip():
        raise ValueError("say why: a reason is required for every change")
    with store.edit() as e:
        current = e.feature_revision(layer, code)
        if current != base_revision:
            history = e.revisions(layer, code)
            raise StaleEdit(current, history[-1] if history else None)
        present = store.list_layers()
        layers = {n: e.read_layer(n) for n in ("street", "community", "grid") if n in present}
        changed, i, before, after, new = _evaluate(layers, layer, code, geom, props)
        if new and not (accepted and accepted.strip()):
            raise EditRejected(new)
        e.write_layer(layer, changed)
        rev = e.add_revision({"layer": layer, "code": code, "author": author, "at": now(),
                              "reason": reason.strip(), "before": before, "after": after,
                              "accepted": accepted.strip() if new and accepted else None})
    return {"revision": rev, "before": before, "after": after, "accepted_findings": new}


def revert_feature(store, layer: str, code: str, revision: int, *, base_revision: int,
                   author: str, reason: str) -> dict:
    """Put a cell back as it was before ``revision`` (itself recorded as a new revision)."""
    old = [r for r in store.revisions(layer, code) if r["id"] == revision]
    if not old:
        raise KeyError(f"no revision {revision} of '{code}'")
    before = old[0]["before"]
    gdf = gpd.GeoDataFrame.from_features([before], crs=store.read_layer(layer).crs)
    feature = {"type": "Feature",
               "properties": {k: before["properties"].get(k) for k in EDITABLE
                              if k in before["properties"]},
               "geometry": json.loads(shapely.to_geojson(gdf.to_crs("EPSG:4326").geometry.iloc[0]))}
    return update_feature(store, layer, code, feature, base_revision=base_revision,
                          author=author, reason=f"revert revision {revision}: {reason}",
                          accepted="restoring an earlier revision")
