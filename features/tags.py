"""Rule tags: lifecycle stage, RFM segment, AIPL stage, value tier, high potential and more.

Tags are SQL expressions over the customer features of one cutoff (:func:`tag_sql`), so they
are as point-in-time correct as the features. Thresholds live in :class:`TagConfig` with their
defaults; those marked "None = population" are computed per cutoff over the customers who bought
in the 365 days before it (a threshold never looks past its cutoff either). Every tag column is
described in ``features/tag_catalog.yaml`` (:func:`load_catalog`), together with the predicted
tags the models write back through Feast.

Definitions (defaults):

- ``tag_lifecycle_stage``: ``new`` if first seen <= 30 days before the cutoff; else ``active`` if the
  last event or order is <= 30 days old; ``dormant`` if <= 180 days; else ``churned``.
- ``tag_rfm_segment``: R high = recency_days < R threshold, F high = frequency_365d > F threshold,
  M high = monetary_365d > M threshold (thresholds: the buyers' mean, as in the classic RFM model);
  the 8 segments are named as in the Chinese RFM model (重要价值 important_value = RFM high,
  ...); customers without an order in 365 days get ``no_purchase``.
- ``tag_aipl_stage``: ``loyal`` = 3+ orders in 365 d; ``purchase`` = 1+ order in 365 d; ``interest`` =
  in 90 d a cart or favorite, or 3+ views/clicks, or 2+ searches; ``aware`` = any event in 90 d; else ``none``.
- ``tag_value_tier``: among 365-day buyers, ``high`` = top 10% by monetary_365d, ``mid`` = next 30%,
  ``low`` = the rest; ``none`` without orders.
- ``tag_high_potential``: 3+ views and 1+ add_to_cart in 90 days, no order in 90 days.
- ``tag_price_sensitive``: 2+ orders in 365 d and discount_share_365d >= 0.5.
- ``tag_night_owl``: activity_365d >= 10 and night_share + late_night_share >= 0.3.
- ``tag_age_band``: <25, 25-34, 35-44, 45-54, 55+, unknown.
- ``tag_top_category``: top_category when top_category_share >= 0.3.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CATALOG = Path(__file__).resolve().parent / "tag_catalog.yaml"
TAG_TYPES = ("attribute", "behaviour", "interest", "value", "lifecycle", "predicted")

# (R high, F high, M high) -> segment name (the classic 8 RFM segments)
RFM_SEGMENTS = {
    (1, 1, 1): "important_value", (1, 0, 1): "important_develop", (0, 1, 1): "important_retain",
    (0, 0, 1): "important_winback", (1, 1, 0): "general_value", (1, 0, 0): "general_develop",
    (0, 1, 0): "general_retain", (0, 0, 0): "general_winback",
}


@dataclass(frozen=True)
class TagConfig:
    new_days: int = 30  # lifecycle: first seen at most this many days before the cutoff -> new
    active_days: int = 30  # lifecycle: last event/order at most this old -> active
    dormant_days: int = 180  # lifecycle: at most this old -> dormant; older or never -> churned
    rfm_r_days: float | None = None  # R high if recency_days < this; None = buyers' mean at the cutoff
    rfm_f_orders: float | None = None  # F high if frequency_365d > this; None = buyers' mean
    rfm_m_amount: float | None = None  # M high if monetary_365d > this; None = buyers' mean
    loyal_min_orders: int = 3  # AIPL loyal: orders in 365 days
    interest_min_views: int = 3  # AIPL interest: views + clicks in 90 days (or any cart/favorite)
    interest_min_searches: int = 2  # AIPL interest: searches in 90 days
    value_high_quantile: float = 0.9  # value tier high: monetary_365d at or above this buyers' quantile
    value_mid_quantile: float = 0.6  # value tier mid: at or above this quantile (below high)
    value_high_amount: float | None = None  # fixed amount instead of the high quantile
    value_mid_amount: float | None = None  # fixed amount instead of the mid quantile
    potential_min_views: int = 3  # high potential: views in 90 days
    potential_min_carts: int = 1  # high potential: add_to_cart events in 90 days (and no order in 90 days)
    price_min_orders: int = 2  # price sensitive: orders in 365 days
    price_min_share: float = 0.5  # price sensitive: share of discounted/coupon orders
    night_min_activity: int = 10  # night owl: events + orders in 365 days
    night_min_share: float = 0.3  # night owl: share after 21:00 or before 06:00
    interest_min_share: float = 0.3  # top-category interest tag: minimum affinity share


def _num(value: float | None, default_sql: str) -> str:
    return repr(float(value)) if value is not None else default_sql


def tag_sql(cfg: TagConfig = TagConfig()) -> tuple[str, dict[str, str]]:
    """``(thr CTE, {tag column: SQL expression})`` over a CTE ``f`` of features with a ``cutoff`` column."""
    buyers = "FILTER (WHERE frequency_365d > 0)"
    thr = (
        f"thr AS (SELECT cutoff, avg(recency_days) {buyers} r_thr, avg(frequency_365d) {buyers} f_thr, "
        f"avg(monetary_365d) {buyers} m_thr, quantile_cont(monetary_365d, {cfg.value_high_quantile}) {buyers} v_high, "
        f"quantile_cont(monetary_365d, {cfg.value_mid_quantile}) {buyers} v_mid FROM f GROUP BY cutoff)"
    )
    r_hi = f"(f.recency_days < {_num(cfg.rfm_r_days, 'thr.r_thr')})::INT"
    f_hi = f"(f.frequency_365d > {_num(cfg.rfm_f_orders, 'thr.f_thr')})::INT"
    m_hi = f"(f.monetary_365d > {_num(cfg.rfm_m_amount, 'thr.m_thr')})::INT"
    rfm_whens = " ".join(f"WHEN {r * 4 + fr * 2 + m} THEN '{name}'" for (r, fr, m), name in RFM_SEGMENTS.items())
    v_high = _num(cfg.value_high_amount, "thr.v_high")
    v_mid = _num(cfg.value_mid_amount, "thr.v_mid")
    cols = {
        "tag_lifecycle_stage": (
            f"CASE WHEN f.tenure_days <= {cfg.new_days} THEN 'new' "
            f"WHEN f.days_since_last_activity <= {cfg.active_days} THEN 'active' "
            f"WHEN f.days_since_last_activity <= {cfg.dormant_days} THEN 'dormant' ELSE 'churned' END"),
        "tag_rfm_segment": (
            f"CASE WHEN f.frequency_365d = 0 THEN 'no_purchase' "
            f"ELSE CASE coalesce({r_hi}, 0) * 4 + coalesce({f_hi}, 0) * 2 + coalesce({m_hi}, 0) {rfm_whens} END END"),
        "tag_aipl_stage": (
            f"CASE WHEN f.frequency_365d >= {cfg.loyal_min_orders} THEN 'loyal' "
            "WHEN f.frequency_365d >= 1 THEN 'purchase' "
            f"WHEN f.n_add_to_cart_90d + f.n_favorite_90d >= 1 OR f.n_view_90d + f.n_click_90d >= {cfg.interest_min_views} "
            f"OR f.n_search_90d >= {cfg.interest_min_searches} THEN 'interest' "
            "WHEN f.events_90d >= 1 THEN 'aware' ELSE 'none' END"),
        "tag_value_tier": (
            f"CASE WHEN f.frequency_365d = 0 THEN 'none' WHEN f.monetary_365d >= {v_high} THEN 'high' "
            f"WHEN f.monetary_365d >= {v_mid} THEN 'mid' ELSE 'low' END"),
        "tag_high_potential": (
            f"(f.n_view_90d >= {cfg.potential_min_views} AND f.n_add_to_cart_90d >= {cfg.potential_min_carts} "
            "AND f.frequency_90d = 0)"),
        "tag_price_sensitive": (
            f"(f.frequency_365d >= {cfg.price_min_orders} AND f.discount_share_365d >= {cfg.price_min_share})"),
        "tag_night_owl": (
            f"(f.activity_365d >= {cfg.night_min_activity} "
            f"AND f.night_share + f.late_night_share >= {cfg.night_min_share})"),
        "tag_age_band": (
            "CASE WHEN f.age IS NULL THEN 'unknown' WHEN f.age < 25 THEN '<25' WHEN f.age < 35 THEN '25-34' "
            "WHEN f.age < 45 THEN '35-44' WHEN f.age < 55 THEN '45-54' ELSE '55+' END"),
        "tag_top_category": f"CASE WHEN f.top_category_share >= {cfg.interest_min_share} THEN f.top_category END",
    }
    return thr, cols


def load_tag_config(path: Path) -> TagConfig:
    """A :class:`TagConfig` from a YAML mapping of field: value; ``ValueError`` naming the file and a bad key."""
    import yaml
    from dataclasses import fields

    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of TagConfig fields, e.g. 'dormant_days: 120'")
    known = {f.name for f in fields(TagConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{path}: unknown tag threshold(s) {unknown}; known: {sorted(known)}")
    bad = [k for k, v in data.items() if v is not None and not isinstance(v, (int, float))]
    if bad:
        raise ValueError(f"{path}: threshold(s) {bad} must be numbers")
    negative = [k for k, v in data.items() if v is not None and v < 0]
    if negative:  # a negative day count or amount silently tags everyone (or no one)
        raise ValueError(f"{path}: threshold(s) {negative} must be 0 or more")
    over = [k for k, v in data.items() if v is not None and k.endswith(("_share", "_quantile")) and v > 1]
    if over:
        raise ValueError(f"{path}: threshold(s) {over} are shares: between 0 and 1")
    return TagConfig(**data)


def load_catalog(path: Path = CATALOG) -> list[dict]:
    """The tag catalog entries; ``ValueError`` naming the file and entry when one is malformed."""
    import yaml

    data = yaml.safe_load(Path(path).read_text())
    entries = data.get("tags") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a top-level 'tags' list")
    need = ("name", "type", "definition", "source", "owner", "version")
    for i, e in enumerate(entries):
        missing = [k for k in need if not isinstance(e, dict) or k not in e]
        if missing:
            raise ValueError(f"{path}: tag #{i} ({e.get('name') if isinstance(e, dict) else e!r}) lacks {missing}")
        if e["type"] not in TAG_TYPES:
            raise ValueError(f"{path}: tag {e['name']!r}: type {e['type']!r} not one of {list(TAG_TYPES)}")
        if e["source"] not in ("rule", "model"):
            raise ValueError(f"{path}: tag {e['name']!r}: source must be rule or model, got {e['source']!r}")
    return entries
