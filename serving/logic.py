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

from serving.adapters import TAG_NAMES, PredictorAdapter, recommender_bundle
from serving.config import ServeConfig
from serving.errors import BadRequest, Conflict, NotFound, NotLoaded
from serving.loader import Bundle, Loader, ServedModel, load_pyfunc
from serving.resources import Resources
from serving.resources import load_resources as _load_resources
from serving.schemas import (
    ItemFilters, ProfileResponse, RecommendRequest, RecommendResponse, ScoredItem, ScoreRequest, ScoreResponse,
    SimilarItemsRequest, SimilarItemsResponse, Tag,
)

PREDICTORS = ("churn", "ltv", "propensity")


def load_model(kind: str, uri: str) -> Any:
    """Load one registry version and adapt it to what the endpoints call."""
    # this installation's ``models`` package (the one serving is tested with) unpickles the model, not the copy
    # MLflow ships beside it (code_paths, for processes without portrait): it has the one-customer fast paths
    import models.recommenders.serving  # noqa: F401

    obj = load_pyfunc(kind, uri)
    if kind == "recommender":
        bundle = recommender_bundle(obj)
        if hasattr(bundle, "prepare_serving"):
            bundle.prepare_serving()  # raw arrays + the model's query weights, checked against the general path
        return bundle
    if kind in PREDICTORS:
        return PredictorAdapter.from_model(kind, obj)
    if kind == "lookalike":  # the audience area's LookalikePopulation
        population = getattr(obj, "population", None)
        if population is None:
            raise TypeError("the lookalike pyfunc holds no population (expected python_model.population)")
        return population
    return obj


def load_resources(config: ServeConfig, previous: Any) -> Resources:
    return _load_resources(config, previous)


def prepare(models: dict[str, ServedModel], resources: Resources | None) -> None:
    """Fit each predictor's tag cut points on the current population (once per version and snapshot)."""
    feats = resources.features if resources is not None else None
    if feats is None:
        return
    for kind in PREDICTORS:
        if kind in models:
            models[kind].model.prepare(feats, id(feats))


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

SEGMENT_SOURCES = {"age_band": "tag_age_band", "gender": "gender", "city": "city",
                   "lifecycle": "tag_lifecycle_stage"}  # cold-start profile field -> golden/tag column
FALLBACK = {"history": None, "segment": "cold_start", "popular": "cold_start"}


def _filters(f: ItemFilters | None, exclude: list[str], catalog: Any = None) -> Any:
    """The request's filters as the recommender bundle's ``ItemFilters`` (None when nothing is filtered).

    A category no item has is a 400 naming it: ``exclude_categories: ["alchohol"]`` must not
    let every alcohol item through, nor ``categories: ["skincar"]`` answer an empty list.
    """
    from models.recommenders.serving import ItemFilters as BundleFilters

    given = f.model_dump(exclude_none=True) if f is not None else {}
    if not given and not exclude:
        return None
    f = f or ItemFilters()
    for field in ("categories", "exclude_categories"):
        names = getattr(f, field)
        unknown = catalog.unknown_categories(names) if names and catalog is not None else []
        if unknown:
            known = sorted(catalog.known_categories())
            shown = ", ".join(known[:20]) + (f" ... ({len(known)} in all)" if len(known) > 20 else "")
            raise BadRequest(f"filters.{field}: no item has category {', '.join(repr(u) for u in unknown[:5])}"
                             f" (the catalogue's categories: {shown or 'none'})")
    day = lambda d: d.isoformat() if d is not None else None  # noqa: E731
    return BundleFilters(
        categories_allow=tuple(f.categories) if f.categories is not None else None,
        categories_deny=tuple(f.exclude_categories) if f.exclude_categories else None,
        price_min=f.price_min, price_max=f.price_max, in_stock_only=bool(f.in_stock),
        launched_after=day(f.launched_after), launched_before=day(f.launched_before), exclude_items=tuple(exclude))


def _profile_fields(res: Resources | None, one_id: str | None) -> dict[str, Any] | None:
    """The cold-start profile (age band, gender, city, lifecycle) of a known customer."""
    if res is None or one_id is None:
        return None
    out: dict[str, Any] = {}
    ident, feats = res.identity, res.features
    g = ident.golden_row.get(one_id) if ident is not None else None
    r = feats.row.get(one_id) if feats is not None else None
    for field, col in SEGMENT_SOURCES.items():
        if g is not None and col in ident.golden_cols:
            out[field] = _plain(ident.golden_cols[col][g])
        elif r is not None and col in feats.tags:
            out[field] = _plain(feats.tags[col][r])
    return out or None


def recommend(bundle: Bundle, req: RecommendRequest) -> RecommendResponse:
    served = bundle.model("recommender")
    rec = served.model  # models.recommenders.serving.RecommenderBundle
    res: Resources | None = bundle.resources
    one_id, why = _person(res, req.user_id)
    if one_id is None and why is None and _known(rec, req.user_id):  # identity not loaded: model ids work
        one_id = req.user_id
    recent = [(i, "view", None) for i in req.recent_items]
    got = rec.recommend(one_id, k=req.k, filters=_filters(req.filters, req.exclude, rec.catalog), recent=recent,
                        profile=lambda: _profile_fields(res, one_id), exclude_seen=req.exclude_seen)
    source = rec.last_source
    fallback = (why or "unknown_user") if one_id is None else FALLBACK.get(source, "cold_start")
    # one validation call over plain dicts (pydantic's core builds the nested items; measured the cheapest)
    return RecommendResponse.model_validate({
        "one_id": one_id, "items": [{"item_id": i, "score": s} for i, s in got], "model": served.name,
        "model_version": served.version, "fallback": fallback, "source": source})


