"""Planning an edit of grid cells: what a change would make of the cells, their households
and the findings — pure analysis, nothing saved (saving is :mod:`layers.editing`).

Operations (geometries in lon/lat WGS 84 GeoJSON, as the map and scripts send them):
``update`` {code, feature} (one cell's new geometry and attributes: the API's PUT and
PATCH), ``create`` {feature} (a new cell exactly as sent: POST), ``delete`` {code}
(DELETE),
``reshape`` {code, geometry}, ``split`` {code, line}, ``merge`` {codes}, ``move`` {to,
geometry}, ``draw`` {community, geometry, name?} and ``replace`` {community or
communities, features} (an adopted proposal). The geometry comes from :mod:`geo.redraw`;
households and population of redrawn cells are re-apportioned from the finest data
present. The findings a change would add come from the checker run on the affected
communities before and after the change.
"""

from __future__ import annotations

import json
import math
import threading

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import mapping, shape

from geo import redraw
from geo.checker import check_dataset
from geo.crs import reproject, to_crs
from geo.dataset import Dataset
from geo.errors import InputError, NotFound
from geo.findings import Tolerances, new_since
from geo.frames import taken_rows
from geo.kinds import KINDS, hierarchy, population_kinds
from geo.strict_json import finite

__all__ = [
    "EDIT_LAYERS",
    "EDITABLE",
    "OPERATIONS",
    "Planned",
    "PreviewBase",
    "plan",
    "preview_change",
    "preview_feature",
    "feature_json",
]

# The layers an edit reads: the hierarchy it is checked against, the cells, and the finest
# household data that re-counts them.
EDIT_LAYERS = (*hierarchy()[: hierarchy().index("grid") + 1], *population_kinds())
# Attributes of a cell an editor may set directly (``update``); the rest are derived.
EDITABLE = ("name", "parent_code", "households", "population", "floating_population")
OPERATIONS = ("update", "create", "delete", "reshape", "split", "merge", "move", "draw", "replace")
# The operations that set a cell exactly as the editor says, with no redrawing or re-count.
_AS_SENT = ("update", "create", "delete")


def feature_json(gdf: gpd.GeoDataFrame, i: int) -> dict:
    """Row ``i`` as a GeoJSON Feature in the frame's CRS (NaN → null, dates as ISO text,
    an empty geometry as null): a revision's ``before`` or ``after``."""
    row = gdf.iloc[i]
    geom = row[gdf.geometry.name]
    properties = {}
    for k, v in row.items():
        if k != gdf.geometry.name:
            properties[k] = v.isoformat() if hasattr(v, "isoformat") and v is not pd.NaT else v
    return {
        "type": "Feature",
        "properties": finite(properties),
        "geometry": None if geom is None or geom.is_empty else finite(mapping(geom)),
    }


def neighbourhood(layers, geoms) -> dict:
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
    return [
        {
            "rule": r.rule,
            "layer": r.layer,
            "features": list(r.features),
            "area_m2": None if r.area_m2 != r.area_m2 else r.area_m2,
            "width_m": None if r.width_m != r.width_m else r.width_m,
            "detail": r.detail,
            "detail_zh": r.detail_zh,
        }
        for r in added.itertuples(index=False)
    ]


def _update_feature(feature) -> tuple:
    """The geometry (lon/lat) and editable attributes of an ``update``'s GeoJSON Feature.

    Any property but ``code`` and :data:`EDITABLE` is refused, naming it (the service
    drops the derived properties it served before they get here, when a client sends them
    back unchanged: :func:`web.editing._as_edit`)."""
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise InputError("the body must be a GeoJSON Feature", zh="请求体须为 GeoJSON Feature")
    geom = _geometry(feature.get("geometry"), "geometry")
    if geom.geom_type not in KINDS["grid"].geom_types or geom.is_empty:
        raise InputError(
            f"geometry must be a Polygon or MultiPolygon, got {geom.geom_type}",
            zh=f"几何须为面（Polygon 或 MultiPolygon），收到 {geom.geom_type}",
        )
    if not geom.is_valid:
        raise InputError(
            f"geometry is invalid: {shapely.is_valid_reason(geom)}",
            zh=f"几何无效：{shapely.is_valid_reason(geom)}",
        )
    props = feature.get("properties") or {}
    if not isinstance(props, dict):
        raise InputError(
            "properties must be a JSON object of the cell's attributes",
            zh="properties 须为网格属性的 JSON 对象",
            property="properties",
        )
    unknown = set(props) - set(EDITABLE) - {"code"}
    if unknown:
        raise InputError(
            f"cannot edit {', '.join(sorted(unknown))}; editable: {', '.join(EDITABLE)}",
            zh=f"不能修改 {', '.join(sorted(unknown))}；可修改：{', '.join(EDITABLE)}",
        )
    return geom, checked_properties(props)


