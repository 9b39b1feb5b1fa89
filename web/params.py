"""Reading a request's query parameters: each one checked, with a message naming it."""

from __future__ import annotations

import math

from flask import current_app, request

from geo.errors import InputError

__all__ = ["catalog", "int_arg", "float_arg", "bbox_arg", "json_body"]


def catalog():
    """The :class:`web.catalog.Catalog` this app serves."""
    return current_app.extensions["gridmap"]


def _number(name: str, raw: str, parse, lo, hi, *, en: str, zh: str):
    """``raw`` parsed by ``parse`` and within [lo, hi]; InputError naming ``name``."""
    try:
        value = parse(raw)
    except ValueError:
        raise InputError(
            f"{name} must be {en}, got '{raw}'", zh=f"{name} 须为{zh}，收到“{raw}”"
        ) from None
    if not (math.isfinite(value) and lo <= value <= hi):
        raise InputError(
            f"{name} must be between {lo} and {hi}, got {raw}",
            zh=f"{name} 须在 {lo} 到 {hi} 之间，收到 {raw}",
        )
    return value


def int_arg(name: str, default: int, lo: int, hi: int) -> int:
    """The whole number ``name`` of the query (``default`` when absent), within [lo, hi]."""
    raw = request.args.get(name)
    if raw is None:
        return default
    return _number(name, raw, int, lo, hi, en="a whole number", zh="整数")


def float_arg(name: str, lo: float, hi: float) -> float:
    """The number ``name`` of the query (required), finite and within [lo, hi]."""
    raw = request.args.get(name)
    if raw is None:
        raise InputError(f"{name} is required", zh=f"缺少参数 {name}")
    return _number(name, raw, float, lo, hi, en="a number", zh="数字")


def bbox_arg():
    """``bbox=minlon,minlat,maxlon,maxlat`` (degrees) as four floats, or None."""
    raw = request.args.get("bbox")
    if raw is None:
        return None
    try:
        parts = [float(v) for v in raw.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 4 or not all(math.isfinite(v) for v in parts):
        raise InputError(
            f"bbox must be four numbers minlon,minlat,maxlon,maxlat; got '{raw}'",
            zh=f"bbox 须为四个数：最小经度,最小纬度,最大经度,最大纬度；收到“{raw}”",
        )
    x0, y0, x1, y1 = parts
    if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise InputError(
            "bbox must be minlon,minlat,maxlon,maxlat in degrees with "
            f"min ≤ max, longitude within ±180 and latitude within ±90; got '{raw}'",
            zh=f"bbox 须为度数，最小值 ≤ 最大值，经度在 ±180、纬度在 ±90 之内；收到“{raw}”",
        )
    return parts


def json_body(what: str = "a JSON object") -> dict:
    """The request's JSON object body (an empty dict when there is none)."""
    body = request.get_json(silent=True)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InputError(f"send {what}", zh="请求体须为 JSON 对象")
    return body
