"""The reasons a change is recorded with: gridmap writes its own prefix before the
planner's words ("upload (replaced): …", "revert change 12: …"), stored in English, and
says them in Chinese from one table (:data:`REASON_PREFIXES`) where a Chinese page or
message shows them."""

from __future__ import annotations

import re

__all__ = ["REASON_PREFIXES", "reason_zh"]

#: The prefixes gridmap writes before a planner's reason in a revision (English, as
#: stored), each with its Chinese: what a Chinese page shows (:func:`reason_zh`).
REASON_PREFIXES = [
    (re.compile(r"upload \((replaced|appended|updated)(, whole layer)?\): "),
     lambda m: "上传（" + {"replaced": "替换", "appended": "追加", "updated": "按编码更新"}[m[1]]
     + ("，整层写入" if m[2] else "") + "）："),
    (re.compile(r"revert change (\d+): "), lambda m: f"撤销第 {m[1]} 号修改："),
    (re.compile(r"revert revision (\d+): "), lambda m: f"恢复到第 {m[1]} 版之前："),
    (re.compile(r"aligned layout: "), lambda m: "采纳辖区调整方案："),
    (re.compile(r"python -m geo fix: (\d+) repair\(s\)"),
     lambda m: f"自动修复（python -m geo fix）：{m[1]} 处"),
]  # fmt: skip


def reason_zh(reason: str) -> str:
    """A recorded reason with gridmap's own prefixes (:data:`REASON_PREFIXES`, however
    many, as a revert of a revert has) in Chinese; the planner's words as written.

    >>> reason_zh("revert change 12: upload (appended, whole layer): 新路竣工")
    '撤销第 12 号修改：上传（追加，整层写入）：新路竣工'
    """
    out, rest = [], reason or ""
    while True:
        for pattern, said in REASON_PREFIXES:
            m = pattern.match(rest)
            if m:
                out.append(said(m))
                rest = rest[m.end() :]
                break
        else:
            return "".join(out) + rest