# The largest count a cell's attribute may hold (a 32-bit integer in every backend).
_MAX_COUNT = 2**31 - 1


def checked_properties(props: dict) -> dict:
    """The grid attributes an editor sent, each checked against its field in the table of
    kinds: text for text fields, a whole number ≥ 0 for counts (``640.0`` is 640), null
    only where the field may be empty. Every problem is reported at once, naming the
    property; InputError with ``properties``: the names refused.

    >>> checked_properties({"households": 640.0, "name": "八廓第1网格"})
    {'households': 640, 'name': '八廓第1网格'}
    >>> checked_properties({"households": 1.5, "population": "lots"})
    Traceback (most recent call last):
    ...
    geo.errors.InputError: cell properties are not valid:
      - households must be a whole number of at least 0; got 1.5
      - population must be a whole number of at least 0; got 'lots'
    """
    fields = {f.name: f for f in KINDS["grid"].fields}
    out, problems, zh, names = {}, [], [], []
    for key, value in props.items():
        field_ = fields.get(key)
        if field_ is None:
            out[key] = value
            continue
        shown = json.dumps(value, ensure_ascii=False)[:40] if not isinstance(value, str) else None
        got = shown if shown is not None else repr(value[:40])
        if value is None:
            if field_.required:
                problems.append(f"{key} is required; got null")
                zh.append(f"{key} 不能为空")
                names.append(key)
            else:
                out[key] = None
        elif field_.type == "text":
            if not isinstance(value, str) or (field_.required and not value.strip()):
                problems.append(f"{key} must be non-empty text; got {got}")
                zh.append(f"{key} 须为非空文字，收到 {got}")
                names.append(key)
            else:
                out[key] = value.strip()
        else:  # a count
            whole = (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and math.isfinite(value)
                and value == int(value)
                and 0 <= value <= _MAX_COUNT
            )
            if not whole:
                problems.append(f"{key} must be a whole number of at least 0; got {got}")
                zh.append(f"{key} 须为不小于 0 的整数，收到 {got}")
                names.append(key)
            else:
                out[key] = int(value)
    if problems:
        raise InputError(
            "cell properties are not valid:" + "".join(f"\n  - {p}" for p in problems),
            zh="网格属性无效：" + "".join(f"\n  - {p}" for p in zh),
            properties=names,
        )
    return out


def _geometry(value, what: str):
    """A lon/lat GeoJSON geometry from the request, as shapely."""
    try:
        geom = shape(value)
    except Exception:  # noqa: BLE001 - any parse failure is the user's input
        raise InputError(
            f"{what} is not a GeoJSON geometry (an object with type and coordinates, "
            "e.g. a Polygon of [lon, lat] rings)",
            zh=f"{what} 不是有效的 GeoJSON 几何（须含 type 和 coordinates）",
        ) from None
    if geom.is_empty:
        raise InputError(f"{what} is empty", zh="所画几何为空")
    return geom


def _to(geom, crs_from, crs_to):
    return reproject(geom, crs_from, crs_to)


def _code(op: dict, key: str = "code") -> str:
    value = op.get(key)
    if not isinstance(value, str) or not value:
        raise InputError(
            f"'{key}' (a cell or community code) is required", zh=f"缺少 {key}（网格或社区编码）"
        )
    return value


