"""Field mapping: users' own column names (often Chinese) to gridmap's field names.

Known aliases are applied automatically (名称 → name, 编码 → code, 户数 → households …);
an explicit mapping ``{"YOUR_COLUMN": "field"}`` always wins. Layer-aware aliases keep a
grid file's 网格编码 as its ``code`` and its 社区编码 as its ``parent_code``.
"""

from __future__ import annotations

import pandas as pd

from layers.errors import LayerError
from layers.schema import LAYERS, spec

__all__ = ["aliases_for", "map_fields", "parse_field_options"]

_GENERIC = {
    "code": ["code", "编码", "代码", "编号", "区划代码", "行政区划代码", "id_code"],
    "name": ["name", "名称", "名字", "name_zh", "mc"],
    "parent_code": ["parent_code", "parent_cod", "parent", "上级编码", "父级编码", "所属编码", "上级代码"],
    "households": ["households", "hh", "户数", "总户数", "住户数", "户籍户数"],
    "population": ["population", "pop", "人口", "人口数", "总人口", "常住人口", "人数"],
    "floating_population": ["floating_population", "floating_p", "floating", "流动人口", "流动人口数"],
    "kind": ["kind", "type", "类型", "类别", "设施类型"],
    "class": ["class", "highway", "fclass", "道路等级", "等级"],
}


def aliases_for(layer: str) -> dict[str, list[str]]:
    """Column-name aliases for each field of ``layer``, most specific first."""
    s = spec(layer)
    out = {f.name: list(_GENERIC.get(f.name, [f.name])) for f in s.fields}
    own = s.label
    if "code" in out:
        out["code"][:0] = [f"{own}编码", f"{own}代码"]
    if "name" in out:
        out["name"][:0] = [f"{own}名称", f"{own}名"]
    if "parent_code" in out and s.parent:
        parent_label = LAYERS[s.parent].label
        out["parent_code"][:0] = [f"{parent_label}编码", f"{parent_label}代码",
                                  f"所属{parent_label}编码", f"{s.parent}_code"]
    return out


def _norm(name: str) -> str:
    return str(name).strip().lower().replace(" ", "").replace("-", "_")


def map_fields(df: pd.DataFrame, layer: str, field_map: dict[str, str] | None = None
               ) -> tuple[pd.DataFrame, dict[str, str]]:
    """Rename ``df``'s columns to the fields of ``layer``.

    Returns the renamed frame and the mapping that was applied ``{source: field}``. For
    each field the first alias (most specific first) that names a column wins; columns
    that match nothing are kept under their own names. An explicit mapping naming a column
    the file lacks, or a field the layer does not have, raises :class:`LayerError`.
    """
    field_map = dict(field_map or {})
    geom_col = getattr(df, "_geometry_column_name", None)
    columns = [c for c in df.columns if c != geom_col]
    known = {f.name for f in spec(layer).fields}
    problems = []
    for source, target in field_map.items():
        if source not in columns:
            problems.append(f"--field {source}={target}: the file has no column '{source}'; "
                            f"its columns are {', '.join(map(str, columns))}")
        if target not in known:
            problems.append(f"--field {source}={target}: '{target}' is not a field of the "
                            f"{layer} layer; must be one of {', '.join(sorted(known))}")
    if problems:
        raise LayerError(f"Field mapping for layer '{layer}' does not fit the file:", problems)

    applied: dict[str, str] = dict(field_map)
    taken = set(field_map.values())
    by_norm = {_norm(c): c for c in columns if c not in field_map}
    for target, names in aliases_for(layer).items():
        if target in taken:
            continue
        hit = next((by_norm[_norm(n)] for n in names if _norm(n) in by_norm), None)
        if hit is not None:
            applied[hit] = target
            taken.add(target)
    # A column already named like a field keeps its name; drop identity entries.
    applied = {k: v for k, v in applied.items() if k != v}
    clashes = [v for v in applied.values() if v in columns and v not in applied]
    if clashes:
        raise LayerError(
            f"Layer '{layer}': the file already has a column '{clashes[0]}' and another column "
            f"maps to it too; rename one of them or drop the --field option"
        )
    return df.rename(columns=applied), applied


def parse_field_options(options: list[str] | None) -> dict[str, str]:
    """``['名称=name', '户数=households']`` → ``{'名称': 'name', '户数': 'households'}``."""
    out = {}
    for opt in options or []:
        source, sep, target = opt.partition("=")
        if not sep or not source or not target:
            raise LayerError(f"--field '{opt}' must look like YOUR_COLUMN=field, e.g. 户数=households")
        out[source.strip()] = target.strip()
    return out
