"""What each endpoint does, as plain functions of (bundle, request) the tests call directly.

A function reads one :class:`~serving.loader.Bundle` snapshot (models + data) and
returns the endpoint's response model, or raises a :class:`~serving.errors.ServingError`:
``BadRequest`` (400), ``NotFound`` (404) or ``NotLoaded`` (503, naming what is
missing). Hot paths index arrays prepared at load time; nothing here builds a
DataFrame per request. Unknown customers are not errors: ``/recommend`` falls
back to popular items, ``/score`` answers ``found: false``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from serving.adapters import TAG_NAMES, PredictorAdapter, RecommenderAdapter
from serving.config import ServeConfig
from serving.errors import NotFound, NotLoaded
from serving.loader import Bundle, Loader, ServedModel, load_pyfunc
from serving.resources import Resources
from serving.resources import load_resources as _load_resources
from serving.schemas import (
    ItemFilters, Prediction, ProfileResponse, RecommendRequest, RecommendResponse, ScoredItem, ScoreRequest,
    ScoreResponse, ScoreRow, SimilarItemsRequest, SimilarItemsResponse, Tag,
)

PREDICTORS = ("churn", "ltv", "propensity")


def load_model(kind: str, uri: str) -> Any:
    """Load one registry version and adapt it to what the endpoints call."""
    obj = load_pyfunc(kind, uri)
    if kind == "recommender":
        return RecommenderAdapter.from_model(obj)
    if kind in PREDICTORS:
        return PredictorAdapter.from_model(kind, obj)
    return obj  # lookalike: used as the audience area's model object


def load_resources(config: ServeConfig, previous: Any) -> Resources:
    return _load_resources(config, previous)


def prepare(models: dict[str, ServedModel], resources: Resources | None) -> None:
    """Fit each predictor's tag cut points on the current population (once per version and snapshot)."""
    feats = resources.features if resources is not None else None
    if feats is None:
        return
    for kind in PREDICTORS:
        if kind in models:
            adapter = models[kind].model
            adapter.calibrate(feats.matrix[:, adapter.columns_in(feats)], id(feats))


def readiness(loader: Loader) -> dict[str, Any]:
    """What this worker serves and what is missing; ready once a model and the customer data are loaded."""
    b = loader.bundle
    res: Resources | None = b.resources
    missing = list(res.missing) if res is not None else ["data (not loaded)"]
    ready = loader.loaded_once and bool(b.models) and res is not None and res.identity is not None
    served = {k: {"name": m.name, "version": m.version, "run_id": m.run_id, "loaded_at": m.loaded_at}
              for k, m in b.models.items()}
    return {"ready": ready, "generation": b.generation, "models": b.versions(), "served": served,
            "errors": dict(b.errors), "missing_data": missing,
            "features_as_of": res.features.as_of if res is not None and res.features is not None else None}


# ---- recommendations ---------------------------------------------------------------------------


def _allowed(rec: RecommenderAdapter, res: Resources | None, filters: ItemFilters | None,
             exclude: list[str]) -> np.ndarray | None:
    """Boolean mask over the model's items, or None when nothing is filtered."""
    mask = None
    if filters is not None and filters.model_dump(exclude_none=True):
        attrs = rec.aligned(res.items if res is not None else None)
        if attrs is None:
            raise NotLoaded("item attributes are not loaded (raw/items.parquet missing): filters cannot be applied")
        cat, price, stock, launch = attrs
        mask = np.ones(len(rec.item_ids), dtype=bool)
        if filters.categories is not None:
            mask &= np.isin(cat, filters.categories)
        if filters.exclude_categories:
            mask &= ~np.isin(cat, filters.exclude_categories)
        if filters.price_min is not None:
            mask &= price >= filters.price_min
        if filters.price_max is not None:
            mask &= price <= filters.price_max
        if filters.in_stock:
            mask &= stock
        if filters.launched_after is not None:
            mask &= launch >= np.datetime64(filters.launched_after)
        if filters.launched_before is not None:
            mask &= launch <= np.datetime64(filters.launched_before)
    if exclude:
        rows = [rec.item_row[i] for i in exclude if i in rec.item_row]
        if rows:
            mask = np.ones(len(rec.item_ids), dtype=bool) if mask is None else mask
            mask[rows] = False
    return mask


def _popular(rec: RecommenderAdapter, k: int, mask: np.ndarray | None, skip: Any = ()) -> list[ScoredItem]:
    order = rec.popular if mask is None else rec.popular[mask[rec.popular]]
    skip = set(skip)
    out = []
    for i in order[: k + len(skip)].tolist():
        if i not in skip:
            out.append(ScoredItem(item_id=rec.item_ids[i], score=float(rec.pop_score[i])))
        if len(out) == k:
            break
    return out


def _items(rec: RecommenderAdapter, ids: np.ndarray, scores: np.ndarray, k: int) -> list[ScoredItem]:
    keep = ids >= 0
    return [ScoredItem(item_id=rec.item_ids[i], score=float(s))
            for i, s in zip(ids[keep][:k].tolist(), scores[keep][:k].tolist())]