class PreviewBase:
    """What every preview of one version of a dataset starts from, prepared once: the
    layers as stored, metric copies of the grid and community layers (their spatial indexes
    are built on first use and kept), and the check of each neighbourhood before any
    change. Build a new one when the dataset changes."""

    def __init__(self, layers, *, keep: PreviewBase | None = None, changed=()):
        """``keep``: the base of the version before a change of the grid cells
        ``changed`` (codes): its checks of neighbourhoods without them are kept, and its
        metric CRS (chosen once for the dataset, as the served copy keeps it)."""
        if keep is not None and not isinstance(layers, Dataset):
            layers = keep.layers.subset(layers)
        ds = Dataset.of(layers)
        if "grid" not in ds:
            raise NotFound("this dataset has no grid layer", zh="该数据集没有网格图层")
        self.layers = ds
        self.crs = ds.metric_crs
        if keep is not None and keep.crs == self.crs:

            def metric(n):  # carried over from the version before: costs the change
                return ds.carry_metric(n, keep.layers)
        else:
            metric = ds.metric
        self.metric = {n: metric(n) for n in ("grid", "community") if n in ds}
        finest = ds.population()
        self.population = metric(finest) if finest else None
        self._checks: dict = {}
        if keep is not None:
            gone = set(map(str, changed))
            with keep._lock:
                self._checks = {k: v for k, v in keep._checks.items() if gone.isdisjoint(k)}
        self._lock = threading.Lock()

    def check_before(self, region):
        """The check of the unchanged neighbourhood of ``region`` (cached by its cells'
        codes: a neighbourhood is the same while none of its cells changed)."""
        hood = self.layers.subset(neighbourhood(self.layers, region))
        key = tuple(sorted(hood["grid"]["code"].astype(str)))
        with self._lock:
            found = self._checks.get(key)
        if found is None:
            found = check_dataset(hood)
            with self._lock:
                if len(self._checks) > 256:
                    self._checks.clear()
                self._checks[key] = found
        return found


def _changed_cells(base: PreviewBase, op: dict):
    """The cells a redrawing operation changes (metric CRS) and the metric cells it
    started from (``update`` is planned in :func:`plan`, in the stored CRS)."""
    kind = op.get("op")
    if kind not in OPERATIONS:
        raise InputError(
            f"op must be one of {', '.join(OPERATIONS)}; got '{kind}'",
            zh=f"op 须为 {', '.join(OPERATIONS)} 之一，收到“{kind}”",
        )
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
            raise InputError("the cutting line must be a LineString", zh="切割线须为 LineString")
        changed = redraw.split(cells, _code(op), line)
    elif kind == "merge":
        codes = op.get("codes")
        if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
            raise InputError(
                "'codes' must list the cells to merge", zh="请用 codes 列出要合并的网格"
            )
        changed = redraw.merge(cells, codes)
    elif kind == "move":
        changed = redraw.move_piece(cells, g("geometry", "the piece"), _code(op, "to"), comm)
    elif kind == "draw":
        changed = redraw.draw(
            cells, g("geometry", "the new cell"), _code(op, "community"), comm, name=op.get("name")
        )
    else:  # replace: communities' cells by new ones (an adopted proposal)
        if op.get("communities") is not None:
            communities = op["communities"]
            if (
                not isinstance(communities, list)
                or not communities
                or not all(isinstance(c, str) and c for c in communities)
            ):
                raise InputError(
                    "'communities' must list community codes", zh="请用 communities 列出社区编码"
                )
        else:
            communities = [_code(op, "community")]
        changed = _replacement(cells, communities, op.get("features"), crs, comm)
    return changed, cells


def _one_cell(grid: gpd.GeoDataFrame, codes: np.ndarray, code: str) -> gpd.GeoDataFrame:
    """The one row of ``grid`` (its ``codes``) with ``code``; NotFound when there is none
    or several."""
    hits = np.flatnonzero(codes == code)
    if len(hits) != 1:
        raise NotFound(
            f"{len(hits)} features in 'grid' have code '{code}'",
            zh=f"网格图层中编码为 {code} 的要素有 {len(hits)} 个",
        )
    return grid.iloc[hits]


def _updated(rows: gpd.GeoDataFrame, geom, props: dict) -> gpd.GeoDataFrame:
    """``rows`` (one cell) with the lon/lat ``geom`` in their CRS and ``props`` set."""
    changed = rows.copy().reset_index(drop=True)
    changed.loc[0, "geometry"] = _to(geom, "EPSG:4326", changed.crs)
    for k, v in props.items():
        if k in EDITABLE:
            changed.loc[0, k] = v
    return changed


