"""Saved audiences (read side) and lookalike expansion for the HTTP API.

An audience is ``<data>/audiences/<audience_id>.parquet`` with at least a
``one_id`` column and optionally ``score`` and ``percentile``, best first (the
audience area writes them; :func:`save` writes the same shape). Pages and CSV
exports read that file, cached per modification time, so paging through a
large audience does not re-read it per page.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from serving.errors import BadRequest, NotFound
from serving.schemas import Member, MembersPage

AUDIENCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_CACHE: OrderedDict = OrderedDict()  # (path, mtime) -> (one_ids, scores, percentiles)
_LOCK = threading.Lock()


def audience_path(data_dir: Path, audience_id: str) -> Path:
    if not AUDIENCE_ID.match(audience_id) or ".." in audience_id:
        raise BadRequest("audience_id must be 1-128 letters, digits, '_', '-' or '.'")
    return Path(data_dir) / "audiences" / f"{audience_id}.parquet"


def _members(data_dir: Path, audience_id: str) -> tuple[list, list, list]:
    import pandas as pd

    path = audience_path(data_dir, audience_id)
    try:
        key = (str(path), path.stat().st_mtime_ns)
    except OSError:
        raise NotFound(f"no saved audience '{audience_id}'") from None
    with _LOCK:
        hit = _CACHE.get(key)
    if hit is None:
        df = pd.read_parquet(path)
        n = len(df)
        hit = (df["one_id"].astype(str).tolist(),
               df["score"].astype(float).tolist() if "score" in df else [None] * n,
               df["percentile"].astype(float).tolist() if "percentile" in df else [None] * n)
        with _LOCK:
            _CACHE[key] = hit
            while len(_CACHE) > 8:
                _CACHE.popitem(last=False)
    return hit


def page(data_dir: Path, audience_id: str, page_no: int, page_size: int) -> MembersPage:
    ids, scores, pct = _members(data_dir, audience_id)
    lo = (page_no - 1) * page_size
    members = [Member(one_id=i, score=s, percentile=p)
               for i, s, p in zip(ids[lo:lo + page_size], scores[lo:lo + page_size], pct[lo:lo + page_size])]
    return MembersPage(audience_id=audience_id, page=page_no, page_size=page_size, total=len(ids), members=members)


def csv_chunks(data_dir: Path, audience_id: str, chunk: int = 10_000) -> Iterator[str]:
    """The audience as CSV text, in chunks (raises NotFound before the first chunk)."""
    ids, scores, pct = _members(data_dir, audience_id)

    def gen() -> Iterator[str]:
        yield "one_id,score,percentile\n"
        for lo in range(0, len(ids), chunk):
            yield "".join(f"{i},{'' if s is None else s},{'' if p is None else p}\n"
                          for i, s, p in zip(ids[lo:lo + chunk], scores[lo:lo + chunk], pct[lo:lo + chunk]))

    return gen()


def save(data_dir: Path, audience_id: str, members: Any) -> Path:
    """Write an audience (DataFrame with one_id[, score, percentile]) atomically."""
    from features.io import write_parquet

    return write_parquet(members, audience_path(data_dir, audience_id))


def lookalike(bundle: Any, req: Any, data_dir: Path) -> Any:
    """Expand a seed to similar customers with the lookalike champion (lands with the audience area)."""
    from serving.errors import NotLoaded

    bundle.model("lookalike")
    raise NotLoaded("lookalike expansion is not available in this build (features/audience.py not installed)")
