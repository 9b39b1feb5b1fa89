"""Rules between a layer and its parent layer: not_nested, parent_mismatch, and the gaps
left where the children do not cover their parent.

Inputs are GeoDataFrames in the same metric CRS (metres) with ``code`` columns; the child
layer also has ``parent_code``. Exact geometry is computed only for parents whose areas do
not add up (the sum of the areas of the children lying in a parent differs from the
parent's area by more than noise), that hold a child reaching outside them (two cells
exchanging equal parcels keep the sums) or that hold children already known to be
defective, which keeps a 100,000-cell check fast while every defect is still measured
exactly. A child lying as much in its declared parent as in any other belongs to the
declared one. Gaps are what no child covers, each checked against the children around it
(:func:`geo.layer_rules.uncovered_by`), not read off one union of noisy cells.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from geo.findings import Tolerances, detail, make_findings, significant
from geo.layer_rules import neighbour_codes, uncovered_by

__all__ = ["spatial_parent", "nesting"]


def spatial_parent(
    children: gpd.GeoDataFrame, parents: gpd.GeoDataFrame, *, tree: shapely.STRtree | None = None
) -> np.ndarray:
    """Index (position) into ``parents`` of the parent holding most of each child's area,
    or -1 for a child outside every parent. ``tree``: an STRtree of the parents, if built."""
    cg = children.geometry.values
    pg = parents.geometry.values
    pts = shapely.point_on_surface(cg)
    tree = tree or shapely.STRtree(pg)
    ci, pi = tree.query(pts, predicate="within")
    out = np.full(len(children), -1)
    out[ci] = pi  # a point lies in one parent unless parents overlap; resolved below
    hits = np.bincount(ci, minlength=len(children))
    ambiguous = np.flatnonzero(hits != 1)
    if len(ambiguous):
        c2, p2 = tree.query(cg[ambiguous], predicate="intersects")
        if len(c2):
            areas = shapely.area(shapely.intersection(cg[ambiguous][c2], pg[p2]))
            best: dict[int, tuple[float, int]] = {}
            for c, p, a in zip(c2, p2, areas):
                if a > best.get(c, (0.0, -1))[0]:
                    best[c] = (a, p)
            for c, (_, p) in best.items():
                out[ambiguous[c]] = p
    return out


def _ties_to_declared(cg, pg, owner, declared, pcode, tolerances) -> np.ndarray:
    """``owner`` with each child that holds as much area in its declared parent as in the
    parent found for it (to the noise width squared) given its declared parent: a cell
    lying exactly half in two communities belongs to the one it says."""
    position = {c: i for i, c in enumerate(pcode)}
    says = np.array([position.get(str(d), -1) if d is not None else -1 for d in declared])
    differ = np.flatnonzero((says >= 0) & (owner >= 0) & (says != owner))
    if not len(differ):
        return owner
    in_declared = shapely.area(shapely.intersection(cg[differ], pg[says[differ]]))
    in_found = shapely.area(shapely.intersection(cg[differ], pg[owner[differ]]))
    tie = in_declared >= in_found - tolerances.noise_width**2
    owner = owner.copy()
    owner[differ[tie]] = says[differ[tie]]
    return owner


def nesting(
    children: gpd.GeoDataFrame,
    layer: str,
    parents: gpd.GeoDataFrame,
    parent_layer: str,
    tolerances: Tolerances = Tolerances(),
    suspects: set[str] | frozenset = frozenset(),
    *,
    covers_parent: bool = True,
    owned: tuple[set[str], set[str]] | None = None,
) -> gpd.GeoDataFrame:
    """Findings ``not_nested``, ``parent_mismatch`` and ``gap`` of ``layer`` in its parents.

    suspects : codes of children already known to be defective (e.g. overlapping); their
        parents are examined exactly whatever their areas say.
    covers_parent : whether every parent must be tiled by children; when False (a layer
        kept only where it applies) a parent holding no child is not a gap.
    owned : ``(child codes, parent codes)`` a part of a partitioned check owns
        (:mod:`geo.partitioned`): only those children and parents are examined.
    """
    crs = children.crs
    cg = children.geometry.values
    pg = parents.geometry.values
    ccode = children["code"].astype(str).to_numpy()
    pcode = parents["code"].astype(str).to_numpy()
    rows: list[dict] = []

    ptree = shapely.STRtree(pg)
    owner = spatial_parent(children, parents, tree=ptree)
    declared = children["parent_code"].astype(object).to_numpy()
    owner = _ties_to_declared(cg, pg, owner, declared, pcode, tolerances)
    # Parents whose children's areas do not add up, or that hold suspects.
    child_area = shapely.area(cg)
    inside = owner >= 0
    summed = np.bincount(owner[inside], weights=child_area[inside], minlength=len(parents))
    parent_area = shapely.area(pg)
    eps = np.maximum(tolerances.noise_width**2, 1e-9 * parent_area)
    candidates = set(np.flatnonzero(np.abs(parent_area - summed) > eps).tolist())
    candidates |= {
        int(owner[i]) for i in np.flatnonzero(np.isin(ccode, list(suspects))) if owner[i] >= 0
    }
    # ... or holding a child that reaches outside them: cells exchanging equal parcels
    # across a boundary keep every sum. The parents grown by the noise width, prepared,
    # cover every child that stays inside (to noise).
    grown = shapely.buffer(pg, tolerances.noise_width, join_style="mitre")
    shapely.prepare(grown)
    held = np.flatnonzero(inside)
    reaching = held[~shapely.covers(grown[owner[held]], cg[held])]
    candidates |= set(owner[reaching].tolist())
    if not covers_parent:
        candidates &= set(np.unique(owner[inside]).tolist())
    mine = np.ones(len(children), dtype=bool)
    if owned is not None:
        candidates &= {i for i, c in enumerate(pcode) if c in owned[1]}
        mine = np.fromiter((c in owned[0] for c in ccode), dtype=bool, count=len(ccode))

    # Children outside every parent.
    for i in np.flatnonzero((owner < 0) & mine):
        pieces, widths, kinds = significant(
            [shapely.difference(cg[i], shapely.union_all(pg[ptree.query(cg[i])]))], tolerances
        )
        for p, w, k in zip(pieces, widths, kinds):
            rows.append(
                {
                    "rule": "not_nested",
                    "layer": layer,
                    "features": [ccode[i]],
                    "area_m2": float(p.area),
                    "width_m": float(w),
                    "kind": k,
                    "parent_layer": parent_layer,
                    "parent": None,
                    **detail("outside_every", parent=parent_layer),
                    "geometry": p,
                }
            )

    tree = shapely.STRtree(cg)
    for p in sorted(candidates):
        parent = pg[p]
        own = np.flatnonzero(owner == p)
        # The part of each child reaching outside the parent holding most of it.
        outside = shapely.difference(cg[own], parent)
        for i, g in zip(own, outside):
            pieces, widths, kinds = significant([g], tolerances)
            for piece, w, k in zip(pieces, widths, kinds):
                into = (
                    parents["code"]
                    .iloc[ptree.query(piece.representative_point(), predicate="within")]
                    .astype(str)
                    .tolist()
                )
                rows.append(
                    {
                        "rule": "not_nested",
                        "layer": layer,
                        "features": [ccode[i]] + into,
                        "area_m2": float(piece.area),
                        "width_m": float(w),
                        "kind": k,
                        "parent_layer": parent_layer,
                        "parent": pcode[p],
                        **(
                            detail(
                                "reaches_into",
                                parent=parent_layer,
                                code=pcode[p],
                                into=", ".join(into),
                            )
                            if into
                            else detail("reaches_outside", parent=parent_layer, code=pcode[p])
                        ),
                        "geometry": piece,
                    }
                )
        # The part of the parent no child covers.
        near = tree.query(parent, predicate="intersects")
        pieces, widths, kinds = significant([uncovered_by(parent, cg[near])], tolerances)
        sides = neighbour_codes(pieces, children.iloc[near]) if len(near) else [[]] * len(pieces)
        for piece, w, k, s in zip(pieces, widths, kinds, sides):
            rows.append(
                {
                    "rule": "gap",
                    "layer": layer,
                    "features": s,
                    "area_m2": float(piece.area),
                    "width_m": float(w),
                    "kind": k,
                    "parent_layer": parent_layer,
                    "parent": pcode[p],
                    **detail("parent_gap", parent=parent_layer, code=pcode[p], layer=layer),
                    "geometry": piece,
                }
            )

    # Declared parent versus the parent that holds the child.
    actual = np.where(owner >= 0, pcode[np.maximum(owner, 0)], None)
    known = set(pcode)
    for i in np.flatnonzero((declared != actual) & mine):
        if actual[i] is None:
            continue  # outside every parent: reported as not_nested
        d = declared[i]
        said = (
            detail("unknown_parent", said=d, parent=parent_layer)
            if d not in known
            else detail("wrong_parent", said=d, actual=actual[i])
        )
        rows.append(
            {
                "rule": "parent_mismatch",
                "layer": layer,
                "features": [ccode[i]],
                "parent_layer": parent_layer,
                "parent": actual[i],
                **said,
                "geometry": shapely.point_on_surface(cg[i]),
            }
        )
    return make_findings(rows, crs)
