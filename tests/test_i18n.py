"""Chinese everywhere on the Chinese page: every string of the page in both languages,
every finding's detail, and the messages of refused actions."""

import base64
import io
import re

import pytest

from tests.conftest import SAMPLE
from web import create_app
from web.auth import add_user
from web.i18n import STRINGS

CJK = re.compile(r"[\u4e00-\u9fff]")


def _keys(table, prefix=""):
    out = set()
    for k, v in table.items():
        out |= _keys(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k}
    return out


def test_every_page_string_exists_in_both_languages():
    assert _keys(STRINGS["zh"]) == _keys(STRINGS["en"])
    assert all(v for v in STRINGS["zh"].values())


def test_every_finding_of_the_sample_is_said_in_chinese(client):
    findings = client.get("/findings").get_json()["features"]
    assert len(findings) == 11
    for f in findings:
        p = f["properties"]
        assert p["detail"] and CJK.search(p["detail_zh"]), p
        assert p["detail_zh"] != p["detail"]


@pytest.fixture
def planner(tmp_path):
    path = tmp_path / "city.gpkg"
    path.write_bytes(SAMPLE.read_bytes())
    app = create_app({"DATASET": str(path)})
    add_user(app.extensions["gridmap"].store, "ana", "planner", "long-secret")
    auth = {"Authorization": "Basic " + base64.b64encode(b"ana:long-secret").decode()}
    return app.test_client(), auth


def test_refused_actions_answer_in_chinese(planner):
    c, auth = planner
    cell = "/collections/grid/items/540102003004003"
    etag = c.get(cell).headers["ETag"]
    feature = c.get(cell).get_json()
    upload = c.post(
        "/uploads",
        data={"layer": "facility", "file": (io.BytesIO(b"a,b\n1,2\n"), "x.csv")},
        headers=auth,
        content_type="multipart/form-data",
    )
    refusals = {
        "edit without a reason": c.put(cell, json=feature, headers={**auth, "If-Match": etag}),
        "edit without If-Match": c.put(cell, json={**feature, "reason": "x"}, headers=auth),
        "revert without a reason": c.post(
            "/collections/grid/changes/1/revert", json={}, headers=auth
        ),
        "unknown layer": c.get("/collections/grids/items"),
        "bad query": c.get("/lookup?lon=200&lat=29"),
        "address search without text": c.get("/addresses?q="),
        "upload without coordinates": upload,
        "upload of another kind": c.post(
            "/uploads",
            data={"layer": "grids", "file": (io.BytesIO(b"x"), "x.csv")},
            headers=auth,
            content_type="multipart/form-data",
        ),
        "upload without a file": c.post(
            "/uploads", data={"layer": "facility"}, headers=auth, content_type="multipart/form-data"
        ),
        "not signed in": c.post("/uploads", data={"layer": "facility"}),
    }
    for what, r in refusals.items():
        body = r.get_json()
        assert r.status_code >= 400, (what, r.status_code)
        zh = body["message"]["zh"]
        assert CJK.search(zh), (what, zh)


def test_the_page_follows_the_browsers_language_unless_asked(client):
    from tests.conftest import BROWSER

    english = client.get("/", headers={**BROWSER, "Accept-Language": "en-GB,en;q=0.9,zh;q=0.5"})
    assert 'lang": "en"' in english.get_data(as_text=True)
    chinese = client.get("/", headers={**BROWSER, "Accept-Language": "zh-CN,zh;q=0.9"})
    assert 'lang": "zh"' in chinese.get_data(as_text=True)
    asked = client.get("/?lang=zh", headers={**BROWSER, "Accept-Language": "en"})
    assert 'lang": "zh"' in asked.get_data(as_text=True)
    assert 'lang": "zh"' in client.get("/", headers=BROWSER).get_data(as_text=True)


