"""The layer kinds gridmap knows: the one table of what each kind is and how kinds relate.

Everything that depends on a kind reads it here — the checker (which layers nest in which,
which jurisdiction follows which unit), the lookup, the text report, the schema and import
aliases (:mod:`layers.schema`, :mod:`layers.fields`), the map page (handed to the browser
as configuration) and printing. A new kind is one more entry in :data:`KINDS`.

The hierarchy is the chain of ``parent`` links among kinds with ``hierarchy=True``::

    street 街道 ⊃ community 社区 ⊃ grid 网格 ⊃ household_unit 联户单位

Jurisdictions (``follows``) should be unions of whole units of a hierarchy kind:
police_area 派出所辖区 ≈ streets, police_beat 社区警务区 ≈ communities. Other departments'
grids (多网合一: 综治, 城管, 党建, 警务 grids drawn separately, each kind naming its
``department``) are jurisdictions too, each ≈ whole base grid cells: the alignment table,
the lookup, the check and the aligned layout treat them as they treat police areas.

>>> KINDS["grid"].parent, KINDS["police_beat"].follows
('community', 'community')
>>> hierarchy()
('street', 'community', 'grid', 'household_unit')
>>> kind("grids")
Traceback (most recent call last):
...
geo.errors.UnknownLayer: 'grids' is not a layer kind gridmap knows (did you mean 'grid'?); must be one of street, community, grid, household_unit, police_area, police_beat, grid_governance, grid_urban, grid_party, grid_police, facility, address, household, building, road
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from geo.errors import UnknownLayer

__all__ = [
    "Field",
    "LayerKind",
    "KINDS",
    "FacilityKind",
    "FACILITY_KINDS",
    "kind",
    "hierarchy",
    "partitions",
    "jurisdictions",
    "department_grids",
    "extent_layer",
    "map_layers",
    "population_kinds",
    "facility_kind",
    "in_both_languages",
]


@dataclass(frozen=True)
class Field:
    """One attribute of a layer kind.

    type : 'text', 'count' (a whole number ≥ 0) or 'number'.
    zh, en : its name in Chinese and English.
    aliases : column names users' files give it (matched ignoring case and spaces).
    """

    name: str
    type: str
    zh: str
    en: str
    required: bool = True
    aliases: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.zh


@dataclass(frozen=True)
class LayerKind:
    """A layer kind: geometry family, relations, fields, map drawing and names.

    parent : the kind whose features hold this one's (a hierarchy parent, or the police
        area of a beat); ``parent_code`` names the holding feature.
    hierarchy : part of street ⊃ community ⊃ grid ⊃ household_unit (each level tiles its
        parent: no overlap, no gap).
    follows : for a jurisdiction, the hierarchy kind whose whole units it should be made of.
    partition : its features should tile their extent (checked for overlaps and gaps,
        answered by the lookup).
    draw_order : stacking on the map, bottom to top (None: not drawn as an area or line
        layer); ``shown``: switched on when the page opens; ``style``: Leaflet path options.
    covers_parent : every parent feature must be tiled by features of this kind (a parent
        with none is a gap); False for a kind kept only where it applies (joint-household
        units, in cells with residents): a parent with none is fine, one with some must be
        tiled by them.
    optional : a dataset may well lack it (every kind may be absent; this says the city
        does not usually keep one, so nothing complains).
    aliases : names users give the kind itself, used to recognise its columns
        (e.g. 联户编码 → ``code`` of a household_unit file).
    department : for another department's grid (多网合一), that department's name in
        Chinese and English (``("城管", "urban management")``); None for the base layers.
    """

    name: str
    zh: str
    en: str
    en_plural: str
    geometry: str  # 'polygon', 'point' or 'line'
    fields: tuple[Field, ...]
    parent: str | None = None
    hierarchy: bool = False
    follows: str | None = None
    partition: bool = False
    draw_order: int | None = None
    shown: bool = False
    style: dict = field(default_factory=dict)
    covers_parent: bool = True
    optional: bool = False
    aliases: tuple[str, ...] = ()
    department: tuple[str, str] | None = None

    @property
    def label(self) -> str:
        """The Chinese name (what messages to users call the kind)."""
        return self.zh

    @property
    def has_codes(self) -> bool:
        """Whether features are told apart by a ``code`` (and so can have a history)."""
        return any(f.name == "code" for f in self.fields)

    @property
    def required(self) -> list[str]:
        return [f.name for f in self.fields if f.required]

    @property
    def geom_types(self) -> tuple[str, ...]:
        return {
            "polygon": ("Polygon", "MultiPolygon"),
            "point": ("Point", "MultiPoint"),
            "line": ("LineString", "MultiLineString"),
        }[self.geometry]


# Tables: a row per field and per kind read best as rows, so the formatter leaves them.
# fmt: off
_CODE = Field("code", "text", "编码", "code",
              aliases=("code", "编码", "代码", "编号", "区划代码", "行政区划代码", "id_code"))
_NAME = Field("name", "text", "名称", "name", aliases=("name", "名称", "名字", "name_zh", "mc"))
_PARENT_ALIASES = ("parent_code", "parent_cod", "parent", "上级编码", "父级编码", "所属编码",
                   "上级代码")
_PARENT = Field("parent_code", "text", "上级编码", "parent code", aliases=_PARENT_ALIASES)
_HOUSEHOLDS = Field("households", "count", "户数", "households",
                    aliases=("households", "hh", "户数", "总户数", "住户数", "户籍户数"))
_POPULATION = Field("population", "count", "人口", "population",
                    aliases=("population", "pop", "人口", "人口数", "总人口", "常住人口", "人数"))
_FLOATING = Field("floating_population", "count", "流动人口", "floating population",
                  required=False, aliases=("floating_population", "floating_p", "floating",
                                           "流动人口", "流动人口数"))


def _optional(f: Field) -> Field:
    return Field(f.name, f.type, f.zh, f.en, False, f.aliases)


KINDS: dict[str, LayerKind] = {k.name: k for k in [
    LayerKind("street", "街道", "street", "Streets", "polygon",
              (_CODE, _NAME, _optional(_PARENT)),
              hierarchy=True, partition=True, draw_order=1, shown=True,
              style={"color": "#222222", "weight": 3, "fill": True, "fillOpacity": 0}),
    LayerKind("community", "社区", "community", "Communities", "polygon",
              (_CODE, _NAME, _PARENT), parent="street",
              hierarchy=True, partition=True, draw_order=2, shown=True,
              style={"color": "#1f78b4", "weight": 2, "fill": True, "fillOpacity": 0}),
    LayerKind("grid", "网格", "grid cell", "Grid cells", "polygon",
              (_CODE, _NAME, _PARENT, _HOUSEHOLDS, _POPULATION, _FLOATING), parent="community",
              hierarchy=True, partition=True, draw_order=6, shown=True,
              style={"color": "#7f7f7f", "weight": 1, "fill": True, "fillOpacity": 0.04,
                     "fillColor": "#999999"}),
    # Joint-household units (联户单位): about ten neighbouring households under one head
    # (联户长), nested in grid cells; Lhasa keeps 17,000+ of them.
    LayerKind("household_unit", "联户单位", "joint-household unit", "Joint-household units",
              "polygon",
              (_CODE, _NAME, _PARENT, _optional(_HOUSEHOLDS), _optional(_POPULATION),
               Field("leader", "text", "联户长", "unit head", required=False,
                     aliases=("leader", "联户长", "户长", "负责人"))),
              parent="grid", hierarchy=True, partition=True, draw_order=7, optional=True,
              covers_parent=False,
              aliases=("联户", "联户单位"),
              style={"color": "#b15928", "weight": 0.8, "fill": True, "fillOpacity": 0,
                     "dashArray": "2 3"}),
    LayerKind("police_area", "派出所辖区", "police area", "Police areas", "polygon",
              (_CODE, _NAME), follows="street", partition=True, draw_order=3,
              aliases=("派出所",),
              style={"color": "#e31a1c", "weight": 2.5, "dashArray": "8 6", "fill": False}),
    LayerKind("police_beat", "社区警务区", "police beat", "Police beats", "polygon",
              (_CODE, _NAME, _PARENT), parent="police_area", follows="community",
              partition=True, draw_order=4, aliases=("警务区", "警务室"),
              style={"color": "#ff7f00", "weight": 1.5, "dashArray": "4 4", "fill": False}),
    # Other departments' grids (多网合一), drawn separately and compared with the base grid
    *[LayerKind(f"grid_{key}", f"{zh}网格", f"{en} grid cell", f"{en.capitalize()} grid cells",
                "polygon", (_CODE, _NAME, _optional(_PARENT)), follows="grid", partition=True,
                draw_order=5, optional=True, department=(zh, en), aliases=(f"{zh}网格",),
                style={"color": color, "weight": 1.5, "dashArray": "6 3", "fill": False})
      for key, zh, en, color in (
          ("governance", "综治", "social governance", "#6a3d9a"),
          ("urban", "城管", "urban management", "#b15928"),
          ("party", "党建", "party building", "#e7298a"),
          ("police", "警务", "police", "#1f78b4"))],
    # a police post's ``station``: the code of the police area whose station runs it
    # (every 便民警务站 should stand inside its own station's area)
    LayerKind("facility", "设施", "facility", "Facilities", "point",
              (_CODE, _NAME, Field("kind", "text", "类型", "kind",
                                   aliases=("kind", "type", "类型", "类别", "设施类型")),
               Field("station", "text", "所属派出所", "police station", required=False,
                     aliases=("station", "所属派出所", "派出所编码", "所属辖区"))),),
    # Standard addresses (一标三实: 标准地址): the address text people search by, each a
    # point with its code; search answers with who is responsible there (geo.addresses).
    LayerKind("address", "标准地址", "standard address", "Standard addresses", "point",
              (_CODE,
               Field("address", "text", "地址", "address",
                     aliases=("address", "addr", "地址", "标准地址", "详细地址", "地址名称")),
               Field("door", "text", "门牌号", "door number", required=False,
                     aliases=("door", "门牌", "门牌号", "门牌号码", "楼号")),
               _optional(_HOUSEHOLDS), _optional(_POPULATION)),
              optional=True, aliases=("标准地址", "地址")),
    # Household points or their counts per building entrance: the finest population data,
    # used to re-count redrawn grid cells.
    LayerKind("household", "住户", "household point", "Household points", "point",
              (_HOUSEHOLDS, _optional(_POPULATION)), optional=True),
    # Building footprints (楼栋) with their households: used when there are no household
    # points; a building cut by a new cell edge is shared by area.
    LayerKind("building", "楼栋", "building", "Buildings", "polygon",
              (_HOUSEHOLDS, _optional(_POPULATION)), optional=True),
    LayerKind("road", "道路", "road", "Roads", "line",
              (_optional(_NAME),
               Field("class", "text", "等级", "class", required=False,
                     aliases=("class", "highway", "fclass", "道路等级", "等级"))),
              draw_order=0, shown=True,
              # roads in a warm tan, apart from the grey, blue and black boundaries
              style={"color": "#c9975b", "weight": 1.5, "opacity": 0.9,
                     "classWeight": {"primary": 4, "secondary": 2.5, "residential": 1.2}}),
]}

# Finest household data first: what re-counts redrawn cells (see geo.redraw.estimate).
_POPULATION_KINDS = ("household", "building")


@dataclass(frozen=True)
class FacilityKind:
    """A kind of facility: names, the names users' files give it, and its map symbol."""

    name: str
    zh: str
    en: str
    color: str
    shape: str  # circle, square, diamond, triangle, star, cross
    aliases: tuple[str, ...] = ()


