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


def aliases_for(layer: str) -> dict[str, list[str]]:
    """Column-name aliases for each field of ``layer``, most specific first."""
    s = spec(layer)
    out = {f.name: list(f.aliases or (f.name,)) for f in s.fields}
    own = dict.fromkeys((s.zh, *s.aliases))  # the kind's own names: 网格编码, 联户编码 …
    if "code" in out:
        out["code"][:0] = [f"{n}{w}" for n in own for w in ("编码", "代码")]
    if "name" in out:
        out["name"][:0] = [f"{n}{w}" for n in own for w in ("名称", "名")]
    if "parent_code" in out and s.parent:
        parent = LAYERS[s.parent]
        out["parent_code"][:0] = [
            f"{pre}{n}{w}"
            for n in (parent.zh, *parent.aliases)
            for pre, w in (("", "编码"), ("", "代码"), ("所属", "编码"))
        ] + [f"{s.parent}_code"]
    return {name: list(dict.fromkeys(names)) for name, names in out.items()}


def _norm(name: str) -> str:
    return str(name).strip().lower().replace(" ", "").replace("-", "_")


def map_fields(
    df: pd.DataFrame, layer: str, field_map: dict[str, str] | None = None
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
            problems.append(
                f"--field {source}={target}: the file has no column '{source}'; "
                f"its columns are {', '.join(map(str, columns))}"
            )
        if target not in known:
            problems.append(
                f"--field {source}={target}: '{target}' is not a field of the "
                f"{layer} layer; must be one of {', '.join(sorted(known))}"
            )
    if problems:
        raise LayerError(
            f"Field mapping for layer '{layer}' does not fit the file:",
            problems,
            zh=f"图层 {layer} 的字段对应与文件不符：",
        )

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
            f"maps to it too; rename one of them or drop the --field option",
            zh=f"图层 {layer}：文件已有“{clashes[0]}”列，又有另一列对应到它；请改名其中一列，或"
            "取消这一对应",
        )
    return df.rename(columns=applied), applied


def parse_field_options(options: list[str] | None) -> dict[str, str]:
    """``['名称=name', '户数=households']`` → ``{'名称': 'name', '户数': 'households'}``."""
    out = {}
    for opt in options or []:
        source, sep, target = opt.partition("=")
        if not sep or not source or not target:
            raise LayerError(
                f"--field '{opt}' must look like YOUR_COLUMN=field, e.g. 户数=households",
                zh=f"--field “{opt}”应写作 文件列名=字段，如 户数=households",
            )
        out[source.strip()] = target.strip()
    return out
