"""Proposed fixes for slivers and small overlaps: never applied silently.

:func:`propose_fixes` returns a repaired copy of a layer together with the list of changes
(the diff) and the findings it could not fix; the caller shows the diff, re-validates the
repaired layer (:func:`geo.checker.check_dataset`) and only then may save it.

The rule: a gap sliver goes to the neighbouring feature, in the same parent, with which it
shares the longest border; a small overlap stays with the feature it shares the longer
border with and is cut from the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import pandas as pd
import shapely

from geo.findings import Tolerances

__all__ = ["Proposal", "propose_fixes"]

_TOUCH = 0.05  # metres: how close a feature must be to a piece to count as its neighbour


@dataclass
class Proposal:
    """A repaired layer (metric CRS), the changes made, and what was left alone."""

    layer: gpd.GeoDataFrame
    changes: pd.DataFrame  # code, finding, action, area_m2, geometry (WKT of the piece)
    skipped: list[str]

    @property
    def changed_codes(self) -> list[str]:
        return sorted(set(self.changes["code"])) if len(self.changes) else []


def _clean(geom):
    """Snap-round to a micrometre grid: this removes the zero-width spikes an overlay leaves
    where edges nearly coincide, which a reprojection round trip would turn into
    self-intersections. Coordinates move by half a micrometre at most."""
    return shapely.set_precision(geom, 1e-6)


def _border(piece, geom) -> float:
    """Length (m) of the piece's boundary that runs along ``geom``."""
    return float(piece.boundary.intersection(geom.buffer(_TOUCH)).length)


def propose_fixes(
    gdf: gpd.GeoDataFrame,
    layer: str,
    findings: gpd.GeoDataFrame,
    *,
    tolerances: Tolerances = Tolerances(),
    max_overlap_width: float | None = None,
) -> Proposal:
    """Fix the ``layer``'s sliver gaps and overlaps narrower than ``max_overlap_width``
    (default: the sliver width). ``gdf`` and ``findings`` are in the same metric CRS."""
    max_overlap_width = tolerances.sliver_width if max_overlap_width is None else max_overlap_width
    out = gdf.copy().reset_index(drop=True)
    geoms = out.geometry.values.copy()
    codes = out["code"].astype(str).to_numpy()
    parents = out["parent_code"].astype(str).to_numpy() if "parent_code" in out else None
    tree = shapely.STRtree(geoms)
    changes, skipped = [], []
    mine = findings[findings["layer"] == layer]
    for f in mine.itertuples(index=False):
        label = (
            f"{f.rule} {', '.join(f.features)} ({f.area_m2:,.1f} m², {f.width_m:.2f} m)"
            if f.area_m2 == f.area_m2 and f.area_m2 is not None
            else f"{f.rule} {f.features}"
        )
        piece = f.geometry
        if f.rule == "gap" and f.kind == "sliver":
            near = tree.query(piece, predicate="dwithin", distance=_TOUCH)
            if parents is not None and f.parent:
                near = near[parents[near] == f.parent]
            if len(near) == 0:
                skipped.append(f"{label}: no neighbour in the same parent")
                continue
            best = max(near, key=lambda i: _border(piece, geoms[i]))
            geoms[best] = _clean(shapely.union(geoms[best], piece))
            changes.append(
                {
                    "code": codes[best],
                    "finding": label,
                    "action": "takes the sliver",
                    "area_m2": float(piece.area),
                    "piece": piece.wkt,
                }
            )
        elif f.rule == "overlap" and f.width_m is not None and f.width_m < max_overlap_width:
            sides = [i for i in tree.query(piece) if codes[i] in f.features]
            if len(sides) != 2:
                skipped.append(f"{label}: its two features are ambiguous (duplicate codes?)")
                continue
            rest = {i: shapely.difference(geoms[i], piece) for i in sides}
            keep = max(sides, key=lambda i: _border(piece, rest[i]))
            lose = next(i for i in sides if i != keep)
            geoms[lose] = _clean(rest[lose])
            changes.append(
                {
                    "code": codes[lose],
                    "finding": label,
                    "action": f"gives the overlap to {codes[keep]}",
                    "area_m2": -float(piece.area),
                    "piece": piece.wkt,
                }
            )
        elif f.rule in ("gap", "overlap"):
            skipped.append(f"{label}: {f.kind} defect, too wide to fix automatically")
    out.geometry = geoms
    return Proposal(
        out,
        pd.DataFrame(changes, columns=["code", "finding", "action", "area_m2", "piece"]),
        skipped,
    )