FACILITY_KINDS: dict[str, FacilityKind] = {f.name: f for f in [
    FacilityKind("police_station", "派出所", "Police station", "#08306b", "square"),
    FacilityKind("police_post", "便民警务站", "Police post", "#2171b5", "circle", ("警务站",)),
    FacilityKind("health_center", "社区卫生服务中心", "Health centre", "#238b45", "cross",
                 ("卫生服务中心", "卫生院")),
    FacilityKind("service_hall", "便民服务大厅", "Service hall", "#6a51a3", "diamond",
                 ("服务大厅",)),
    FacilityKind("party_service_station", "党群服务站", "Party service station", "#cb181d",
                 "star", ("党群服务中心",)),
    FacilityKind("school", "学校", "School", "#d94801", "triangle"),
]}
# fmt: on


def kind(name: str) -> LayerKind:
    """The kind called ``name``; :class:`UnknownLayer` naming the closest and all kinds."""
    try:
        return KINDS[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), KINDS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise UnknownLayer(
            f"'{name}' is not a layer kind gridmap knows{hint}; must be one of {', '.join(KINDS)}",
            zh=f"“{name}”不是 gridmap 的图层类型；"
            + (f"是否应为“{close[0]}”？" if close else "")
            + f"可用：{', '.join(KINDS)}",
        ) from None


