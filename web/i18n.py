"""The string catalogue of the web pages: Chinese first, English available (``?lang=en``).

Every interface string has one key and a text in every language of :data:`LANGS` (a test
checks that no key is missing in any language). Names of layer kinds, facility kinds and
rules are not written here: they are taken from their tables (:mod:`geo.kinds`,
:data:`geo.findings.RULES`), so adding a kind or a rule adds its strings.
"""

from __future__ import annotations

from geo.findings import RULES, SLIVER
from geo.kinds import FACILITY_KINDS, KINDS

__all__ = ["LANGS", "STRINGS", "pick_lang"]

LANGS = ("zh", "en")

STRINGS = {
    "zh": {
        "title": "网格化管理地图",
        "other_lang": "English",
        "search": "搜索名称或编码",
        "layers": "图层",
        "findings": "检查结果",
        "theme": "人口专题",
        "no_theme": "无",
        "lookup": "点击查询",
        "lookup_hint": "在地图上点击任意位置，或输入坐标：",
        "go": "查询",
        "nearest": "最近设施",
        "none": "无",
        "zoom_in": "请放大地图以显示网格",
        "households": "户数",
        "population": "人口",
        "floating_population": "流动人口",
        "density_per_km2": "人口密度（人/平方千米）",
        "floating_share_pct": "流动人口占比（%）",
        "parent": "上级",
        "responsible_police": "责任派出所",
        "police_beat_name": "社区警务区",
        "code": "编码",
        "name": "名称",
        "kind": "类型",
        "area": "面积",
        "width": "宽度",
        "rule": "规则",
        "features": "涉及",
        "no_findings": "未发现问题",
        "loading": "加载中…",
        "straight": "直线距离",
        "network": "路网距离",
        "menu": "菜单",
        "coverage": "服务覆盖",
        "suggest": "建议5处新站点",
        "add_site": "添加候选点",
        "uncovered": "未覆盖",
        "households_unit": "户",
        "newly": "新增覆盖",
        "optimal": "已证明最优",
        "not_optimal": "未证明最优",
        "click_to_add": "在地图上点击放置候选点（可拖动）",
    },
    "en": {
        "title": "Grid management map",
        "other_lang": "中文",
        "search": "Search name or code",
        "layers": "Layers",
        "findings": "Findings",
        "theme": "Population theme",
        "no_theme": "None",
        "lookup": "Look up a place",
        "lookup_hint": "Click anywhere on the map, or enter a coordinate:",
        "go": "Look up",
        "nearest": "Nearest facilities",
        "none": "none",
        "zoom_in": "Zoom in to show grid cells",
        "households": "Households",
        "population": "Population",
        "floating_population": "Floating population",
        "density_per_km2": "Density (people/km²)",
        "floating_share_pct": "Floating share (%)",
        "parent": "Parent",
        "responsible_police": "Police area",
        "police_beat_name": "Police beat",
        "code": "Code",
        "name": "Name",
        "kind": "Kind",
        "area": "Area",
        "width": "Width",
        "rule": "Rule",
        "features": "Features",
        "no_findings": "No findings",
        "loading": "Loading…",
        "straight": "straight line",
        "network": "road network",
        "menu": "Menu",
        "coverage": "Service coverage",
        "suggest": "Suggest 5 new sites",
        "add_site": "Add a site",
        "uncovered": "uncovered",
        "households_unit": "households",
        "newly": "newly covered",
        "optimal": "proven optimal",
        "not_optimal": "not proven optimal",
        "click_to_add": "Click the map to place a site (drag to move it)",
    },
}


def pick_lang(value: str | None) -> str:
    """'en' if asked for, else Chinese."""
    return value if value in LANGS else "zh"


