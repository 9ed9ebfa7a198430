"""The portrait BentoML service: one deployable, thin endpoints over plain functions.

Run it with ``portrait serve`` (which sets the environment from the project
settings and prints curl examples) or directly::

    PORTRAIT_DATA_DIR=data bentoml serve serving.service:Portrait --port 3000

POST endpoints are BentoML APIs with pydantic request models (unknown fields are
400s); GET endpoints that take a path parameter (``/profile/{id}``,
``/audiences/{id}/members``) live in a small FastAPI app mounted on the service
(``serving.routes``), so both appear on the OpenAPI page at ``/``. ``/healthz``
and ``/readyz`` are BentoML's own; readiness comes from :meth:`Portrait.__is_ready__`.
Business logic is in ``serving.logic`` and ``serving.writeback``; models come
from ``serving.loader`` and are swapped atomically on promotion.
"""

from __future__ import annotations

import bentoml
from fastapi import Path, Query
from starlette.responses import JSONResponse, StreamingResponse

from serving import audiences, logic, routes, runtime, writeback
from serving.auth import ApiKeyMiddleware
from serving.config import ServeConfig
from serving.errors import ServingError
from serving.guard import BodyGuardMiddleware, quiet_client_errors
from serving.loader import Loader
from serving.openapi import OpenApiMiddleware
from serving.schemas import (
    MAX_ID_LEN, MAX_K, AudienceDeleted, Empty, LookalikeRequest, LookalikeResponse, MembersPage, ProfileResponse, RecommendRequest,
    NoopResponse, RecommendResponse, ReloadResponse, ScoreRequest, ScoreResponse, SimilarItemsRequest, SimilarItemsResponse,
    WritebackRequest, WritebackResponse,
)

AnyId = Path(min_length=1, max_length=MAX_ID_LEN, description="one_id or any source identifier")


def _answer(fn, *args, **kwargs):  # noqa: ANN001, ANN202 - returns the endpoint's model or an error response
    try:
        return fn(*args, **kwargs)
    except ServingError as exc:
        return JSONResponse({"error": exc.message}, status_code=exc.status)