def facility_kind(value) -> str:
    """A facility kind's key from its key or any of its names (便民警务站 → police_post);
    an unknown value is kept as it is."""
    for f in FACILITY_KINDS.values():
        if value == f.name or value == f.zh or value in f.aliases:
            return f.name
    return value


def hierarchy() -> tuple[str, ...]:
    """The hierarchy kinds, top first (street … household_unit)."""
    levels = [k for k in KINDS.values() if k.hierarchy]
    out = [k.name for k in levels if k.parent is None]
    while True:
        below = [k.name for k in levels if k.parent == out[-1]]
        if not below:
            return tuple(out)
        out.append(below[0])


def partitions() -> tuple[str, ...]:
    """Polygon kinds whose features should tile their extent, hierarchy first."""
    return tuple(n for n, k in KINDS.items() if k.partition)


def jurisdictions() -> dict[str, str]:
    """``{jurisdiction kind: the hierarchy kind it should follow}``."""
    return {n: k.follows for n, k in KINDS.items() if k.follows}


def department_grids() -> dict[str, tuple[str, str]]:
    """``{kind: (department in Chinese, in English)}`` of the other departments' grids.

    >>> department_grids()["grid_urban"]
    ('城管', 'urban management')
    """
    return {n: k.department for n, k in KINDS.items() if k.department}


