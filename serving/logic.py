"""What each endpoint does, as plain functions of (bundle, request) the tests call directly.

Work in progress: endpoints whose upstream pieces have not landed raise NotLoaded (503).
"""

from __future__ import annotations

from typing import Any

from serving.config import ServeConfig
from serving.errors import NotLoaded
from serving.loader import Bundle, Loader, load_pyfunc
from serving.schemas import (
    LookalikeRequest, RecommendRequest, ScoreRequest, SimilarItemsRequest, WritebackRequest,
)


def load_model(kind: str, uri: str) -> Any:
    return load_pyfunc(kind, uri)


def load_resources(config: ServeConfig, previous: Any) -> Any:
    return previous


def readiness(loader: Loader) -> dict[str, Any]:
    b = loader.bundle
    ready = loader.loaded_once and bool(b.models)
    return {"ready": ready, "generation": b.generation, "models": b.versions(), "errors": dict(b.errors)}


def recommend(bundle: Bundle, req: RecommendRequest) -> Any:
    bundle.model("recommender")
    raise NotLoaded("recommender serving is not wired yet")


def similar_items(bundle: Bundle, req: SimilarItemsRequest) -> Any:
    bundle.model("recommender")
    raise NotLoaded("recommender serving is not wired yet")


def score(bundle: Bundle, req: ScoreRequest) -> Any:
    for kind in req.models:
        bundle.model(kind)
    raise NotLoaded("scoring is not wired yet")


def lookalike(bundle: Bundle, req: LookalikeRequest, data_dir: Any) -> Any:
    bundle.model("lookalike")
    raise NotLoaded("lookalike serving is not wired yet")


def writeback(bundle: Bundle, req: WritebackRequest, config: ServeConfig) -> Any:
    for kind in req.models:
        bundle.model(kind)
    raise NotLoaded("write-back is not wired yet")


def profile(bundle: Bundle, id_: str) -> Any:
    raise NotLoaded("profiles are not wired yet")


def audience_page(bundle: Bundle, audience_id: str, page: int, page_size: int) -> Any:
    raise NotLoaded("audiences are not wired yet")


def audience_csv(bundle: Bundle, audience_id: str) -> Any:
    raise NotLoaded("audiences are not wired yet")
