"""Interface strings, Chinese first, English available (``?lang=en``)."""

from __future__ import annotations

__all__ = ["LANGS", "STRINGS", "pick_lang"]

LANGS = ("zh", "en")

STRINGS = {
    "zh": {
        "title": "网格化管理地图", "other_lang": "English", "search": "搜索名称或编码",
        "layers": "图层", "street": "街道", "community": "社区", "grid": "网格",
        "police_area": "派出所辖区", "police_beat": "社区警务区", "road": "道路",
        "facility": "设施", "findings": "检查结果", "theme": "人口专题", "no_theme": "无",
        "lookup": "点击查询", "lookup_hint": "在地图上点击任意位置，或输入坐标：",
        "go": "查询", "nearest": "最近设施", "none": "无", "zoom_in": "请放大地图以显示网格",
        "households": "户数", "population": "人口", "floating_population": "流动人口",
        "density_per_km2": "人口密度（人/平方千米）", "floating_share_pct": "流动人口占比（%）",
        "parent": "上级", "responsible_police": "责任派出所", "police_beat_name": "社区警务区",
        "code": "编码", "name": "名称", "kind": "类型", "area": "面积", "width": "宽度",
        "rule": "规则", "features": "涉及", "no_findings": "未发现问题", "loading": "加载中…",
        "straight": "直线距离", "network": "路网距离", "menu": "菜单",
        "coverage": "服务覆盖", "suggest": "建议5处新站点", "add_site": "添加候选点",
        "uncovered": "未覆盖", "households_unit": "户", "newly": "新增覆盖",
        "optimal": "已证明最优", "not_optimal": "未证明最优", "click_to_add": "在地图上点击放置候选点（可拖动）",
        "rules": {"invalid_geometry": "几何无效", "duplicate_code": "编码重复", "overlap": "重叠",
                  "gap": "缝隙", "not_nested": "越界", "parent_mismatch": "上级编码不符",
                  "misaligned": "跨界", "sliver": "碎片"},
        "kinds": {"police_station": "派出所", "police_post": "便民警务站",
                  "health_center": "社区卫生服务中心", "service_hall": "便民服务大厅",
                  "party_service_station": "党群服务站", "school": "学校"},
    },
    "en": {
        "title": "Grid management map", "other_lang": "中文", "search": "Search name or code",
        "layers": "Layers", "street": "Streets", "community": "Communities", "grid": "Grid cells",
        "police_area": "Police areas", "police_beat": "Police beats", "road": "Roads",
        "facility": "Facilities", "findings": "Findings", "theme": "Population theme",
        "no_theme": "None", "lookup": "Look up a place",
        "lookup_hint": "Click anywhere on the map, or enter a coordinate:", "go": "Look up",
        "nearest": "Nearest facilities", "none": "none", "zoom_in": "Zoom in to show grid cells",
        "households": "Households", "population": "Population",
        "floating_population": "Floating population", "density_per_km2": "Density (people/km²)",
        "floating_share_pct": "Floating share (%)", "parent": "Parent",
        "responsible_police": "Police area", "police_beat_name": "Police beat", "code": "Code",
        "name": "Name", "kind": "Kind", "area": "Area", "width": "Width", "rule": "Rule",
        "features": "Features", "no_findings": "No findings", "loading": "Loading…",
        "straight": "straight line", "network": "road network", "menu": "Menu",
        "coverage": "Service coverage", "suggest": "Suggest 5 new sites", "add_site": "Add a site",
        "uncovered": "uncovered", "households_unit": "households", "newly": "newly covered",
        "optimal": "proven optimal", "not_optimal": "not proven optimal",
        "click_to_add": "Click the map to place a site (drag to move it)",
        "rules": {"invalid_geometry": "Invalid geometry", "duplicate_code": "Duplicate code",
                  "overlap": "Overlap", "gap": "Gap", "not_nested": "Not nested",
                  "parent_mismatch": "Parent mismatch", "misaligned": "Misaligned",
                  "sliver": "sliver"},
        "kinds": {"police_station": "Police station", "police_post": "Police post",
                  "health_center": "Health centre", "service_hall": "Service hall",
                  "party_service_station": "Party service station", "school": "School"},
    },
}


def pick_lang(value: str | None) -> str:
    """'en' if asked for, else Chinese."""
    return value if value in LANGS else "zh"