def _as_sent(grid: gpd.GeoDataFrame, codes: np.ndarray, op: dict) -> gpd.GeoDataFrame:
    """The one cell an ``update``, ``create`` or ``delete`` sets (stored CRS; a deleted
    cell has an empty geometry); ``codes``: the grid's."""
    if op["op"] == "delete":
        gone = _one_cell(grid, codes, _code(op)).copy().reset_index(drop=True)
        gone["geometry"] = shapely.Polygon()
        return gone
    geom, props = _update_feature(op.get("feature"))
    if op["op"] == "update":
        return _updated(_one_cell(grid, codes, _code(op)), geom, props)
    parent = props.get("parent_code")
    if not isinstance(parent, str) or not parent:
        raise InputError(
            "a new cell needs properties.parent_code, the code of its community",
            zh="新网格须在 properties.parent_code 中给出所属社区编码",
        )
    code = props.get("code") or redraw.next_codes(grid["code"], parent, 1)[0]
    if not isinstance(code, str) or (codes == code).any():
        raise InputError(
            f"there is already a cell with code '{code}'", zh=f"编码为 {code} 的网格已存在"
        )
    row = grid.iloc[:0].copy()
    row.loc[0, "code"] = code
    row.loc[0, "name"] = props.get("name") or code
    row = gpd.GeoDataFrame(row, geometry="geometry", crs=grid.crs)
    return _updated(row, geom, props)


def _replacement(cells, communities: list[str], features, crs, comm=None):
    """The cells of ``communities`` replaced by ``features`` (lon/lat GeoJSON), each fitted
    to its community; with several communities each feature names its ``parent_code``."""
    if not isinstance(features, list) or not features:
        raise InputError(
            "'features' must list the new cells as GeoJSON Features",
            zh="features 须以 GeoJSON Feature 列出新网格",
        )
    try:
        new = gpd.GeoDataFrame.from_features(features, crs="EPSG:4326").to_crs(crs)
    except Exception as err:  # noqa: BLE001 - the user's input
        raise InputError(
            f"features are not GeoJSON: {err}", zh="features 不是有效的 GeoJSON"
        ) from None
    if "code" not in new or new["code"].isna().any():
        raise InputError("every new cell needs a code", zh="每个新网格都须有编码")
    new["code"] = new["code"].astype(str)
    if new["code"].duplicated().any():
        repeated = ", ".join(new["code"][new["code"].duplicated()])
        raise InputError(f"codes repeat: {repeated}", zh=f"编码重复：{repeated}")
    if len(communities) == 1:
        new["parent_code"] = communities[0]
    elif "parent_code" not in new or not new["parent_code"].astype(str).isin(communities).all():
        raise InputError(
            "with several communities every new cell needs a parent_code among them",
            zh="涉及多个社区时，每个新网格都须有其中一个社区的 parent_code",
        )
    new["parent_code"] = new["parent_code"].astype(str)
    parents = cells["parent_code"].astype(str)
    old = cells[parents.isin(communities)]
    empty = sorted(set(communities) - set(parents))
    if empty:
        raise InputError(
            f"community '{empty[0]}' has no grid cells", zh=f"社区 {empty[0]} 没有网格"
        )
    elsewhere = set(cells["code"].astype(str)) - set(old["code"].astype(str))
    clash = sorted(set(new["code"]) & elsewhere)
    if clash:
        raise InputError(
            f"code(s) {', '.join(clash)} belong to cells of another community",
            zh=f"编码 {', '.join(clash)} 已属于其他社区的网格",
        )
    if comm is not None:
        fitted = []
        for code, mine in new.groupby("parent_code", sort=False):
            outline = comm[comm["code"].astype(str) == code]
            fitted.append(redraw.fit_to(mine, outline.geometry.iloc[0]) if len(outline) else mine)
        new = gpd.GeoDataFrame(pd.concat(fitted, ignore_index=True), crs=crs)
    if "name" not in new:
        new["name"] = None
    names = (
        {}
        if comm is None or "name" not in comm
        else dict(zip(comm["code"].astype(str), comm["name"]))
    )
    unnamed = new["name"].isna() | (new["name"].astype(str).str.strip() == "")
    new.loc[unnamed, "name"] = [
        redraw.serial_name(c, p, names.get(p))
        for c, p in zip(new["code"][unnamed], new["parent_code"][unnamed])
    ]
    gone = old[~old["code"].astype(str).isin(new["code"])][["code", "name", "parent_code"]]
    gone = gpd.GeoDataFrame(gone, geometry=[shapely.Polygon()] * len(gone), crs=crs)
    return pd.concat([new[["code", "name", "parent_code", "geometry"]], gone], ignore_index=True)


