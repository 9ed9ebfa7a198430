"""One spelling per city, so ``city == "上海"`` finds the people whose CRM wrote ``上海市``.

Golden records take ``city`` from whichever source wins survivorship, and sources spell
cities differently: ``上海市`` / ``上海`` / ``shanghai`` / ``SHANGHAI`` / full-width forms.
:func:`clean_cities` folds each distinct value once (the column is factorized first):

- NFKC (full-width letters and spaces), trimmed, inner whitespace collapsed;
- a Chinese administrative suffix dropped when a name of two or more characters remains
  (``上海市`` -> ``上海``, ``香港特别行政区`` -> ``香港``; ``沙市`` keeps its ``市``);
- other scripts in title case (``shanghai`` -> ``Shanghai``, ``NEW YORK`` -> ``New York``);
- placeholders (``N/A``, ``null``, ``unknown``, ``未知``: the rules' ``blocked.any`` and
  :data:`PLACEHOLDERS`) become null, so survivorship takes another source's real city;
- then the rules file's ``city.aliases`` (e.g. ``Shanghai: 上海``), whose keys are folded the
  same way, so one alias covers every spelling of its key.

Scripts are never translated by default: a brand whose sources mix ``Shanghai`` and ``上海``
says so in its rules file.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

import numpy as np
import pandas as pd

# longest first: 特别行政区 before 区 would matter if 区 were listed (districts are not cities: it is not)
SUFFIXES = ("特别行政区", "市")
_SPACE = re.compile(r"\s+")
_HAN = re.compile(r"[\u4e00-\u9fff]")


def fold_city(value: str) -> str:
    """The canonical spelling of one city name, before aliases."""
    text = _SPACE.sub(" ", unicodedata.normalize("NFKC", value)).strip()
    if _HAN.search(text):
        text = text.replace(" ", "")
        for suffix in SUFFIXES:
            if text.endswith(suffix) and len(text) - len(suffix) >= 2:
                text = text[: -len(suffix)]
                break
        if _HAN.search(text):
            return text
    if any(c.isalpha() for c in text):  # Latin, Cyrillic...: case is noise in a city name
        return " ".join(w[:1].upper() + w[1:].lower() for w in text.split(" "))
    return text


# what forms write for "no city" besides the rules' placeholders (blocked.any: null, n/a, unknown, ...)
PLACEHOLDERS = ("未知", "不详", "无", "空", "其他城市")


def clean_cities(values: pd.Series, aliases: Mapping[str, str] | None = None,
                 placeholders: tuple[str, ...] = ()) -> pd.Series:
    """``values`` folded by :func:`fold_city` and mapped through ``aliases``; nulls, blanks and
    ``placeholders`` (compared case-insensitively, plus :data:`PLACEHOLDERS`) become null."""
    alias = {fold_city(str(k)): fold_city(str(v)) for k, v in (aliases or {}).items()}
    blank = {fold_city(str(p)).lower() for p in (*placeholders, *PLACEHOLDERS)}
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    table = []
    for u in uniques:
        c = fold_city(str(u))
        table.append(None if c.lower() in blank else alias.get(c, c) or None)
    out = np.array(table + [None], dtype=object)[codes]  # code -1 (null) takes the trailing None
    return pd.Series(out, index=values.index, dtype=object)  # object, as read: no per-row string conversion
