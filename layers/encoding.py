"""Text encodings of users' files: detect GBK/GB18030 vs UTF-8, and refuse mojibake.

Shapefiles from Chinese desktop GIS often carry GBK attributes with no ``.cpg``; GDAL then
reads them as Latin-1 and the names come out garbled (``°ËÀª`` for 八廓). Here the raw
bytes are examined instead: valid UTF-8 is UTF-8, else valid GB18030 (a superset of GBK
and GB2312) is GB18030, else charset-normalizer is asked and the guess is reported.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable

from charset_normalizer import from_bytes

from layers.errors import InputError

__all__ = ["detect_encoding", "normalise_encoding", "garbled_examples"]

_CJK = re.compile(r"[\u3400-\u9fff]")
_LATIN1_HIGH = re.compile(r"[\u00a0-\u00ff]")


def normalise_encoding(name: str) -> str:
    """Python codec name for an encoding a user or a .cpg file gives (GBK, 936, UTF-8…)."""
    raw = name.strip().lower().replace("_", "-")
    raw = {
        "936": "gbk",
        "cp936": "gbk",
        "ansi 936": "gbk",
        "54936": "gb18030",
        "65001": "utf-8",
        "utf8": "utf-8",
    }.get(raw, raw)
    try:
        return codecs.lookup(raw).name
    except LookupError:
        raise InputError(
            f"'{name}' is not a text encoding Python knows; use e.g. utf-8, gbk or gb18030",
            zh=f"“{name}”不是可识别的文字编码；请用 utf-8、gbk 或 gb18030 等",
        ) from None


def detect_encoding(samples: Iterable[bytes]) -> tuple[str, str]:
    """Guess the encoding of text fields from their raw bytes.

    Returns ``(encoding, how)`` where ``how`` says how sure the guess is. Pure ASCII is
    reported as UTF-8. Raises :class:`InputError` when no encoding decodes the bytes.

    >>> detect_encoding(["八廓街道".encode("gbk")])
    ('gb18030', 'the bytes are valid GB18030/GBK and not UTF-8')
    >>> detect_encoding(["八廓街道".encode("utf-8")])[0]
    'utf-8'
    """
    data = [b for b in samples if b]
    blob = b"\n".join(data)
    if not any(ch > 0x7F for ch in blob):
        return "utf-8", "the text is plain ASCII"

    def decodes(enc):
        try:
            for b in data:
                b.decode(enc)
            return True
        except UnicodeDecodeError:
            return False

    if decodes("utf-8"):
        return "utf-8", "the bytes are valid UTF-8"
    if decodes("gb18030"):
        return "gb18030", "the bytes are valid GB18030/GBK and not UTF-8"
    best = from_bytes(blob).best()
    if best is not None and decodes(best.encoding):
        return best.encoding, f"guessed by charset-normalizer ({best.encoding}); check the names"
    raise InputError(
        "the text in this file is neither UTF-8 nor GBK/GB18030 and no encoding could be "
        "detected. Fix: say the encoding with --encoding (e.g. big5, latin-1)",
        zh="文件中的文字既不是 UTF-8 也不是 GBK/GB18030，且无法识别编码。修正：用 --encoding "
        "指定编码（如 big5、latin-1）",
    )


def garbled_examples(values: Iterable[str], limit: int = 3) -> list[str]:
    """Strings that look like Chinese read with the wrong encoding (mojibake).

    A string is garbled when it holds U+FFFD, or Latin-1 letters whose bytes decode as
    GBK or UTF-8 text with Chinese characters.

    >>> garbled_examples(["°ËÀª½ÖµÀ", "八廓街道", "Café"])
    ['°ËÀª½ÖµÀ']
    """
    out = []
    for v in values:
        if not isinstance(v, str):
            continue
        bad = "\ufffd" in v
        if not bad and _LATIN1_HIGH.search(v):
            try:
                raw = v.encode("latin-1")
            except UnicodeEncodeError:
                raw = None
            if raw is not None:
                for enc in ("utf-8", "gb18030"):
                    try:
                        if _CJK.search(raw.decode(enc)):
                            bad = True
                            break
                    except UnicodeDecodeError:
                        pass
        if bad:
            out.append(v)
            if len(out) >= limit:
                break
    return out
