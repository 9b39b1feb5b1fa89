"""What a check is doing, as its ``progress`` callback is told: one :class:`Step` at a
time, named in English and Chinese from one table (:data:`STEPS`).

A step is a ``str`` (its English text: what a terminal prints) that also carries its
``key`` and its Chinese text ``zh`` (what the map's findings panel shows while the
service checks in the background).

>>> s = step("overlaps", layer="grid", n=150000)
>>> str(s), s.zh
('grid: overlaps (150,000 features)', '网格：重叠（150,000 个要素）')
"""

from __future__ import annotations

from geo.kinds import in_both_languages

__all__ = ["STEPS", "Step", "step"]

#: key → (English, Chinese) templates; ``{layer}`` and ``{parent}`` are layer kinds,
#: named in each language (:func:`geo.kinds.in_both_languages`).
STEPS = {
    "validity": ("{layer}: validity, codes", "{layer}：几何有效性、编码"),
    "overlaps": ("{layer}: overlaps ({n:,} features)", "{layer}：重叠（{n:,} 个要素）"),
    "nesting": ("{layer}: nesting in {parent}", "{layer}：是否位于{parent}内"),
    "gaps": ("{layer}: gaps", "{layer}：缝隙"),
    "alignment": ("{layer}: alignment with the hierarchy", "{layer}：与行政层级对齐"),
    "parts": ("{n} parts in {zones} zone(s)", "分为 {n} 片，{zones} 个投影带"),
    "part": ("part {i} of {n}{where}", "第 {i}/{n} 片"),
    "jurisdictions": ("jurisdictions", "辖区"),
    "recheck": ("near the {n:,} cell(s) saved", "已保存的 {n:,} 个网格附近"),
}


class Step(str):
    """One step of a check: its English text, with ``key`` and ``zh``."""

    key: str
    zh: str


def step(key: str, **facts) -> Step:
    """The step ``key`` of :data:`STEPS` with its ``facts`` filled in."""
    en, zh = in_both_languages(*STEPS[key], **facts)
    out = Step(en)
    out.key, out.zh = key, zh
    return out
