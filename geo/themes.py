"""Population themes for grid cells: the figures a choropleth shows and their classes.

:func:`grid_figures` computes households, population, population density (people per km²,
measured in the local metric CRS) and the floating-population share (%) per cell;
:func:`classify` puts a figure into classes with mapclassify and gives each cell a colour.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.crs import to_crs

__all__ = ["THEMES", "RAMP", "grid_figures", "classify"]

# Theme key → (Chinese label, English label, unit)
THEMES = {
    "households": ("户数", "Households", ""),
    "population": ("人口", "Population", ""),
    "density": ("人口密度", "Population density", "/km²"),
    "floating_share": ("流动人口占比", "Floating population share", "%"),
}
# ColorBrewer YlOrRd, 5 classes.
RAMP = ["#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"]
NO_DATA = "#cccccc"


def grid_figures(grid: gpd.GeoDataFrame, *, metric_crs) -> pd.DataFrame:
    """One row per cell (same index): the figure of each theme.

    metric_crs : the dataset's metric CRS (``Dataset.metric_crs``), for the areas.
    density is people per km² of the cell's area in the local metric CRS; floating_share
    is floating_population / population in percent (NaN where either is missing or the
    population is 0).
    """
    area_km2 = to_crs(grid, metric_crs).area / 1e6
    pop = pd.to_numeric(grid["population"], errors="coerce").astype(float)
    out = pd.DataFrame(index=grid.index)
    out["households"] = pd.to_numeric(grid["households"], errors="coerce").astype(float)
    out["population"] = pop
    out["density"] = (pop / area_km2.where(area_km2 > 0)).round(1)
    if "floating_population" in grid.columns:
        floating = pd.to_numeric(grid["floating_population"], errors="coerce").astype(float)
        out["floating_share"] = (100.0 * floating / pop.where(pop > 0)).round(1)
    else:
        out["floating_share"] = np.nan
    return out


def classify(values: pd.Series, k: int = 5) -> tuple[list[str], dict]:
    """Colours per value and a legend, using mapclassify's quantiles (equal-count classes:
    deterministic, fast on 100,000 cells, and suited to skewed counts such as households).
    Missing values get a grey ``NO_DATA`` colour.

    Returns ``(colours, legend)`` with legend ``{"bins": upper bounds, "colors": [...],
    "method": name}``.
    """
    v = pd.to_numeric(values, errors="coerce").to_numpy(float)
    ok = np.isfinite(v)
    colours = np.full(len(v), NO_DATA, dtype=object)
    if ok.sum() == 0:
        return colours.tolist(), {"bins": [], "colors": [], "method": None}
    k = int(min(k, len(np.unique(v[ok]))))
    if k < 2:
        colours[ok] = RAMP[-1]
        return colours.tolist(), {
            "bins": [float(v[ok].max())],
            "colors": [RAMP[-1]],
            "method": "single value",
        }
    import mapclassify  # imported when first needed: it loads matplotlib and scikit-learn (5 s)

    scheme = mapclassify.Quantiles(v[ok], k=k)
    ramp = (
        RAMP if k == len(RAMP) else [RAMP[round(i * (len(RAMP) - 1) / (k - 1))] for i in range(k)]
    )
    colours[ok] = np.asarray(ramp, dtype=object)[scheme.yb]
    return colours.tolist(), {
        "bins": [float(b) for b in scheme.bins],
        "colors": ramp,
        "method": scheme.name,
    }