# Sign-in, editing, proposals and revisions.
STRINGS["zh"].update(
    {
        "sign_in": "登录",
        "sign_out": "退出",
        "user_name": "用户名",
        "password": "密码",
        "login_failed": "用户名或密码不正确",
        "back_to_map": "返回地图",
        "sign_in_hint": "账号由管理员用 python -m web adduser 创建；网格员（planner）可编辑，查看员（viewer）只能查看。",
        "signed_in_as": "已登录",
        "viewer_only": "查看员只能查看，不能编辑",
        "edit": "编辑网格",
        "edit_hint": "先在地图上点击一个网格，再选择操作。边线会吸附到社区边界和相邻网格。",
        "reshape": "修改边界",
        "split": "沿线拆分",
        "merge": "合并相邻网格",
        "move": "划转地块",
        "draw_cell": "新画网格",
        "preview": "预览检查",
        "save": "保存",
        "cancel": "取消",
        "reason": "修改原因",
        "accept": "接受这些问题，理由：",
        "selected": "已选网格",
        "pick_neighbour": "再点击要合并的相邻网格",
        "draw_line": "在地图上画一条穿过网格的线（双击结束）",
        "draw_piece": "画出要划给所选网格的地块（点击首点闭合）",
        "draw_new": "画出新网格的范围（点击首点闭合）",
        "drag_vertices": "拖动顶点修改边界，完成后点“预览检查”",
        "method": "户数计算方法",
        "before": "原",
        "after": "新",
        "status": "状态",
        "added": "新增",
        "removed": "撤销",
        "changed": "修改",
        "saved": "已保存",
        "new_findings": "此修改将产生的问题",
        "blocked": "存在问题：请修改，或填写接受理由后保存",
        "stale": "他人已修改该网格",
        "redo": "地图上已标出其修改（红虚线为原边界，绿色为新边界），请在新边界上重新操作",
        "proposal": "自动划分建议",
        "band": "每格户数",
        "propose": "生成建议",
        "adopt": "采纳为新版本",
        "balance": "户数离散度（标准差）",
        "compactness": "紧凑度（Polsby-Popper）",
        "moves": "调整的单元",
        "cells_n": "网格数",
        "households_moved": "调整户数",
        "history": "修改记录",
        "show_diff": "在地图上显示",
        "revert": "撤销此修改",
        "changes_csv": "修改清单（CSV）",
        "export": "导出网格图层",
        "print": "打印社区网格图",
        "community_code": "社区",
        "infeasible": "无法满足户数范围",
        "street_code": "整个街道",
        "prop_scope": "建议范围",
        "prop_code": "社区或街道编码",
        "feasible_n": "满足户数范围的社区",
        "cells_in_band": "在范围内的网格",
        "current_cells": "现有网格",
        "no_changes": "暂无修改",
        "all_changes": "全部",
        "methods": {
            "household points": "住户点位汇总",
            "buildings": "楼栋按面积分配",
            "area-weighted from the previous cells": "按原网格面积加权分配",
        },
    }
)
STRINGS["en"].update(
    {
        "sign_in": "Sign in",
        "sign_out": "Sign out",
        "user_name": "User name",
        "password": "Password",
        "login_failed": "Wrong user name or password",
        "back_to_map": "Back to the map",
        "sign_in_hint": "Accounts are made with python -m web adduser; planners may edit, viewers may only look.",
        "signed_in_as": "Signed in as",
        "viewer_only": "Viewers can look but not edit",
        "edit": "Edit grid cells",
        "edit_hint": "Click a grid cell on the map, then choose an operation. Edges snap to the community boundary and neighbouring cells.",
        "reshape": "Reshape",
        "split": "Split along a line",
        "merge": "Merge with neighbour",
        "move": "Move a piece",
        "draw_cell": "Draw a new cell",
        "preview": "Preview & check",
        "save": "Save",
        "cancel": "Cancel",
        "reason": "Reason for the change",
        "accept": "Accept these findings, because:",
        "selected": "Selected cell",
        "pick_neighbour": "Now click the neighbouring cell(s) to merge",
        "draw_line": "Draw a line across the cell (double-click to finish)",
        "draw_piece": "Draw the piece to give to the selected cell (click the first point to close)",
        "draw_new": "Draw the new cell (click the first point to close)",
        "drag_vertices": "Drag the vertices, then press Preview & check",
        "method": "Households counted by",
        "before": "before",
        "after": "after",
        "status": "status",
        "added": "added",
        "removed": "removed",
        "changed": "changed",
        "saved": "Saved",
        "new_findings": "Findings this change would add",
        "blocked": "Findings: fix them, or give a reason to accept them and save",
        "stale": "Someone else changed this cell",
        "redo": "Their change is drawn on the map (dashed red: before, green: after); redo yours on the new shape",
        "proposal": "Automatic proposal",
        "band": "Households per cell",
        "propose": "Propose",
        "adopt": "Adopt as a revision",
        "balance": "Spread of households (std. dev.)",
        "compactness": "Compactness (Polsby-Popper)",
        "moves": "units moved",
        "cells_n": "Cells",
        "households_moved": "Households moved",
        "history": "Revisions",
        "show_diff": "Show on map",
        "revert": "Revert this change",
        "changes_csv": "Change list (CSV)",
        "export": "Export grid layer",
        "print": "Printable community map",
        "community_code": "Community",
        "street_code": "Whole street",
        "prop_scope": "Proposal for",
        "prop_code": "Community or street code",
        "feasible_n": "Communities within the band",
        "cells_in_band": "Cells within the band",
        "infeasible": "The band cannot be met",
        "current_cells": "Current cells",
        "no_changes": "No changes yet",
        "all_changes": "all",
        "methods": {
            "household points": "summed from household points",
            "buildings": "buildings shared by area",
            "area-weighted from the previous cells": "area-weighted from the previous cells",
        },
    }
)


def _from_tables(lang: str) -> dict:
    """Names of layer kinds, facility kinds and rules in ``lang``, from their tables."""
    zh = lang == "zh"
    out = {name: (k.zh if zh else k.en_plural) for name, k in KINDS.items()}
    out["rules"] = {name: r.label(lang) for name, r in RULES.items()}
    out["rules"]["sliver"] = SLIVER[lang]
    out["rules_jurisdiction"] = {
        name: r.label(lang, jurisdiction=True) for name, r in RULES.items() if r.zh_jurisdiction
    }
    out["kinds"] = {name: (f.zh if zh else f.en) for name, f in FACILITY_KINDS.items()}
    out["fields"] = {f.name: (f.zh if zh else f.en) for k in KINDS.values() for f in k.fields}
    return out


for _lang in LANGS:
    STRINGS[_lang].update(_from_tables(_lang))
