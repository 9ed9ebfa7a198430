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

from serving.errors import BadRequest, NotFound, NotLoaded
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
    return MembersPage(audience_id=audience_id, page=page_no, page_size=page_size, total=len(ids), members=members,
                       note=None if ids else _empty_note(data_dir, audience_id))


def _empty_note(data_dir: Path, audience_id: str) -> str:
    """Why a saved audience has no member, from its metadata (``<id>.json`` beside the members) when there is one."""
    from features.audience import AudienceStore, empty_warning

    try:
        return empty_warning(AudienceStore(Path(data_dir) / "audiences").get(audience_id)) or "the audience is empty"
    except (ValueError, TypeError, OSError):  # no or unreadable metadata (serving.audiences.save writes none)
        return "the audience is empty"


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


def delete(data_dir: Path, audience_id: str, push: bool = True, redis: str | None = None) -> Any:
    """Delete a saved audience (members and metadata); a lookalike one's name leaves its members' tag.

    The same as ``portrait audience delete``: with ``push`` the ``lookalike_audiences`` predicted
    tag is resynced in Feast (``serving.writeback.sync_lookalike_tags``, never raising).
    """
    from features.audience import AudienceStore
    from features.audience_tags import is_lookalike

    from serving.schemas import AudienceDeleted

    path = audience_path(data_dir, audience_id)
    meta = path.with_suffix(".json")
    if not path.exists() and not meta.exists():
        raise NotFound(f"no saved audience '{audience_id}'")
    lookalike = is_lookalike(AudienceStore(Path(data_dir) / "audiences"), audience_id)
    path.unlink(missing_ok=True)  # members first: a half-deleted audience is metadata that lists no one
    meta.unlink(missing_ok=True)
    tags = None
    if lookalike:
        from serving.writeback import sync_lookalike_tags

        tags = sync_lookalike_tags(data_dir, redis) if push else "skipped: Feast push turned off"
    return AudienceDeleted(audience_id=audience_id, lookalike_tags=tags)


_FEATS: dict = {}  # (path, mtime) -> the latest feature snapshot as the audience functions want it


def _features_frame(data_dir: Path) -> Any:
    from features.audience import latest_features

    path = Path(data_dir) / "features" / "customer_features.parquet"
    try:
        key = (str(path), path.stat().st_mtime_ns)
    except OSError:
        raise NotLoaded("customer features are not loaded (features/customer_features.parquet missing)") from None
    with _LOCK:
        hit = _FEATS.get(key)
    if hit is None:
        hit = latest_features(path.parent)
        with _LOCK:
            _FEATS.clear()
            _FEATS[key] = hit
    return hit


def _seeds(req: Any, bundle: Any, data_dir: Path, feats: Any) -> tuple[list[str], str]:
    """The seed one_ids and a one-line description of where they came from."""
    from features.audience import AudienceError, AudienceStore
    from features.audience_rules import RuleError, evaluate

    if req.audience_id is not None:
        try:
            return list(AudienceStore(Path(data_dir) / "audiences").members(req.audience_id, feats)), \
                f"audience {req.audience_id}"
        except (AudienceError, FileNotFoundError, KeyError):
            raise NotFound(f"no saved audience '{req.audience_id}'") from None
    if req.rule is not None:
        try:
            mask = evaluate(req.rule, feats)
        except RuleError as exc:
            raise BadRequest(f"rule: {exc}") from None
        return feats["one_id"].astype(str).to_numpy()[mask].tolist(), "rule"
    res = bundle.resources
    resolved = [_one_person(res, i) if res is not None else i for i in req.ids]
    return [o for o in dict.fromkeys(resolved) if o is not None], f"{len(req.ids)} ids"


def _one_person(res: Any, identifier: str) -> str | None:
    """The seed's one_id; None for an identifier several people share (a store device is no one's seed)."""
    from features.identity.index import SharedIdentifier

    try:
        return res.resolve(identifier, personal=True)
    except SharedIdentifier:
        return None


def lookalike(bundle: Any, req: Any, data_dir: Path, push: bool = True, redis: str | None = None) -> Any:
    """Expand a seed (saved audience, id list or rule) with the lookalike champion; save and explain it.

    With ``push`` the members' ``lookalike_audiences`` predicted tag is written to Feast
    (``serving.writeback.sync_lookalike_tags``; the response's ``lookalike_tags`` says how it went).
    """
    import datetime as dt
    import secrets

    from features.audience import AudienceError, AudienceStore
    from features.audience_lookalike import expand, explain
    from models.lookalike import SeedTooSmall

    from serving.schemas import LookalikeResponse, TgiRow

    served = bundle.model("lookalike")
    usable = served.model.model.methods()
    if req.method not in usable:
        raise BadRequest(f"method: '{req.method}' needs inputs lookalike model version {served.version} was not "
                         f"fitted with; this model offers {', '.join(usable)}")
    feats = _features_frame(data_dir)
    seeds, origin = _seeds(req, bundle, data_dir, feats)
    if not seeds:
        raise BadRequest(f"the seed ({origin}) matches no known customer")
    try:
        result = expand(served.model, seeds, req.reach, features=feats, filter_rule=req.filter,
                        method=None if req.method == "auto" else req.method)
    except (SeedTooSmall, AudienceError) as exc:
        raise BadRequest(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - a bad filter rule surfaces here as the rule parser's error
        if type(exc).__name__ == "RuleError":
            raise BadRequest(f"filter: {exc}") from None
        raise
    if not len(result.members):  # nothing is saved: an empty audience is no answer
        raise BadRequest(f"the expansion is empty: no customer outside the seed is eligible ({result.eligible:,} "
                         f"eligible of {len(feats):,}; the seed has {result.n_seeds:,}"
                         f"{', the filter leaves none' if req.filter else ''})")
    name = f"lookalike-{dt.datetime.now(dt.timezone.utc):%Y%m%d%H%M%S}-{secrets.token_hex(3)}"
    AudienceStore(Path(data_dir) / "audiences").save_members(
        name, result.members, source="lookalike",
        lineage={"seed": origin, "seeds_in_model": int(result.n_seeds), "method": result.method,
                 "model": served.name, "model_version": served.version, "reach": str(req.reach)})
    from serving.writeback import sync_lookalike_tags

    tags = sync_lookalike_tags(data_dir, redis) if push else "skipped: Feast push turned off"
    why = explain(seeds, result.members["one_id"], feats)
    page = result.members.head(req.page_size)
    members = [Member(one_id=str(o), score=float(sc), percentile=float(p))
               for o, sc, p in zip(page["one_id"], page["score"], page["percentile"])]
    rows = [TgiRow(tag=f"{r.column}={r.value}", seed_share=float(r.seed_share), audience_share=float(r.expansion_share),
                   population_share=float(r.population_share), tgi=float(r.expansion_tgi), seed_tgi=float(r.seed_tgi))
            for r in why.itertuples(index=False)]
    return LookalikeResponse(audience_id=name, size=len(result.members), members=members, explanation=rows,
                             method=result.method, model=served.name, model_version=served.version,
                             lookalike_tags=tags)