@bentoml.service(name="portrait", **runtime.SERVICE_CONFIG)
@bentoml.asgi_app(routes.app, path="/")
class Portrait:
    """Customer profiles (用户画像): recommendations, lookalike audiences, scores, tags and profiles."""

    def __init__(self) -> None:
        self.config = ServeConfig.from_env()
        quiet_client_errors()  # a 4xx is one INFO line, not an ERROR with a traceback
        runtime.configure_process(self.config)
        self.loader = Loader(self.config, load_model=logic.load_model, load_resources=logic.load_resources,
                             prepare=logic.prepare)
        self.loader.refresh()
        runtime.tune_worker(self.config)  # after the models are in memory: gc.freeze() and thresholds
        self.loader.on_change = lambda: runtime.refreeze(self.config)  # a hot-swapped model is frozen too
        self.loader.start()

    def __is_ready__(self) -> bool:
        return logic.readiness(self.loader)["ready"]

    @bentoml.on_shutdown
    def _stop_polling(self) -> None:
        self.loader.stop()

    @bentoml.api(route="/noop")
    async def noop(self, req: Empty = Empty(), /) -> NoopResponse:  # noqa: B008 - a frozen, field-less model
        """Does nothing: the latency baseline of this server (HTTP, routing, JSON) for the benchmarks."""
        return NoopResponse()

    @bentoml.api(route="/recommend")
    async def recommend(self, req: RecommendRequest, /) -> RecommendResponse:
        """Top-k items for a customer (any source id or one_id); cold start and unknown users fall back."""
        return _answer(logic.recommend, self.loader.bundle, req)

    @bentoml.api(route="/similar_items")
    async def similar_items(self, req: SimilarItemsRequest, /) -> SimilarItemsResponse:
        """Items most similar to an item (item page), with the same business filters."""
        return _answer(logic.similar_items, self.loader.bundle, req)

    @bentoml.api(route="/score")
    async def score(self, req: ScoreRequest, /) -> ScoreResponse:
        """Churn / LTV / propensity scores and predicted tags from the champion models."""
        return _answer(logic.score, self.loader.bundle, req)

    @routes.app.get("/profile/{id}", response_model=ProfileResponse)
    async def profile(self, id: str = AnyId) -> ProfileResponse:  # noqa: A002 - the route's name
        """The 360 view: golden-record attributes, current tags (rule and predicted), recent behaviour."""
        return logic.profile(self.loader.bundle, id)

    @routes.app.get("/audiences/{audience_id}/members", response_model=MembersPage)
    async def audience_members(self, audience_id: str = Path(min_length=1, max_length=MAX_ID_LEN),
                               page: int = Query(1, ge=1), page_size: int = Query(100, ge=1, le=MAX_K)) -> MembersPage:
        """One page of a saved audience's members, best score first."""
        return audiences.page(self.config.data_dir, audience_id, page, page_size)

    @routes.app.get("/audiences/{audience_id}/members.csv", response_class=StreamingResponse)
    async def audience_csv(self, audience_id: str = Path(min_length=1, max_length=MAX_ID_LEN)) -> StreamingResponse:
        """Every member of a saved audience as CSV (one_id,score,percentile) for channel upload."""
        chunks = audiences.csv_chunks(self.config.data_dir, audience_id)
        return StreamingResponse(chunks, media_type="text/csv",
                                 headers={"Content-Disposition": f'attachment; filename="{audience_id}.csv"'})

    @routes.app.delete("/audiences/{audience_id}", response_model=AudienceDeleted)
    def audience_delete(self, audience_id: str = Path(min_length=1, max_length=MAX_ID_LEN)) -> AudienceDeleted:
        """Delete a saved audience; a lookalike one leaves its members' lookalike_audiences tag (needs the API key)."""
        result = audiences.delete(self.config.data_dir, audience_id, self.config.feast_push, self.config.feast_redis)
        if result.lookalike_tags is not None:
            self.loader.refresh()  # this worker's /profile drops the audience at once
        return result

    @routes.app.get("/status")
    async def status(self) -> dict:
        """Models served (name, version, run), load errors and the worker's runtime knobs."""
        return {**logic.readiness(self.loader), "runtime": runtime.knobs()}

    @bentoml.api(route="/lookalike")
    def lookalike(self, req: LookalikeRequest, /) -> LookalikeResponse:
        """Expand a seed audience to similar customers; saves the result as an audience (needs the API key)."""
        result = _answer(audiences.lookalike, self.loader.bundle, req, self.config.data_dir, self.config.feast_push,
                         self.config.feast_redis)
        if isinstance(result, LookalikeResponse):
            self.loader.refresh()  # this worker's /profile shows the new lookalike_audiences at once
        return result

    @bentoml.api(route="/tags/writeback")
    def tags_writeback(self, req: WritebackRequest, /) -> WritebackResponse:
        """Score every customer with the champion models and write predicted tags (needs the API key)."""
        models = None if req.models is None else list(req.models)
        result = _answer(writeback.write_back, self.loader.bundle, self.config.data_dir, models, req.date,
                         req.force, self.config.feast_push, redis=self.config.feast_redis)
        if isinstance(result, list):
            self.loader.refresh()  # this worker's /profile shows the new tags at once (others on their next poll)
            return WritebackResponse(batches=result)
        return result

    @bentoml.api(route="/admin/memory")
    def admin_memory(self, req: Empty = Empty(), /) -> dict:  # noqa: B008
        """Collector and allocation state of this worker (tracked objects, gc stats, RSS, tracemalloc growth)."""
        return runtime.memory_report()

    @bentoml.api(route="/admin/reload")
    def admin_reload(self, req: Empty = Empty(), /) -> ReloadResponse:  # noqa: B008
        """Pick up newly promoted champions now, in every worker (needs the API key)."""
        self.loader.touch_marker()
        changed = self.loader.refresh()
        b = self.loader.bundle
        return ReloadResponse(changed=changed, models=b.versions(), generation=b.generation)


Portrait.add_asgi_middleware(ApiKeyMiddleware)  # first added is outermost: the key is checked first
Portrait.add_asgi_middleware(BodyGuardMiddleware)
Portrait.add_asgi_middleware(OpenApiMiddleware)  # /docs.json as the service behaves (keys, statuses)
