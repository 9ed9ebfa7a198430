"""Request and response models of the HTTP API (the OpenAPI page is built from them).

Every request model forbids unknown fields, so a typo such as ``{"filters":
{"categroy": ...}}`` is a 400 naming the field instead of a silently ignored
filter, and hides its input in validation errors so an identifier a caller sent
(it may be a phone number or an email) never reaches an error message or a log.
Examples are filled in so the OpenAPI page can be tried as it is.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints, model_validator

from features.audience_lookalike import REACH_PERCENT  # 1-10%: what ad platforms offer
from models.lookalike import METHODS as LOOKALIKE_METHODS

MAX_K = 1000  # largest k accepted by /recommend and /similar_items
MAX_IDS = 1000  # largest id list accepted by /score
MAX_SEEDS = 100_000  # largest explicit seed list accepted by /lookalike
MAX_ID_LEN = 256  # identifiers longer than this are rejected, not truncated
PREDICTORS = ("churn", "ltv", "propensity")
# an identifier or name inside a list: the same bounds as a single one (a 10 MB "id" is a 400, not a lookup)
Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LEN)]

class Strict(BaseModel):
    """Base of every request: unknown fields are errors; inputs never echoed in errors.

    Numbers and flags are strict (``StrictInt``, ``StrictBool``): ``"k": true`` or ``"k": "5"`` is a 400,
    not a silent 1 or 5.
    """

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


# ---- recommendations ---------------------------------------------------------------------------


# the recommender bundle's ItemFilters (models.recommenders.serving) names three fields otherwise: a caller who
# read the Python API may send those names, so they are accepted too (one of the two names per field)
FILTER_ALIASES = {"categories": "categories_allow", "exclude_categories": "categories_deny", "in_stock": "in_stock_only"}


class ItemFilters(Strict):
    """Business filters; an item must pass all that are given."""

    categories: list[Id] | None = Field(None, max_length=1000, validation_alias=AliasChoices(
        "categories", "categories_allow"), description="allowed categories (unknown ones are a 400); "
        "also accepted as categories_allow")
    exclude_categories: list[Id] | None = Field(None, max_length=1000, validation_alias=AliasChoices(
        "exclude_categories", "categories_deny"), description="denied categories (unknown ones are a 400); "
        "also accepted as categories_deny")
    price_min: float | None = Field(None, ge=0)
    price_max: float | None = Field(None, ge=0)
    in_stock: StrictBool | None = Field(None, validation_alias=AliasChoices("in_stock", "in_stock_only"),
                                        description="true: only items in stock; also accepted as in_stock_only")
    launched_after: dt.date | None = None
    launched_before: dt.date | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_name(cls, data: object) -> object:
        both = [f"{n} and {a}" for n, a in FILTER_ALIASES.items() if isinstance(data, dict) and n in data and a in data]
        if both:
            raise ValueError(f"{both[0]} are the same filter: give one of them")
        return data

    @model_validator(mode="after")
    def _ranges(self) -> "ItemFilters":
        if self.price_min is not None and self.price_max is not None and self.price_min > self.price_max:
            raise ValueError("price_min must not exceed price_max")
        if self.launched_after and self.launched_before and self.launched_after > self.launched_before:
            raise ValueError("launched_after must not be later than launched_before")
        return self


class RecommendRequest(Strict):
    user_id: str = Field(min_length=1, max_length=MAX_ID_LEN, examples=["OID0000000001"],
                         description="one_id or any source identifier (member id, app id, ...)")
    k: StrictInt = Field(10, ge=1, le=MAX_K, description="number of items (1..1000)")
    filters: ItemFilters | None = None
    exclude: list[Id] = Field(default_factory=list, max_length=MAX_K, description="item ids never to return")
    exclude_seen: StrictBool = Field(True, description="drop items the customer already interacted with")
    recent_items: list[Id] = Field(default_factory=list, max_length=200,
                                    description="items the customer touched since the model was trained")


class ScoredItem(BaseModel):
    item_id: str
    score: float


class RecommendResponse(BaseModel):
    one_id: str | None = Field(description="the resolved customer; null when the id is unknown")
    items: list[ScoredItem]
    model: str
    model_version: str
    fallback: str | None = Field(None, description="null, 'cold_start', 'unknown_user' or 'shared_identifier' "
                                                   "(an identifier several people share: nobody's history is used)")
    source: str = Field("history", description="how the list was made: history, segment (cold start) or popular")


class SimilarItemsRequest(Strict):
    item_id: str = Field(min_length=1, max_length=MAX_ID_LEN, examples=["I000001"])
    k: StrictInt = Field(10, ge=1, le=MAX_K)
    filters: ItemFilters | None = None


class SimilarItemsResponse(BaseModel):
    item_id: str
    items: list[ScoredItem]
    model: str
    model_version: str
    fallback: str | None = Field(None, description="null or 'unknown_item' (popular items instead)")


# ---- audiences and lookalike --------------------------------------------------------------------


class LookalikeRequest(Strict):
    """Exactly one of ``audience_id``, ``ids`` or ``rule`` names the seed."""

    audience_id: str | None = Field(None, min_length=1, max_length=MAX_ID_LEN, description="a saved audience")
    ids: list[Id] | None = Field(None, min_length=1, max_length=MAX_SEEDS, description="explicit seed ids")
    rule: str | None = Field(None, min_length=1, max_length=4000, examples=['tag_lifecycle_stage == "active"'],
                             description="an audience rule over tags and features")
    reach: StrictInt | str = Field(1000, description="a count (e.g. 5000) or 1-10% of the eligible population ('5%')")
    filter: str | None = Field(None, min_length=1, max_length=4000, description="eligibility rule for the expansion")
    method: Literal[LOOKALIKE_METHODS] = Field(  # type: ignore[valid-type]
        "auto", description="auto (by seed size), items (co-occurrence ridge), centroid or knn (embeddings), "
        "pu (classifier); one the served model was not fitted for is a 400")
    page_size: StrictInt = Field(100, ge=1, le=MAX_K, description="members returned in this response")

    @model_validator(mode="after")
    def _one_seed(self) -> "LookalikeRequest":
        given = [n for n in ("audience_id", "ids", "rule") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one seed: audience_id, ids or rule (got {given or 'none'})")
        if isinstance(self.reach, str):
            text = self.reach.strip()
            lo, hi = REACH_PERCENT
            ok = text.endswith("%") and text[:-1].strip().replace(".", "", 1).isdigit()
            if not ok or not lo <= float(text[:-1]) <= hi:
                raise ValueError(f"reach must be a positive count or a percentage from {lo:g}% to {hi:g}% such as '5%'")
        elif self.reach < 1:
            raise ValueError("reach must be at least 1")
        return self


class Member(BaseModel):
    one_id: str
    score: float | None = None
    percentile: float | None = None


class TgiRow(BaseModel):
    """One trait (column=value) with its share in the seed, the expansion and the population; TGI = 100 x ratio."""

    tag: str
    seed_share: float | None = None
    audience_share: float
    population_share: float
    tgi: float = Field(description="expansion share / population share x 100")
    seed_tgi: float | None = None


class LookalikeResponse(BaseModel):
    audience_id: str
    size: int
    members: list[Member]
    explanation: list[TgiRow]
    method: str
    model: str
    model_version: str
    lookalike_tags: str | None = None  # how the members' lookalike_audiences predicted tag was written to Feast


class AudienceDeleted(BaseModel):
    audience_id: str
    deleted: bool = True
    lookalike_tags: str | None = Field(None, description="a lookalike audience: how its name left the members' "
                                                         "lookalike_audiences predicted tag in Feast")


class MembersPage(BaseModel):
    audience_id: str
    page: int
    page_size: int
    total: int
    members: list[Member]
    note: str | None = Field(None, description="an empty audience: says so and why, as far as its metadata tells")


# ---- scores, profiles, tags ---------------------------------------------------------------------


class ScoreRequest(Strict):
    ids: list[Id] = Field(min_length=1, max_length=MAX_IDS, examples=[["OID0000000001"]],
                           description="one_ids or source identifiers (1..1000)")
    models: list[Literal["churn", "ltv", "propensity"]] | None = Field(
        None, min_length=1, max_length=3,
        description="models to score; default: every model that has a champion")


class Prediction(BaseModel):
    score: float
    tag: str | None = Field(None, description="the predicted tag: churn tier, LTV tier, propensity decile")
    detail: dict[str, float] | None = Field(None, description="every output of a several-output model "
                                                               "(e.g. propensity per category)")


class ScoreRow(BaseModel):
    one_id: str | None = Field(description="null when the id is unknown or shared")
    found: bool
    reason: Literal["unknown_id", "shared_identifier", "no_features"] | None = Field(
        None, description="why nothing was scored: an unknown id, an identifier several people share "
                          "(a family phone, a store device: it names no one person), or no feature row")
    predictions: dict[str, Prediction] = Field(description="per model; empty for unknown ids")


class ScoreResponse(BaseModel):
    results: list[ScoreRow] = Field(description="one row per requested id, in request order")
    models: dict[str, str] = Field(description="model -> version used")


class Tag(BaseModel):
    name: str
    value: str | float | int | bool | None
    source: str = Field(description="'rule', 'model' or 'lookalike' (lookalike_audiences: the audiences that found them)")
    model: str | None = None
    version: str | None = None
    updated_at: str | None = None


class ProfileResponse(BaseModel):
    one_id: str
    attributes: dict[str, str | float | int | bool | None]
    tags: list[Tag]
    behaviour: dict[str, float | int | str | None]


class WritebackRequest(Strict):
    models: list[Literal["churn", "ltv", "propensity"]] | None = Field(
        None, min_length=1, max_length=3,
        description="models to score; default: every model that has a champion (as `portrait score`)")
    date: dt.date | None = Field(None, description="scoring date; default today (UTC)")
    force: StrictBool = Field(False, description="rewrite a batch already written for this model version and date")


class WritebackBatch(BaseModel):
    model: str
    version: str
    date: dt.date
    rows: int
    status: str = Field(description="'written' or 'skipped' (already written for this version and date)")
    scored_at: str
    note: str | None = Field(None, description="why a batch was skipped and how to rewrite it (`\"force\": true`)")
    feast: str = Field(description="Feast push status: 'pushed', or why it was skipped or failed")


class WritebackResponse(BaseModel):
    batches: list[WritebackBatch]


class ReloadResponse(BaseModel):
    changed: list[str] = Field(description="models whose version changed in this worker")
    models: dict[str, str] = Field(description="model -> version now served")
    generation: int


class Empty(Strict):
    """The body of the endpoints that take nothing (``/noop``, ``/admin/reload``, ``/admin/memory``): ``{}`` or
    no body; any field is a 400 naming it, as on every other endpoint (a typo is never silently ignored)."""


class NoopResponse(BaseModel):
    """The no-op's answer: a pydantic model like every endpoint's, so the baseline pays the same framework path."""

    ok: bool = True
