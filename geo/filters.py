"""Selecting features by their properties: OGC CQL2 filters and simple equality filters.

CQL2 text and CQL2 JSON are parsed by pygeofilter (the OGC's own reference grammar, kept by
the geopython project) and evaluated on a GeoDataFrame by its geopandas backend. Before a
filter is evaluated every property it names is checked against the layer's
:func:`queryables`, and its values against their types, so a misspelt name or an unquoted
code is answered with what is wrong instead of an empty result. Spatial predicates
(``S_INTERSECTS(geometry, POLYGON(...))``) are in the frame's CRS: lon/lat for the served
layers (CQL2's default, CRS84).
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pandas as pd
from pygeofilter import ast, values

from geo.errors import InputError

__all__ = ["FILTER_LANGS", "queryables", "parse_filter", "properties_of", "select", "equal_to"]

FILTER_LANGS = ("cql2-text", "cql2-json")
# The draft name of CQL2 text that clients written before the standard send (GDAL 3.6's
# OAPIF driver asks for it when a server lists it); its comparisons are CQL2's.
ALIASES = {"cql-text": "cql2-text"}

_JSON_TYPES = {"i": "integer", "u": "integer", "f": "number", "b": "boolean"}


def queryables(gdf: pd.DataFrame) -> dict[str, str]:
    """Property name → JSON Schema type (``string``, ``integer``, ``number``, ``boolean``,
    ``geometry``) of each column a filter may name. Columns starting with ``_`` are not
    properties."""
    out = {}
    for name, dtype in gdf.dtypes.items():
        if str(name).startswith("_"):
            continue
        if name == getattr(gdf, "_geometry_column_name", None):
            out[name] = "geometry"
        else:
            out[name] = _JSON_TYPES.get(getattr(dtype, "kind", "O"), "string")
    return out


@functools.lru_cache(maxsize=512)
def parse_filter(text: str, lang: str = "cql2-text"):
    """The parsed CQL2 ``text`` (a pygeofilter AST; kept, as clients repeat a filter page
    after page); InputError saying where it fails."""
    lang = ALIASES.get(lang, lang)
    if lang not in FILTER_LANGS:
        raise InputError(
            f"filter-lang must be one of {', '.join(FILTER_LANGS)}; got '{lang}'",
            zh=f"filter-lang 须为 {', '.join(FILTER_LANGS)} 之一，收到“{lang}”",
        )
    # the parsers and evaluator are imported on first use: the CQL2 text grammar alone
    # takes 0.3 s to build, at every start of the service otherwise
    from pygeofilter.parsers.cql2_json import parse as parse_cql2_json
    from pygeofilter.parsers.cql2_text import parse as parse_cql2_text

    try:
        return parse_cql2_text(text) if lang == "cql2-text" else parse_cql2_json(text)
    except Exception as err:  # noqa: BLE001 - lark and json raise many kinds; all are input
        raise _unparsable(err, lang, text) from None


def _unparsable(err: Exception, lang: str, text: str) -> InputError:
    """Where and how a filter fails to parse, in the user's terms (never the parser's
    own text: token names such as MORETHAN mean nothing to the person who typed it)."""
    example = "households > 100 AND name LIKE '%社区%'"
    if isinstance(err, json.JSONDecodeError):
        at = err.pos + 1
        return InputError(
            f"filter is not valid {lang}: it is not JSON (at character {at})",
            zh=f"filter 不是有效的 {lang}：不是 JSON（第 {at} 个字符处）",
        )
    column = getattr(err, "column", None)
    if lang == "cql2-text" and isinstance(column, int) and column > 0:
        if getattr(getattr(err, "token", None), "type", None) == "$END":
            what, what_zh = "it ends before the expression is complete", "表达式不完整"
        else:
            near = text[column - 1 : column + 11]
            what = f"it cannot be read at character {column} ('{near}')"
            what_zh = f"第 {column} 个字符处（“{near}”）无法识别"
        return InputError(
            f"filter is not valid {lang}: {what}. Check the operators, brackets and quotes; "
            f"e.g. {example}",
            zh=f"filter 不是有效的 {lang}：{what_zh}。请检查运算符、括号和引号，如 {example}",
        )
    return InputError(
        f"filter is not valid {lang}: it is not a CQL2 expression gridmap can read; e.g. "
        + (
            example
            if lang == "cql2-text"
            else '{"op": ">", "args": [{"property": "households"}, 100]}'
        ),
        zh=f"filter 不是有效的 {lang}：无法识别为 CQL2 表达式",
    )


def _walk(node):
    yield node
    if isinstance(node, ast.Node):
        for sub in node.get_sub_nodes():
            yield from _walk(sub)
    elif isinstance(node, (list, tuple)):
        for sub in node:
            yield from _walk(sub)


def properties_of(root) -> set[str]:
    """The property names a parsed filter refers to."""
    return {node.name for node in _walk(root) if isinstance(node, ast.Attribute)}


def _literal_type(node) -> str | None:
    if isinstance(node, bool):
        return "boolean"
    if isinstance(node, (int, float)):
        return "number"
    if isinstance(node, str):
        return "string"
    if isinstance(node, (values.Geometry, values.Envelope)):
        return "geometry"
    return None


def _check(root, types: dict[str, str]) -> None:
    """Refuse a filter naming an unknown property, a comparison of a property with a value
    of another type, or a construct this service does not evaluate (temporal, functions)."""
    for node in _walk(root):
        if isinstance(node, ast.Attribute) and node.name not in types:
            raise InputError(
                f"filter names '{node.name}', which is not a queryable of this collection; "
                f"queryables: {', '.join(types)}",
                zh=f"filter 中的“{node.name}”不是该图层可查询的属性；可用：{', '.join(types)}",
            )
        if isinstance(node, (ast.TemporalPredicate, ast.Function)):
            what = "temporal predicates" if isinstance(node, ast.TemporalPredicate) else "functions"
            raise InputError(
                f"filter uses {what}, which this service does not evaluate",
                zh="filter 使用了本服务不支持的时间谓词或函数",
            )
        if isinstance(node, (ast.Comparison, ast.Between, ast.In, ast.Like)):
            lhs = node.lhs
            if not isinstance(lhs, ast.Attribute) or lhs.name not in types:
                continue  # an unknown name is refused when the walk reaches it
            want = types[lhs.name]
            others = (
                [node.rhs]
                if isinstance(node, ast.Comparison)
                else [node.low, node.high]
                if isinstance(node, ast.Between)
                else list(node.sub_nodes)
                if isinstance(node, ast.In)
                else [node.pattern]
            )
            for value in others:
                got = _literal_type(value)
                numeric = want in ("integer", "number")
                if got is not None and (got == "number") != numeric and got != want:
                    raise InputError(
                        f"'{lhs.name}' is {'a number' if numeric else 'text'}; compare it "
                        f"with {'a number' if numeric else 'quoted text'}, got {value!r}",
                        zh=f"“{lhs.name}”是{'数值' if numeric else '文本'}，"
                        f"请与{'数字' if numeric else '带引号的文字'}比较，收到 {value!r}",
                    )


def select(gdf, root, types: dict[str, str] | None = None, n: int | None = None) -> np.ndarray:
    """Boolean mask of the rows of ``gdf`` that ``root`` (from :func:`parse_filter`) holds
    for; missing values never match. ``gdf`` may also be a mapping of the columns the
    filter names (Series of ``n`` values each; geometry a GeoSeries), with ``types`` the
    :func:`queryables` to check the filter against: the service's fast path."""
    from pygeofilter.backends.geopandas.evaluate import to_filter

    _check(root, types if types is not None else queryables(gdf))
    n = len(gdf) if n is None else n
    try:
        result = to_filter(gdf, root)
    except (TypeError, ValueError, KeyError) as err:
        raise InputError(
            f"filter cannot be evaluated: {err}", zh=f"filter 无法计算：{err}"
        ) from None
    if not isinstance(result, pd.Series):  # a constant expression such as 1 = 1
        return np.full(n, bool(result))
    return result.fillna(False).to_numpy(dtype=bool)


def equal_to(column: pd.Series, kind: str, text: str) -> np.ndarray:
    """Boolean mask of the values of ``column`` (a property of JSON type ``kind``, see
    :func:`queryables`) equal to ``text`` (a query-string value, read as a number when the
    property is numeric): the simple property filters of OGC API – Features Part 1, e.g.
    ``parent_code=540102001``."""
    name = column.name
    if kind in (None, "geometry"):
        raise InputError(f"'{name}' is not a queryable property", zh=f"“{name}”不是可查询的属性")
    if kind in ("integer", "number"):
        try:
            value = float(text)
        except ValueError:
            raise InputError(
                f"{name} is a number; got '{text}'", zh=f"{name} 须为数字，收到“{text}”"
            ) from None
        return (pd.to_numeric(column, errors="coerce") == value).to_numpy(dtype=bool)
    if kind == "boolean":
        return (column.astype(str).str.lower() == text.lower()).to_numpy(dtype=bool)
    return (column.astype("string") == text).fillna(False).to_numpy(dtype=bool)