def extent_layer(name: str, present) -> str | None:
    """The layer whose features mark where layer ``name`` must have one (``present``: the
    layers a dataset holds). A place inside it held by no feature of ``name`` is a gap
    (三不管): for a jurisdiction, the top hierarchy layer present (the whole city must be
    policed); otherwise, or without one, the parent layer. None: neither is present, and
    ``name``'s own outline is its extent. The check (:mod:`geo.checker`) finds gaps
    against the same layers.

    >>> extent_layer("grid", {"community"}), extent_layer("police_beat", {"street", "police_area"})
    ('community', 'street')
    """
    kind = KINDS[name]
    top = next((h for h in hierarchy() if h in present), None)
    if kind.follows and top is not None:
        return top
    return kind.parent if kind.parent in present else None


def map_layers() -> tuple[str, ...]:
    """The kinds drawn as map layers, bottom to top."""
    drawn = [k for k in KINDS.values() if k.draw_order is not None]
    return tuple(k.name for k in sorted(drawn, key=lambda k: k.draw_order))


def population_kinds() -> tuple[str, ...]:
    """Kinds holding households finer than grid cells, finest first."""
    return _POPULATION_KINDS


def in_both_languages(en: str, zh: str, **params) -> tuple[str, str]:
    """Templates ``en`` and ``zh`` filled with ``params``; ``layer``, ``parent`` and
    ``unit``, where they are layer kinds, are said as the kind's name in English and its
    Chinese title in Chinese (what a finding's detail and a check's step say).

    >>> in_both_languages("{layer}: gaps", "{layer}：缝隙", layer="grid")
    ('grid: gaps', '网格：缝隙')
    """
    named = {
        k: KINDS[v].zh for k, v in params.items() if k in ("layer", "parent", "unit") and v in KINDS
    }
    return en.format(**params), zh.format(**{**params, **named})
