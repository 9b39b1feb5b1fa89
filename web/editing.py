"""Editing one feature: check the base revision, validate against its neighbourhood, save a
revision — all inside one store edit, so two editors can never lose each other's work.

The validation runs the checker on the affected part of the dataset (the communities the
old and new geometry touch, their grid cells and streets) before and after the change; a
finding that was not there before rejects the edit unless the planner accepts it with a
reason, which is recorded with the revision.

Besides replacing one cell (``update_feature``, the API's PUT), planners' map operations —
reshape, split, merge, move a piece, draw a new cell, adopt a proposal for a community —
are *changes* to several cells at once (``preview_change`` / ``apply_change``): the
geometry comes from :mod:`geo.redraw`, households and population are re-apportioned from
the finest data present, and every changed cell gets a revision sharing one ``change_id``.
Each changed cell's revision as it was read (``base``) must still be current when saving.
"""

from __future__ import annotations

import json
import threading

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import shape

from geo import redraw
from geo.check import check_dataset
from geo.crs import metric_crs
from geo.findings import new_since
from layers.schema import spec
from layers.storage.edits import now

__all__ = ["StaleEdit", "EditRejected", "EDITABLE", "OPERATIONS", "preview_feature",
           "update_feature", "revert_feature", "preview_change", "apply_change",
           "revert_change", "PreviewBase"]

# The layers an edit reads: the hierarchy it is checked against, the cells, and the finest
# household data that re-counts them.
EDIT_LAYERS = ("street", "community", "grid", *redraw.POPULATION_LAYERS)
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
    """The communities touched by ``geoms`` (stored CRS) and their cells. Streets are left
    out: a change to grid cells cannot change what the street layer's rules find."""
    area = shapely.union_all(geoms)
    out = {}
    comm = layers.get("community")
    grid = layers["grid"]
    if comm is not None:
        comms = comm.iloc[comm.sindex.query(area, predicate="intersects")]
        out["community"] = comms
        near = grid.sindex.query(area, predicate="intersects")
        mine = grid["parent_code"].isin(comms["code"]).to_numpy().copy()
        mine[near] = True
        out["grid"] = grid[mine]
    else:
        out["grid"] = grid.iloc[grid.sindex.query(area, predicate="intersects")]
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


def _evaluate(layers: dict, layer: str, code: str, geom, props: dict, base=None):
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
    check_before = (base or PreviewBase(layers)).check_before(region)
    check_after = check_dataset(_neighbourhood({**layers, layer: changed}, region))
    return (changed, i, _feature_json(grid, i), _feature_json(changed, i),
            _new_findings(check_before, check_after))


def preview_feature(layers: dict, layer: str, code: str, feature: dict, base=None) -> dict:
    """What saving would do, without saving: the cell after the change and the findings it
    would add (``layers`` as loaded, stored CRS; ``base``: a :class:`PreviewBase` of them)."""
    geom, props = _parse(layer, feature)
    _, _, before, after, new = _evaluate(layers, layer, code, geom, props, base)
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


# ----------------------------------------------------------------------- multi-cell changes

OPERATIONS = ("reshape", "split", "merge", "move", "draw", "replace")


def _geometry(value, what: str):
    """A lon/lat GeoJSON geometry from the request, as shapely."""
    try:
        geom = shape(value)
    except Exception as err:  # noqa: BLE001 - any parse failure is the user's input
        raise ValueError(f"{what} is not GeoJSON: {err}") from None
    if geom.is_empty:
        raise ValueError(f"{what} is empty")
    return geom


def _to(geom, crs_from, crs_to):
    return gpd.GeoSeries([geom], crs=crs_from).to_crs(crs_to).iloc[0]


def _code(op: dict, key: str = "code") -> str:
    value = op.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"'{key}' (a cell or community code) is required")
    return value


class PreviewBase:
    """What every preview of one version of a dataset starts from, prepared once: the
    layers as stored, metric copies of the grid and community layers (their spatial indexes
    are built on first use and kept), and the check of each neighbourhood before any
    change. Build a new one when the dataset changes."""

    def __init__(self, layers: dict):
        self.layers = layers
        self.crs = metric_crs(layers["grid"])
        self.metric = {n: layers[n].to_crs(self.crs) for n in ("grid", "community")
                       if n in layers}
        population = redraw.population_data(layers)
        self.population = None if population is None else population.to_crs(self.crs)
        self._checks: dict = {}
        self._lock = threading.Lock()

    def check_before(self, region):
        """The check of the unchanged neighbourhood of ``region`` (cached by its cells)."""
        hood = _neighbourhood(self.layers, region)
        key = tuple(sorted(hood["grid"].index))
        with self._lock:
            found = self._checks.get(key)
        if found is None:
            found = check_dataset(hood)
            with self._lock:
                if len(self._checks) > 256:
                    self._checks.clear()
                self._checks[key] = found
        return found