def recommend(bundle: Bundle, req: RecommendRequest) -> RecommendResponse:
    served = bundle.model("recommender")
    rec: RecommenderAdapter = served.model
    res: Resources | None = bundle.resources
    one_id = res.resolve(req.user_id) if res is not None and res.identity is not None else None
    if one_id is None and req.user_id in rec.user_row:  # identity not loaded: the model's own ids still work
        one_id = req.user_id
    mask = _allowed(rec, res, req.filters, req.exclude)
    if one_id is None or (one_id not in rec.user_row and not req.recent_items):
        seen = rec.history(one_id, req.recent_items).indices if req.exclude_seen else ()
        items = _popular(rec, req.k, mask, seen)
        fallback = "unknown_user" if one_id is None else "cold_start"
    else:
        ids, scores = rec.model.recommend(rec.history(one_id, req.recent_items), k=req.k,
                                          exclude_seen=req.exclude_seen, allowed=mask)
        items, fallback = _items(rec, np.asarray(ids).reshape(-1), np.asarray(scores).reshape(-1), req.k), None
    return RecommendResponse(one_id=one_id, items=items, model=served.name, model_version=served.version,
                             fallback=fallback)


def similar_items(bundle: Bundle, req: SimilarItemsRequest) -> SimilarItemsResponse:
    served = bundle.model("recommender")
    rec: RecommenderAdapter = served.model
    mask = _allowed(rec, bundle.resources, req.filters, [req.item_id])
    i = rec.item_row.get(req.item_id)
    if i is None:
        return SimilarItemsResponse(item_id=req.item_id, items=_popular(rec, req.k, mask), model=served.name,
                                    model_version=served.version, fallback="unknown_item")
    want = req.k if mask is None else min(len(rec.item_ids), req.k * 4 + 10)
    ids, scores = rec.model.similar_items(np.array([i]), k=min(want, len(rec.item_ids) - 1))
    ids, scores = np.asarray(ids).reshape(-1), np.asarray(scores).reshape(-1)
    if mask is not None:
        keep = (ids >= 0) & mask[np.where(ids >= 0, ids, 0)]
        ids, scores = ids[keep], scores[keep]
    items = _items(rec, ids, scores, req.k)
    if len(items) < req.k:  # pad a narrow filter's answer with popular items that pass it
        items += _popular(rec, req.k - len(items), mask, {rec.item_row[x.item_id] for x in items} | {i})
    return SimilarItemsResponse(item_id=req.item_id, items=items, model=served.name, model_version=served.version)


# ---- scores and profiles -----------------------------------------------------------------------


def _features(bundle: Bundle) -> Any:
    res: Resources | None = bundle.resources
    if res is None or res.features is None:
        raise NotLoaded("customer features are not loaded (features/customer_features.parquet missing)")
    return res


def score(bundle: Bundle, req: ScoreRequest) -> ScoreResponse:
    models = {kind: bundle.model(kind) for kind in dict.fromkeys(req.models)}
    res = _features(bundle)
    feats = res.features
    one_ids = [res.resolve(i) for i in req.ids]
    rows = [feats.row.get(o) if o is not None else None for o in one_ids]
    have = [j for j, r in enumerate(rows) if r is not None]
    preds: list[dict[str, Prediction]] = [{} for _ in req.ids]
    if have:
        sub = feats.matrix[np.array([rows[j] for j in have])]
        for kind, served in models.items():
            adapter: PredictorAdapter = served.model
            s = adapter.predict(sub[:, adapter.columns_in(feats)])
            tags, top = adapter.tags(s), adapter.score_of(s)
            for n, j in enumerate(have):
                preds[j][kind] = Prediction(score=float(top[n]), tag=tags[n])
    results = [ScoreRow(one_id=o, found=o is not None, predictions=p) for o, p in zip(one_ids, preds)]
    return ScoreResponse(results=results, models={k: m.version for k, m in models.items()})


def _plain(v: Any) -> Any:
    if v is None or isinstance(v, (str, bool, int, float)):
        return None if isinstance(v, float) and v != v else v
    if isinstance(v, np.generic):
        return _plain(v.item())
    return str(v)


def profile(bundle: Bundle, id_: str) -> ProfileResponse:
    res: Resources | None = bundle.resources
    if res is None or res.identity is None:
        raise NotLoaded("identity data is not loaded (identity/golden.parquet missing)")
    one_id = res.resolve(id_)
    if one_id is None:
        raise NotFound("no customer matches this identifier")
    ident = res.identity
    g = ident.golden_row.get(one_id)
    attrs = {c: _plain(col[g]) for c, col in ident.golden_cols.items()} if g is not None else {}
    tags: list[Tag] = []
    f = res.features
    if f is not None and one_id in f.row:
        r = f.row[one_id]
        tags += [Tag(name=t, value=_plain(f.tags[t][r]), source="rule", updated_at=f.as_of) for t in f.tag_columns]
    tags += [Tag(**t, ) for t in (dict(t, value=_plain(t["value"])) for t in res.predicted.get(one_id, []))]
    behaviour = {k: _plain(v) for k, v in res.behaviour.get(one_id, {}).items()}
    return ProfileResponse(one_id=one_id, attributes=attrs, tags=tags, behaviour=behaviour)


__all__ = ["TAG_NAMES", "load_model", "load_resources", "prepare", "readiness", "recommend", "similar_items",
           "score", "profile"]