def _person(res: Resources | None, identifier: str) -> tuple[str | None, str | None]:
    """(one_id, None) for an identifier of one person; (None, "shared_identifier") for one several share.

    A kiosk's device id or a family phone names no one person: answering with its latest user would
    hand that shopper's scores or history to whoever holds the device, so it is answered as nobody.
    """
    if res is None or res.identity is None:
        return None, None
    from features.identity.index import SharedIdentifier

    try:
        return res.resolve(identifier, personal=True), None
    except SharedIdentifier:
        return None, "shared_identifier"


def _known(rec: Any, user_id: str) -> bool:
    if hasattr(rec, "user_position"):
        return rec.user_position(user_id) >= 0
    return rec.users.get_indexer([user_id])[0] >= 0


def similar_items(bundle: Bundle, req: SimilarItemsRequest) -> SimilarItemsResponse:
    served = bundle.model("recommender")
    rec = served.model
    f = _filters(req.filters, [], rec.catalog)
    try:
        got, fallback = rec.similar_items(req.item_id, k=req.k, filters=f), None
    except KeyError:  # an item the model has never seen: popular items instead
        got, fallback = rec.recommend_cold(None, k=req.k, filters=f), "unknown_item"
    return SimilarItemsResponse(item_id=req.item_id, items=[ScoredItem(item_id=i, score=s) for i, s in got],
                                model=served.name, model_version=served.version, fallback=fallback)


# ---- scores and profiles -----------------------------------------------------------------------


def _features(bundle: Bundle) -> Any:
    res: Resources | None = bundle.resources
    if res is None or res.features is None:
        raise NotLoaded("customer features are not loaded (features/customer_features.parquet missing)")
    return res


def score(bundle: Bundle, req: ScoreRequest) -> ScoreResponse:
    models = {kind: bundle.model(kind) for kind in bundle.default_kinds(req.models)}
    res = _features(bundle)
    if res.store is not None or res.store_error is not None:
        return _score_online(res, req, models)
    feats = res.features
    people = [_person(res, i) for i in req.ids]
    one_ids = [o for o, _ in people]
    rows = [feats.row.get(o) if o is not None else None for o in one_ids]
    have = [j for j, r in enumerate(rows) if r is not None]
    preds: list[dict[str, dict]] = [{} for _ in req.ids]
    if have:
        idx = np.array([rows[j] for j in have])
        for kind, served in models.items():
            adapter: PredictorAdapter = served.model
            s, keys = adapter.score_rows(feats, idx)
            tags, top, detail = adapter.tags(s, keys), adapter.score_of(s).tolist(), adapter.detail(s)
            for n, j in enumerate(have):
                preds[j][kind] = {"score": top[n], "tag": tags[n], "detail": detail[n]}
    # one validation call over plain dicts (pydantic's core builds the nested models; measured the cheapest)
    return ScoreResponse.model_validate({
        "results": [{"one_id": o, "found": r is not None, "predictions": p, "reason": _reason(o, why, r is not None)}
                    for (o, why), r, p in zip(people, rows, preds)],
        "models": {k: m.version for k, m in models.items()}})


def _reason(one_id: str | None, why: str | None, found: bool) -> str | None:
    if found:
        return None
    return why or ("unknown_id" if one_id is None else "no_features")


def _score_online(res: Resources, req: ScoreRequest, models: dict[str, ServedModel]) -> ScoreResponse:
    """``/score`` on features read from Feast's online store for this request (see ``serving.online``)."""
    from serving.online import StoreUnavailable, online_rows, present, score_rows

    if res.store is None:
        raise NotLoaded(f"Feast online store could not be opened for /score ({res.store_error})")
    people = [_person(res, i) for i in req.ids]
    one_ids = [o for o, _ in people]
    known = list(dict.fromkeys(o for o in one_ids if o is not None))
    preds: dict[str, dict[str, dict]] = {o: {} for o in known}
    if known:
        try:
            reads = online_rows(res.store, res.services, list(models), known)
        except StoreUnavailable as exc:
            raise NotLoaded(f"Feast online store not ready for /score: {exc}") from None
        snapshot = res.features.frame
        for kind, served in models.items():
            adapter: PredictorAdapter = served.model
            values = reads[kind]
            rows = present(values, adapter.feature_names, len(known))
            if not rows:
                continue
            s, keys = score_rows(adapter, values, rows, snapshot)
            tags, top, detail = adapter.tags(s, keys), adapter.score_of(s).tolist(), adapter.detail(s)
            for n, r in enumerate(rows):
                preds[known[r]][kind] = {"score": top[n], "tag": tags[n], "detail": detail[n]}
    return ScoreResponse.model_validate({
        "results": [{"one_id": o, "found": bool(o is not None and preds.get(o)),
                     "predictions": preds.get(o, {}) if o is not None else {},
                     "reason": _reason(o, why, bool(o is not None and preds.get(o)))} for o, why in people],
        "models": {k: m.version for k, m in models.items()}})


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
    from features.identity.index import SharedIdentifier

    try:
        one_id = res.resolve(id_, personal=True)
    except SharedIdentifier as exc:  # a kiosk's device id must not show its last shopper's profile
        raise Conflict(f"{exc}: it names no one person; ask by one_id or by an identifier of one person") from None
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
    if one_id in res.lookalike:  # as Feast's predicted_tags carries it: found as a lookalike in these audiences
        tags.append(Tag(name="lookalike_audiences", value=res.lookalike[one_id], source="lookalike"))
    behaviour = {k: _plain(v) for k, v in res.behaviour.get(one_id, {}).items()}
    return ProfileResponse(one_id=one_id, attributes=attrs, tags=tags, behaviour=behaviour)


__all__ = ["TAG_NAMES", "load_model", "load_resources", "prepare", "readiness", "recommend", "similar_items",
           "score", "profile"]
