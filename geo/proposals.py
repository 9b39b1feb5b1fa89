"""Proposals for a dataset: one community's grid cells, or a whole street's, community by
community, re-partitioned into a household band (see :mod:`geo.partition` for how).

:func:`propose_for` takes the layers as loaded (any geographic or projected CRS), picks the
community or the street's communities, their current cells, the roads near them and the
household points or buildings if the dataset has them, works in the local metric CRS and
sums the result up beside the current cells' figures. Pure: nothing is read or written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.dataset import Dataset
from geo.errors import InputError, NotFound
from geo.partition import Proposal, cell_figures, polsby_popper, propose_street
from geo.redraw import serial_name

__all__ = ["AreaProposal", "propose_for"]


@dataclass
class AreaProposal:
    """Proposed cells for one community or a street.

    ``communities``: a :class:`~geo.partition.Proposal` per community code; ``cells``: all
    proposed cells (metric CRS, with ``parent_code`` and a ``name`` by
    :func:`geo.redraw.serial_name`); ``moves``: unit → old cell → new
    cell, with the community; ``metrics``: the proposed cells' figures over the whole area;
    ``current``: the same figures of the cells as they are.
    """

    scope: str  # "community" or "street"
    code: str
    band: tuple[float, float]
    communities: dict[str, Proposal]
    cells: gpd.GeoDataFrame | None
    moves: pd.DataFrame
    metrics: dict
    current: dict

    @property
    def feasible(self) -> bool:
        """Every community has a proposal with every cell in the band."""
        return all(p.feasible for p in self.communities.values())

    @property
    def reason(self) -> str | None:
        """Why the band is not met, per community ('code: reason; …'), or None."""
        bad = [f"{code}: {p.reason}" for code, p in self.communities.items() if not p.feasible]
        return "; ".join(bad) or None

    def to_dict(self) -> dict:
        """The proposal as JSON (strict: no NaN): scope and code, feasibility and why,
        figures proposed and current, each community's outcome, and when there are
        proposed cells, the cells as GeoJSON in WGS 84 lon/lat and the unit moves."""
        body = {
            "scope": self.scope, self.scope: self.code, "feasible": self.feasible,
            "reason": self.reason, "metrics": self.metrics, "current": self.current,
            "communities": [{"community": code, "feasible": p.feasible, "reason": p.reason,
                             "cells": p.metrics.get("cells", 0)}
                            for code, p in self.communities.items()],
        }  # fmt: skip
        if self.cells is not None:
            body["cells"] = json.loads(self.cells.to_crs("EPSG:4326").to_json(drop_id=True))
            body["moves"] = json.loads(self.moves.to_json(orient="records", force_ascii=False))
        return body


def propose_for(
    layers: dict,
    *,
    community: str | None = None,
    street: str | None = None,
    band: tuple[float, float] = (300, 500),
    seed: int = 0,
    tries: int = 8,
    time_budget: float = 5.0,
) -> AreaProposal:
    """Propose cells for ``community`` or for every community of ``street`` (codes).

    ``layers``: a :class:`~geo.dataset.Dataset` or its layers by kind (``community`` and
    ``grid`` needed; ``road`` and ``household`` points or ``building`` footprints used when
    present), in any one CRS; the work is done in the dataset's metric CRS. Raises
    :class:`~geo.errors.NotFound` for an unknown code and
    :class:`~geo.errors.InputError` for a bad band or missing layers.

    >>> propose_for({}, community="1")
    Traceback (most recent call last):
    ...
    geo.errors.InputError: a proposal needs community and grid layers
    """
    if (community is None) == (street is None):
        raise InputError(
            "give a community or a street, not both", zh="请给出一个社区或一个街道的编码（二选一）"
        )
    lo, hi = band
    if not 0 < lo <= hi:
        raise InputError(
            f"the household band must have 0 < min <= max; got {lo}-{hi}",
            zh=f"户数范围须满足 0 < 最小值 ≤ 最大值，现为 {lo}-{hi}",
        )
    ds = Dataset.of(layers)
    comm, grid = ds.get("community"), ds.get("grid")
    if comm is None or grid is None:
        raise InputError(
            "a proposal needs community and grid layers", zh="自动划分需要社区和网格图层"
        )
    codes = comm["code"].astype(str)
    if community is not None:
        chosen = comm[codes == str(community)]
        if len(chosen) != 1:
            raise NotFound(
                f"no single community with code '{community}'", zh=f"没有编码为 {community} 的社区"
            )
    else:
        chosen = comm[comm["parent_code"].astype(str) == str(street)]
        if chosen.empty:
            raise NotFound(f"no community of street '{street}'", zh=f"街道 {street} 下没有社区")
    crs = ds.metric_crs
    chosen = chosen.to_crs(crs)
    outline = chosen.geometry.union_all()
    grid = grid[grid["parent_code"].astype(str).isin(chosen["code"].astype(str))].to_crs(crs)
    roads = _within(ds.get("road"), outline, crs)
    finest = ds.population()
    population = _within(ds[finest] if finest else None, outline, crs)

    proposals = propose_street(
        chosen,
        grid,
        band=band,
        roads=roads,
        seed=seed,
        tries=tries,
        time_budget=time_budget,
        population=population,
    )

    names = dict(zip(chosen["code"].astype(str), chosen["name"])) if "name" in chosen else {}
    made = [
        p.cells.assign(
            parent_code=code, name=[serial_name(c, code, names.get(code)) for c in p.cells["code"]]
        )
        for code, p in proposals.items()
        if p.cells is not None
    ]
    cells = gpd.GeoDataFrame(pd.concat(made, ignore_index=True), crs=crs) if made else None
    moves = pd.concat(
        [p.moves.assign(community=code) for code, p in proposals.items() if p.moves is not None]
        or [
            pd.DataFrame(
                columns=[
                    "unit",
                    "old_cell",
                    "new_cell",
                    "new_cell_continues",
                    "households",
                    "community",
                ]
            )
        ],
        ignore_index=True,
    )
    hh, pp = (cells["households"], cells["polsby_popper"]) if made else ([], [])
    metrics = {
        **cell_figures(hh, pp, band),
        "band": [lo, hi],
        "households": round(float(np.sum(hh)), 1),
        "households_moved": round(float(moves["households"].sum()), 1),
        "cells_across_roads": int(
            sum(p.metrics.get("cells_across_roads", 0) for p in proposals.values())
        ),
        "seconds": round(float(sum(p.metrics.get("seconds", 0.0) for p in proposals.values())), 2),
        "figures_from": next(
            (p.metrics["figures_from"] for p in proposals.values() if "figures_from" in p.metrics),
            None,
        ),
        "communities": len(proposals),
        "communities_feasible": int(sum(p.feasible for p in proposals.values())),
    }
    if community is not None:  # how the one proposal was found (start, seed, roads, …)
        metrics = {**proposals[str(community)].metrics, **metrics}
    return AreaProposal(
        "community" if community is not None else "street",
        str(community if community is not None else street),
        (lo, hi),
        proposals,
        cells,
        moves,
        metrics,
        cell_figures(grid["households"], polsby_popper(grid.geometry.values), band),
    )


def _within(frame, outline, crs):
    """The features of ``frame`` touching ``outline``, in ``crs`` (None if there are none).

    Only the features whose boxes meet the outline's box, padded by 10 m for the bend of
    its edges between CRSs, are reprojected (found in ``frame``'s own CRS by its spatial
    index), not the whole layer."""
    if frame is None or not len(frame):
        return None
    x0, y0, x1, y1 = outline.bounds
    box = (
        gpd.GeoSeries([shapely.box(x0 - 10, y0 - 10, x1 + 10, y1 + 10)], crs=crs)
        .to_crs(frame.crs)
        .iloc[0]
    )
    frame = frame.iloc[np.sort(frame.sindex.query(box))].to_crs(crs)
    keep = frame.intersects(outline)
    return frame[np.asarray(keep)] if keep.any() else None