def _figures(population, changed, cells):
    """``changed`` with households and population re-apportioned from ``population`` (the
    finest household data, metric CRS, or None), and the method."""
    before = cells[cells["code"].astype(str).isin(set(changed["code"]))]
    if population is not None:
        touched = shapely.union_all(
            np.concatenate([before.geometry.values, changed.geometry.values])
        )
        population = population.iloc[population.sindex.query(touched, predicate="intersects")]
    return redraw.reapportion(before, changed, population)


def _summaries(cells, codes: np.ndarray, changed) -> list[dict]:
    """Per changed cell: status and figures before and after (``codes``: the cells')."""
    out = []
    for row in changed.itertuples(index=False):
        at = np.flatnonzero(codes == row.code)
        was = cells.iloc[int(at[0])] if len(at) else None
        gone = row.geometry.is_empty
        rec = {
            "code": row.code,
            "name": row.name,
            "parent_code": row.parent_code,
            "status": "removed" if gone else ("changed" if was is not None else "added"),
        }
        for f in redraw.FIGURES:
            if f in changed:
                value = getattr(row, f)
                rec[f] = None if gone or pd.isna(value) else int(value)
                rec[f + "_before"] = (
                    int(was[f]) if was is not None and f in was and pd.notna(was[f]) else None
                )
        rec["area_m2"] = round(row.geometry.area, 1)
        rec["area_m2_before"] = round(was.geometry.area, 1) if was is not None else None
        out.append(rec)
    return out


def _new_grid(grid, codes: np.ndarray, changed_stored) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """The stored grid layer (its ``codes``) with the changed cells replaced, added or
    removed, and its codes: existing cells keep their place, a changed cell takes its
    code's first place, a new one comes last (at the cost of the change, and one sort)."""
    changed = changed_stored["code"].astype(str).to_numpy()
    gone = np.isin(codes, changed)
    live = changed_stored[~changed_stored.geometry.is_empty]
    first: dict[str, int] = {}
    for i in np.flatnonzero(gone):
        first.setdefault(codes[i], int(i))
    live_codes = live["code"].astype(str).to_numpy(dtype=object)
    kept = np.flatnonzero(~gone)
    rank = np.concatenate([kept, [first.get(c, len(codes) + k) for k, c in enumerate(live_codes)]])
    order = np.concatenate([kept, len(codes) + np.arange(len(live))])
    order = order[np.argsort(rank, kind="stable")]
    added = live.reindex(columns=grid.columns)
    return taken_rows(grid, added, order), np.concatenate([codes, live_codes])[order]


class Planned:
    """A planned change: the changed cells (stored CRS; a removed cell has an empty
    geometry), the grid layer it was planned on (``before``) and as it would be
    (``grid``), per-cell figures before and after, how households were counted, the
    findings the change would add — and what those depend on: the codes of the cells
    checked (``depends``) and the envelope of the place checked (``envelope``, stored CRS;
    None when the plan depends on no place, only on its own cells).
    """

    def __init__(self, op, changed, grid, cells, method, new_findings, **basis):
        self.op, self.changed = op, changed
        self.grid, self.grid_codes = grid  # the grid after, and its codes
        self.cells, self.method, self.new_findings = cells, method, new_findings
        self.before = basis.get("before")
        self.before_codes = basis.get("before_codes")
        self.depends: set[str] = basis.get("depends", set())
        self.envelope = basis.get("envelope")

    @property
    def codes(self) -> list[str]:
        return [str(c) for c in self.changed["code"]]

    def features(self) -> dict:
        """The changed cells that remain, as lon/lat GeoJSON."""
        live = self.changed[~self.changed.geometry.is_empty]
        return json.loads(live.to_crs("EPSG:4326").to_json(drop_id=True, na="null"))


def _in_place(grid, codes: np.ndarray, cells, stored, changed) -> bool:
    """Whether the one updated cell keeps its code, its parent and its outline, to within
    the noise width (:class:`geo.findings.Tolerances`, metres in the metric CRS);
    ``codes``: the grid's."""
    code = str(stored["code"].iloc[0])
    where = np.flatnonzero(codes == code)
    if len(stored) != 1 or len(where) != 1:
        return False
    i = where[0]
    if str(grid["parent_code"].iloc[i]) != str(stored["parent_code"].iloc[0]):
        return False
    new, old = changed.geometry.iloc[0], cells.geometry.iloc[i]
    if new is None or new.is_empty or not new.is_valid:
        return False
    return shapely.hausdorff_distance(new, old) <= Tolerances().noise_width