def _plan(layers: dict, op: dict, base: PreviewBase | None = None):
    """The cells an operation changes (metric CRS) and the metric cells it started from."""
    kind = op.get("op")
    if kind not in OPERATIONS:
        raise ValueError(f"op must be one of {', '.join(OPERATIONS)}; got '{kind}'")
    if base is None:
        base = PreviewBase(layers)
    crs = base.crs
    cells = base.metric["grid"]
    comm = base.metric.get("community")

    def g(key, what):
        return _to(_geometry(op.get(key), what), "EPSG:4326", crs)

    if kind == "reshape":
        changed = redraw.reshape(cells, _code(op), g("geometry", "the new outline"), comm)
    elif kind == "split":
        line = g("line", "the cutting line")
        if line.geom_type != "LineString":
            raise ValueError("the cutting line must be a LineString")
        changed = redraw.split(cells, _code(op), line)
    elif kind == "merge":
        codes = op.get("codes")
        if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
            raise ValueError("'codes' must list the cells to merge")
        changed = redraw.merge(cells, codes)
    elif kind == "move":
        changed = redraw.move_piece(cells, g("geometry", "the piece"), _code(op, "to"), comm)
    elif kind == "draw":
        changed = redraw.draw(cells, g("geometry", "the new cell"), _code(op, "community"),
                              comm, name=op.get("name"))
    else:  # replace: communities' cells by new ones (an adopted proposal)
        if op.get("communities") is not None:
            communities = op["communities"]
            if not isinstance(communities, list) or not communities or \
                    not all(isinstance(c, str) and c for c in communities):
                raise ValueError("'communities' must list community codes")
        else:
            communities = [_code(op, "community")]
        changed = _replacement(cells, communities, op.get("features"), crs, comm)
    return changed, cells


def _replacement(cells, communities: list[str], features, crs, comm=None):
    """The cells of ``communities`` replaced by ``features`` (lon/lat GeoJSON), each fitted
    to its community; with several communities each feature names its ``parent_code``."""
    if not isinstance(features, list) or not features:
        raise ValueError("'features' must list the new cells as GeoJSON Features")
    try:
        new = gpd.GeoDataFrame.from_features(features, crs="EPSG:4326").to_crs(crs)
    except Exception as err:  # noqa: BLE001 - the user's input
        raise ValueError(f"features are not GeoJSON: {err}") from None
    if "code" not in new or new["code"].isna().any():
        raise ValueError("every new cell needs a code")
    new["code"] = new["code"].astype(str)
    if new["code"].duplicated().any():
        raise ValueError(f"codes repeat: {', '.join(new['code'][new['code'].duplicated()])}")
    if len(communities) == 1:
        new["parent_code"] = communities[0]
    elif "parent_code" not in new or not new["parent_code"].astype(str).isin(communities).all():
        raise ValueError("with several communities every new cell needs a parent_code "
                         "among them")
    new["parent_code"] = new["parent_code"].astype(str)
    parents = cells["parent_code"].astype(str)
    old = cells[parents.isin(communities)]
    empty = sorted(set(communities) - set(parents))
    if empty:
        raise ValueError(f"community '{empty[0]}' has no grid cells")
    elsewhere = set(cells["code"].astype(str)) - set(old["code"].astype(str))
    clash = sorted(set(new["code"]) & elsewhere)
    if clash:
        raise ValueError(f"code(s) {', '.join(clash)} belong to cells of another community")
    if comm is not None:
        fitted = []
        for code, mine in new.groupby("parent_code", sort=False):
            outline = comm[comm["code"].astype(str) == code]
            fitted.append(redraw.fit_to(mine, outline.geometry.iloc[0]) if len(outline)
                          else mine)
        new = gpd.GeoDataFrame(pd.concat(fitted, ignore_index=True), crs=crs)
    if "name" not in new:
        new["name"] = None
    names = ({} if comm is None or "name" not in comm
             else dict(zip(comm["code"].astype(str), comm["name"])))
    unnamed = new["name"].isna() | (new["name"].astype(str).str.strip() == "")
    new.loc[unnamed, "name"] = [redraw.serial_name(c, p, names.get(p))
                                for c, p in zip(new["code"][unnamed], new["parent_code"][unnamed])]
    gone = old[~old["code"].astype(str).isin(new["code"])][["code", "name", "parent_code"]]
    gone = gpd.GeoDataFrame(gone, geometry=[shapely.Polygon()] * len(gone), crs=crs)
    return pd.concat([new[["code", "name", "parent_code", "geometry"]], gone],
                     ignore_index=True)