def test_findings_name_their_features_before_their_codes(client):
    findings = client.get("/findings").get_json()["features"]
    overlap = next(f["properties"] for f in findings if f["properties"]["rule"] == "overlap"
                   and f["properties"]["layer"] == "grid")  # fmt: skip
    assert overlap["names"] == ["拉萨河社区第1网格", "拉萨河社区第4网格"], overlap
    misaligned = next(f["properties"] for f in findings if f["properties"]["rule"] == "misaligned")
    # a station, then the street it reaches into: each named from its own layer
    assert misaligned["names"][0].endswith("派出所") and misaligned["names"][1].endswith("街道")


def test_every_error_gridmap_raises_says_it_in_chinese_too():
    """Each raise of an error of gridmap's tree in geo/, layers/ and web/ gives its
    Chinese message (``zh=``); the errors that build their own (StaleEdit, EditRejected)
    and werkzeug's are not of this form."""
    import ast
    from pathlib import Path

    import geo.errors

    ours = set(geo.errors.__all__) - {"StaleEdit", "EditRejected", "ClientGone", "GridmapError"}
    root = Path(__file__).resolve().parents[1]
    missing = []
    for path in [*root.glob("geo/*.py"), *root.glob("layers/**/*.py"), *root.glob("web/*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        werkzeug = {  # werkzeug's own exceptions of the same names carry one message
            a.asname or a.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("werkzeug")
            for a in node.names
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                f = node.exc.func
                name = f.id if isinstance(f, ast.Name) else getattr(f, "attr", "")
                if (name in ours - werkzeug or name == "GridmapError") and not any(
                    k.arg == "zh" for k in node.exc.keywords
                ):
                    missing.append(f"{path.relative_to(root)}:{node.lineno} {name}")
    assert not missing, missing


def test_the_check_report_is_in_the_language_asked(capsys):
    from geo.__main__ import main

    assert main(["check", str(SAMPLE), "--lang", "zh"]) == 1  # the sample has findings
    zh = capsys.readouterr().out
    assert "汇总：" in zh and "量测坐标系" in zh and "对齐：派出所辖区与街道" in zh
    assert "网格 — 7 个问题" in zh and "几何无效：自相交" in zh
    for english in ("Summary", "Overlap", "finding(s)", "Self-intersection", "matches", "wide"):
        assert english not in zh, english
    main(["check", str(SAMPLE), "--lang", "en"])
    en = capsys.readouterr().out
    assert "Summary: " in en and "grid cell — 7 finding(s)" in en and "Self-intersection" in en
    for chinese in ("汇总", "重叠", "个问题", "自相交", "对齐", "量测"):
        assert chinese not in en, chinese
    main(["check", str(SAMPLE)])  # both, as before
    both = capsys.readouterr().out
    assert "汇总 Summary: " in both and "几何无效：自相交" in both and "Self-intersection" in both
    # a sentence is said once there, as before there were languages, not twice in a row
    assert "3,957.1 m², 25.00 m wide\n" in both and "，宽" not in both
    assert "\n  6 other(s) match whole units exactly\n" in both and "吻合" not in both


def test_the_reasons_gridmap_records_read_in_chinese():
    """Every prefix gridmap writes before a planner's reason has its Chinese (the
    change list's reason_zh); the planner's own words are left as written."""
    from layers.editing import reason_zh

    written = {
        "upload (replaced): 更名": "上传（替换）：更名",
        "upload (appended, whole layer): 新路": "上传（追加，整层写入）：新路",
        "upload (updated): x": "上传（按编码更新）：x",
        "revert revision 3: 原因": "恢复到第 3 版之前：原因",
        "revert change 9: revert change 7: aligned layout: 调整": (
            "撤销第 9 号修改：撤销第 7 号修改：采纳辖区调整方案：调整"
        ),
        "python -m geo fix: 2 repair(s)": "自动修复（python -m geo fix）：2 处",
        "my own words: upload (replaced): x": "my own words: upload (replaced): x",
    }
    for stored, shown in written.items():
        assert reason_zh(stored) == shown