def plan(layers, op: dict, base: PreviewBase | None = None) -> Planned:
    """Plan ``op`` on the dataset ``layers`` (as stored; a :class:`Dataset` or mapping):
    the cells it changes, re-counted, and the findings it adds. ``base`` is a
    :class:`PreviewBase` of the same layers, when one is kept (it caches the checks of
    unchanged neighbourhoods). Raises :class:`~geo.errors.InputError` for a bad operation
    and :class:`~geo.errors.NotFound` for a cell that is not there."""
    if not isinstance(op, dict):
        raise InputError('send a JSON object with "op"', zh="请发送含 op 的 JSON 对象")
    if base is None:
        base = PreviewBase(layers)
    ds = base.layers
    grid, codes = ds["grid"], ds.codes("grid")
    cells = base.metric["grid"]
    if op.get("op") in _AS_SENT:  # figures as the editor set them, geometry as sent
        stored = _as_sent(grid, codes, op)
        changed, method = to_crs(stored, base.crs), None
    else:
        changed, cells = _changed_cells(base, op)
        changed, method = _figures(base.population, changed, cells)
        stored = to_crs(changed, grid.crs)
    if op.get("op") == "update" and _in_place(grid, codes, cells, stored, changed):
        # the cell stays where it was (to within noise) under the same code and parent:
        # no rule reads households, population or names (geo.findings.RULES), so the
        # change adds no finding, and the stored outline is kept exactly as it was
        code = str(stored["code"].iloc[0])
        stored["geometry"] = grid.geometry.to_numpy()[codes == code]
        return Planned(
            "update",
            stored,
            _new_grid(grid, codes, stored),
            _summaries(cells, codes, changed),
            None,
            [],
            before=grid,
            before_codes=codes,
            depends={code},  # and nothing around it
            envelope=None,
        )
    bad = ~stored.geometry.is_valid  # degrees can undo what was valid in metres
    if bad.any():
        stored.loc[bad, "geometry"] = shapely.make_valid(
            stored.geometry[bad].values, method="structure"
        )
    new_grid, new_codes = _new_grid(grid, codes, stored)
    region = list(stored.geometry[~stored.geometry.is_empty]) + list(
        grid.geometry.to_numpy()[np.isin(codes, stored["code"].astype(str).to_numpy())]
    )
    before = base.check_before(region)
    hood = neighbourhood(ds.subset(grid=new_grid), region)
    after = check_dataset(ds.subset(hood))
    return Planned(
        op.get("op"),
        stored,
        (new_grid, new_codes),
        _summaries(cells, codes, changed),
        method,
        _new_findings(before, after),
        before=grid,
        before_codes=codes,
        depends={*hood["grid"]["code"].astype(str), *stored["code"].astype(str)},
        envelope=shapely.box(*shapely.total_bounds([*region, *hood["grid"].geometry.values])),
    )


def preview_change(layers, op: dict, revisions=None, base: PreviewBase | None = None) -> dict:
    """What an operation would do, without saving (``layers`` as stored): the changed cells
    (GeoJSON lon/lat), each cell's figures before and after, how households were
    re-apportioned, the findings it would add, and ``base``: each existing cell's current
    revision (``revisions(code)`` → id), to send back with the save."""
    planned = plan(layers, op, base)
    existing = [c["code"] for c in planned.cells if c["status"] != "added"]
    return {
        "op": planned.op,
        "cells": planned.cells,
        "method": planned.method,
        "new_findings": planned.new_findings,
        "features": planned.features(),
        "base": {c: (revisions(c) if revisions else 0) or 0 for c in existing},
    }


def preview_feature(layers, code: str, feature: dict, base: PreviewBase | None = None) -> dict:
    """What replacing one cell by ``feature`` (lon/lat) would do: the cell before and
    after (stored CRS) and the findings it would add."""
    base = base or PreviewBase(layers)
    planned = plan(layers, {"op": "update", "code": code, "feature": feature}, base)
    grid = base.layers["grid"]
    i = int(np.flatnonzero(planned.before_codes == code)[0])
    j = int(np.flatnonzero(planned.grid_codes == code)[0])
    return {
        "before": feature_json(grid, i),
        "after": feature_json(planned.grid, j),
        "new_findings": planned.new_findings,
    }