def _figures(population, changed, cells):
    """``changed`` with households and population re-apportioned from ``population`` (the
    finest household data, metric CRS, or None), and the method."""
    before = cells[cells["code"].astype(str).isin(set(changed["code"]))]
    if population is not None:
        touched = shapely.union_all(np.concatenate([before.geometry.values,
                                                    changed.geometry.values]))
        population = population.iloc[population.sindex.query(touched, predicate="intersects")]
    return redraw.reapportion(before, changed, population)


def _summaries(cells, changed) -> list[dict]:
    """Per changed cell: status and figures before and after."""
    old = cells.set_index(cells["code"].astype(str))
    out = []
    for row in changed.itertuples(index=False):
        had = row.code in old.index
        gone = row.geometry.is_empty
        rec = {"code": row.code, "name": row.name, "parent_code": row.parent_code,
               "status": "removed" if gone else ("changed" if had else "added")}
        for f in redraw.FIGURES:
            if f in changed:
                rec[f] = None if gone else int(getattr(row, f))
                rec[f + "_before"] = (int(old.loc[row.code, f]) if had and pd.notna(
                    old.loc[row.code, f]) else None)
        rec["area_m2"] = round(row.geometry.area, 1)
        rec["area_m2_before"] = round(old.loc[row.code].geometry.area, 1) if had else None
        out.append(rec)
    return out


def _new_grid(grid, changed_stored):
    """The stored grid layer with the changed cells replaced, added or removed."""
    codes = grid["code"].astype(str)
    keep = grid[~codes.isin(changed_stored["code"])]
    live = changed_stored[~changed_stored.geometry.is_empty]
    cols = [c for c in grid.columns if c in live.columns or c == "geometry"]
    merged = pd.concat([keep, live[cols]], ignore_index=True)
    order = {c: i for i, c in enumerate(codes)}  # existing cells keep their place
    rank = merged["code"].astype(str).map(order).fillna(len(order) + merged.index.to_series())
    return gpd.GeoDataFrame(merged.iloc[np.argsort(rank.to_numpy(), kind="stable")],
                            geometry="geometry", crs=grid.crs).reset_index(drop=True)


def _evaluate_change(layers: dict, op: dict, base: PreviewBase | None = None) -> dict:
    if base is None:
        base = PreviewBase(layers)
    changed, cells = _plan(layers, op, base)
    changed, method = _figures(base.population, changed, cells)
    grid = layers["grid"]
    stored = changed.to_crs(grid.crs)
    bad = ~stored.geometry.is_valid  # degrees can undo what was valid in metres
    if bad.any():
        stored.loc[bad, "geometry"] = shapely.make_valid(stored.geometry[bad].values,
                                                         method="structure")
    new_grid = _new_grid(grid, stored)
    region = list(stored.geometry[~stored.geometry.is_empty]) + list(
        grid.geometry[grid["code"].astype(str).isin(stored["code"])])
    before = base.check_before(region)
    after = check_dataset(_neighbourhood({**layers, "grid": new_grid}, region))
    return {"changed": stored, "grid": new_grid, "cells": _summaries(cells, changed),
            "method": method, "new_findings": _new_findings(before, after)}


def _features_json(gdf) -> dict:
    live = gdf[~gdf.geometry.is_empty]
    return json.loads(live.to_crs("EPSG:4326").to_json(drop_id=True, na="null"))


def preview_change(layers: dict, op: dict, revisions=None,
                   base: PreviewBase | None = None) -> dict:
    """What an operation would do, without saving (``layers`` as stored): the changed cells
    (GeoJSON lon/lat), each cell's figures before and after, how households were
    re-apportioned, the findings it would add, and ``base``: each existing cell's current
    revision (``revisions(code)`` → id), to send back with the save."""
    result = _evaluate_change(layers, op, base)
    existing = [c["code"] for c in result["cells"] if c["status"] != "added"]
    return {"op": op.get("op"), "cells": result["cells"], "method": result["method"],
            "new_findings": result["new_findings"],
            "features": _features_json(result["changed"]),
            "base": {c: revisions(c) if revisions else 0 for c in existing}}


