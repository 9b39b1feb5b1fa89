"""Finding standard addresses (标准地址) by part of their text.

Staff type what they have — "北京中路12号", "八廓 3号", a code — and want the address and
who is responsible there. An :class:`AddressIndex` holds every address's text once,
normalised (:func:`normalise`: full-width digits and letters as ASCII, case folded, spaces
removed), in one string, so that a search is a scan by ``str.find`` at C speed rather than
a Python loop over rows. A query of several words (split at spaces) matches the addresses
holding every word, in any order.

Results are ranked: an exact match of the whole text or code first, then addresses that
start with the query, then the shortest (most specific) texts; a query matching more than
:data:`SCAN_LIMIT` addresses is ranked among the first that many found (in storage order),
which bounds the cost of a one-character query.

>>> import geopandas as gpd, shapely
>>> gdf = gpd.GeoDataFrame({"code": ["A1", "A2", "A3"],
...                         "address": ["北京中路12号", "北京中路１２号附1号", "林廓北路3号"]},
...                        geometry=shapely.points([(0, 0), (1, 1), (2, 2)]), crs=4326)
>>> index = AddressIndex(gdf)
>>> [gdf["code"][i] for i in index.search("北京中路12号")]
['A1', 'A2']
>>> [gdf["code"][i] for i in index.search("3号 林廓")]
['A3']
"""

from __future__ import annotations

import unicodedata

import geopandas as gpd
import numpy as np

__all__ = ["AddressIndex", "normalise", "SCAN_LIMIT"]

#: A query matching more addresses than this is ranked among the first this many found.
SCAN_LIMIT = 5000
_SEPARATOR = "\n"  # never inside a normalised text


def normalise(text: str) -> str:
    """Text as the index compares it: NFKC (full-width ``１２号`` → ``12号``), case folded,
    without spaces.

    >>> normalise(" 北京中路 １２号 A座 ")
    '北京中路12号a座'
    """
    folded = unicodedata.normalize("NFKC", str(text)).casefold()
    return "".join(folded.split())


class AddressIndex:
    """The addresses of one address layer (``gdf``: its ``code``, ``address`` and, if
    present, ``door`` columns), ready to search. Positions returned are rows of ``gdf``."""

    def __init__(self, gdf: gpd.GeoDataFrame):
        door = gdf["door"].fillna("").astype(str) if "door" in gdf else ""
        texts = (gdf["address"].fillna("").astype(str) + door).map(normalise)
        codes = gdf["code"].fillna("").astype(str).map(normalise)
        self._texts = texts.to_numpy(dtype=object)
        self._codes = codes.to_numpy(dtype=object)
        # one string: "text code\n" per address; starts[i] is where address i begins
        rows = [f"{t} {c}{_SEPARATOR}" for t, c in zip(self._texts, self._codes)]
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        self._starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        self._all = "".join(rows)

    def __len__(self) -> int:
        return len(self._texts)

    def _scan(self, word: str) -> np.ndarray:
        """Rows whose text or code holds ``word`` (in storage order, at most
        :data:`SCAN_LIMIT`)."""
        found, at, find = [], 0, self._all.find
        while len(found) < SCAN_LIMIT:
            at = find(word, at)
            if at < 0:
                break
            row = int(np.searchsorted(self._starts, at, side="right")) - 1
            found.append(row)
            nxt = self._starts[row + 1] if row + 1 < len(self._starts) else len(self._all)
            at = int(nxt)  # one hit per address
        return np.asarray(found, dtype=np.int64)

    def search(self, text: str, limit: int = 10) -> list[int]:
        """Rows of the addresses matching ``text`` (every word of it), best first."""
        words = sorted({normalise(w) for w in str(text).split()} - {""}, key=len, reverse=True)
        if not words or not len(self):
            return []
        rows = self._scan(words[0])  # the longest word is the rarest: scanned
        for w in words[1:]:
            rows = rows[[w in self._texts[r] or w in self._codes[r] for r in rows]]
        if not len(rows):
            return []
        whole = normalise(text)
        texts, codes = self._texts[rows], self._codes[rows]
        exact = np.array([t == whole or c == whole for t, c in zip(texts, codes)])
        starts = np.array([t.startswith(words[0]) for t in texts])
        length = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(rows))
        order = np.lexsort((length, ~starts, ~exact))
        return rows[order[:limit]].tolist()