def apply_change(store, op: dict, *, base: dict, author: str, reason: str,
                 accepted: str | None = None) -> dict:
    """Save an operation as one change (a revision per changed cell, one ``change_id``).

    ``base``: ``{code: revision}`` as the planner read them; a changed cell whose revision
    moved on since raises :class:`StaleEdit`. Raises EditRejected when the change adds
    findings and ``accepted`` gives no reason, ValueError/RedrawError for a bad operation.
    """
    if not reason or not reason.strip():
        raise ValueError("say why: a reason is required for every change")
    with store.edit() as e:
        for code, rev in base.items():  # first what the planner saw: stale → say so
            current = e.feature_revision("grid", code)
            if current != int(rev):
                history = e.revisions("grid", code)
                raise StaleEdit(current, history[-1] if history else None)
        present = store.list_layers()
        layers = {n: e.read_layer(n) for n in EDIT_LAYERS if n in present}
        result = _evaluate_change(layers, op)
        changed = result["changed"]
        old = layers["grid"].assign(code=layers["grid"]["code"].astype(str)).set_index("code")
        for code in changed["code"]:
            current = e.feature_revision("grid", code)
            if code in old.index and current != int(base.get(code, -1)):
                history = e.revisions("grid", code)
                raise StaleEdit(current, history[-1] if history else None)
        new = result["new_findings"]
        if new and not (accepted and accepted.strip()):
            raise EditRejected(new)
        e.write_layer("grid", result["grid"])
        grid = result["grid"].assign(code=result["grid"]["code"].astype(str))
        change_id, revisions = None, []
        for code in changed["code"]:
            before = (_feature_json(layers["grid"], int(np.flatnonzero(
                layers["grid"]["code"].astype(str).to_numpy() == code)[0]))
                if code in old.index else None)
            hit = np.flatnonzero(grid["code"].to_numpy() == code)
            after = _feature_json(grid, int(hit[0])) if len(hit) else None
            rev = e.add_revision({"layer": "grid", "code": code, "author": author, "at": now(),
                                  "reason": f"{op.get('op')}: {reason.strip()}",
                                  "before": before, "after": after, "change_id": change_id,
                                  "accepted": accepted.strip() if new and accepted else None})
            change_id = change_id or rev
            revisions.append({"code": code, "revision": rev})
    return {"change_id": change_id, "revisions": revisions, "cells": result["cells"],
            "method": result["method"], "accepted_findings": new}


def revert_change(store, change_id: int, *, author: str, reason: str) -> dict:
    """Undo a whole change: every cell it touched goes back to its ``before`` (cells it
    created are removed), as a new change. Refused (StaleEdit) if any of those cells has
    changed since."""
    revs = [r for r in store.revisions("grid") if r.get("change_id") == change_id]
    if not revs:
        raise KeyError(f"no change {change_id}")
    if not reason or not reason.strip():
        raise ValueError("say why: a reason is required for every change")
    with store.edit() as e:
        for r in revs:
            if e.feature_revision("grid", r["code"]) != r["id"]:
                history = e.revisions("grid", r["code"])
                raise StaleEdit(history[-1]["id"], history[-1])
        grid = e.read_layer("grid")
        codes = grid["code"].astype(str)
        restored = [gpd.GeoDataFrame.from_features([r["before"]], crs=grid.crs)
                    for r in revs if r["before"]]
        keep = grid[~codes.isin([r["code"] for r in revs])]
        new_grid = pd.concat([keep, *restored], ignore_index=True)
        new_grid = gpd.GeoDataFrame(new_grid[grid.columns], geometry="geometry", crs=grid.crs)
        e.write_layer("grid", new_grid)
        change, out = None, []
        for r in revs:
            rev = e.add_revision({"layer": "grid", "code": r["code"], "author": author,
                                  "at": now(), "reason": f"revert change {change_id}: "
                                  f"{reason.strip()}", "before": r["after"],
                                  "after": r["before"], "change_id": change,
                                  "accepted": "restoring an earlier revision"})
            change = change or rev
            out.append({"code": r["code"], "revision": rev})
    return {"change_id": change, "revisions": out}
