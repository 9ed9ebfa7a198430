"""Build customer features, rule tags, item features and interactions as of one or more cutoffs.

``build(raw_dir, identity_dir, out_dir, cutoffs)`` (CLI: ``portrait features build --as-of DATE[,DATE]``)
stages the canonical tables once in DuckDB with integer keys, then computes, for every cutoff,
only from rows strictly **before** it (``ts < cutoff``), so a past date is reproduced exactly
and nothing that happens later can change a feature or a tag:

- ``<out>/customer_features.parquet``: ``one_id, event_timestamp`` (= cutoff) + ``CUSTOMER_COLUMNS``
  + one ``affinity_<category>`` per top category (:func:`customer_columns`); snapshots stacked;
- ``<out>/item_features.parquet``: ``item_id, event_timestamp`` + ``ITEM_COLUMNS``;
- ``<out>/interactions.parquet``: ``one_id, item_id, event_type, ts, weight`` before the last cutoff;
- ``<out>/meta.json``: cutoffs, categories, columns, row counts.

Timestamps are written as microsecond UTC (Feast's DuckDB offline store fails on nanoseconds).
Every file is written to a temporary name and renamed (atomic).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from features.build_inputs import CHANNELS, ET_CODES, Staged, stage  # noqa: F401  (re-exported)
from features.schema import SchemaError

KEYS = ("one_id", "event_timestamp")
ITEM_KEYS = ("item_id", "event_timestamp")
AFFINITY_PREFIX = "affinity_"


def _win(stem: str, dtype: str, what: str, windows: Sequence[int]) -> list[tuple[str, str, str]]:
    return [(f"{stem}_{w}d", dtype, f"{what} in the {w} days before the cutoff") for w in windows]


# (name, dtype, description): the customer feature and rule-tag columns, in file order (after the keys).
# dtypes: int64, float64, string, bool. NaN marks "undefined" (e.g. recency of a customer who never bought).
CUSTOMER_COLUMNS: list[tuple[str, str, str]] = [
    ("recency_days", "float64", "days from the last order to the cutoff (NaN: no order before the cutoff); "
     "here and below an order refunded in full before the cutoff is no order"),
    *_win("frequency", "int64", "orders", (30, 90, 365)),
    *_win("monetary", "float64", "net paid amount (purchases minus refunds, never below 0)", (30, 90, 365)),
    ("orders_total", "int64", "orders before the cutoff, all history"),
    ("monetary_total", "float64", "net paid amount before the cutoff (purchases minus refunds), all history"),
    ("aov_365d", "float64", "average order value over 365 days (0 without orders)"),
    *[c for t in ("view", "click", "search", "add_to_cart", "purchase") for c in _win(f"n_{t}", "int64", f"{t} events", (7, 30, 90))],
    ("n_favorite_90d", "int64", "favorite events in the 90 days before the cutoff"),
    ("events_90d", "int64", "behaviour events of any type in the 90 days before the cutoff"),
    ("days_since_last_activity", "float64", "days from the last event or order to the cutoff (NaN: none)"),
    *_win("active_days", "int64", "distinct UTC days with an event or order", (30, 90)),
    *_win("sessions", "int64", "distinct sessions started", (30, 90)),
    ("cart_abandon_rate_90d", "float64", "share of 90-day sessions with an add_to_cart but no purchase, among sessions with an add_to_cart (0 if none)"),
    ("ipt_mean_days", "float64", "mean days between consecutive purchase days (NaN: fewer than 2 purchase days)"),
    ("ipt_std_days", "float64", "std of days between consecutive purchase days (NaN: fewer than 3 purchase days)"),
    ("trend_spend_30d", "float64", "(spend last 30 d - spend the 30 d before) / (sum of both); 0 if both are 0"),
    ("trend_events_30d", "float64", "(events last 30 d - events the 30 d before) / (sum of both); 0 if both are 0"),
    ("top_category", "string", "affinity category with the largest weighted 365-day share (null: none)"),
    ("top_category_share", "float64", "that category's share (0: none)"),
    ("n_categories_365d", "int64", "distinct categories interacted with over 365 days"),
    ("discount_share_365d", "float64", "share of 365-day orders with a discount or a coupon"),
    ("coupon_share_365d", "float64", "share of 365-day orders that used a coupon"),
    ("discount_rate_365d", "float64", "discount / (paid + discount) over 365-day orders"),
    ("refunds_365d", "int64", "refunds (negative-amount orders) in the 365 days before the cutoff"),
    ("refund_share_365d", "float64", "refunded / purchased amount over 365 days, at most 1 (0 without purchases)"),
    *[(f"{b}_share", "float64", f"share of 365-day events and orders {h} (UTC)") for b, h in (
        ("morning", "at 06:00-11:59"), ("afternoon", "at 12:00-17:59"), ("evening", "at 18:00-20:59"),
        ("night", "after 21:00 (21:00-23:59)"), ("late_night", "at 00:00-05:59"))],
    ("activity_365d", "int64", "events plus orders in the 365 days before the cutoff (denominator of the shares)"),
    ("weekend_share", "float64", "share of 365-day events and orders on Saturday or Sunday (UTC)"),
    *[(f"channel_{c}_share", "float64", f"share of 365-day events and orders in channel {c}") for c in (*CHANNELS, "other")],
    ("campaign_contacts_365d", "int64", "campaign contacts sent in the 365 days before the cutoff"),
    ("campaign_responses_365d", "int64", "of those, responses recorded before the cutoff"),
    ("tenure_days", "float64", "days from the first sighting (event, order or golden first_seen) to the cutoff"),
    ("age", "float64", "cutoff year - birth year from the golden record (NaN: unknown)"),
    ("gender", "string", "golden-record gender F/M/U (null: unknown)"),
    ("city", "string", "golden-record city"),
    ("reg_channel", "string", "golden-record registration channel"),
    ("occupation", "string", "golden-record occupation"),
    ("n_source_records", "int64", "source records merged into this person by OneID"),
    # rule tags (definitions and thresholds: features/tag_catalog.yaml, features/tags.py)
    ("tag_lifecycle_stage", "string", "new / active / dormant / churned"),
    ("tag_rfm_segment", "string", "one of the 8 classic RFM segments, or no_purchase"),
    ("tag_aipl_stage", "string", "aware / interest / purchase / loyal, or none"),
    ("tag_value_tier", "string", "high / mid / low by 365-day spend, or none"),
    ("tag_high_potential", "bool", "viewed 3+ times and carted in 90 days, no order in 90 days"),
    ("tag_price_sensitive", "bool", "2+ orders in 365 days, at least half with a discount or coupon"),
    ("tag_night_owl", "bool", "10+ events/orders in 365 days, at least 30% after 21:00 or before 06:00"),
    ("tag_age_band", "string", "<25 / 25-34 / 35-44 / 45-54 / 55+ / unknown"),
    ("tag_top_category", "string", "interest tag: top_category when its share is at least 30%, else null"),
]

ITEM_COLUMNS: list[tuple[str, str, str]] = [
    ("category", "string", "catalog category"),
    ("brand", "string", "catalog brand"),
    ("price", "float64", "catalog price"),
    ("price_band", "string", "low / mid / high: price tercile within the category (unknown: no price)"),
    ("age_days", "float64", "days from launch to the cutoff (NaN: no launch date)"),
    ("in_stock", "bool", "catalog in-stock flag (null: unknown)"),
    *_win("views", "int64", "view events", (7, 30, 90)),
    ("carts_30d", "int64", "add_to_cart events in the 30 days before the cutoff"),
    *_win("units", "int64", "units sold (order lines)", (7, 30, 90)),
    ("buyers_90d", "int64", "distinct customers who bought it in the 90 days before the cutoff"),
    ("revenue_30d", "float64", "quantity x unit price over 30-day order lines"),
    ("conversion_rate_90d", "float64", "purchase events / view events over 90 days, clipped to [0, 1] (0 without views)"),
    ("popularity_rank_30d", "int64", "rank by 30-day distinct interacting customers (1 = most popular)"),
]

INTERACTION_COLUMNS: list[tuple[str, str, str]] = [
    ("one_id", "string", "the person"),
    ("item_id", "string", "the item"),
    ("event_type", "string", "view / click / favorite / rate / add_to_cart / purchase (refunded in full: view)"),
    ("ts", "timestamp", "when (UTC, microseconds)"),
    ("weight", "float64", "implicit-feedback weight: FeatureConfig.weights, or the rating for rate events"),
]


def affinity_column(category: str) -> str:
    """``affinity_<category>`` with the category lower-cased and non-alphanumerics as ``_``."""
    return AFFINITY_PREFIX + re.sub(r"[^0-9a-z]+", "_", str(category).lower()).strip("_")


def customer_columns(categories: Sequence[str]) -> list[tuple[str, str, str]]:
    """``CUSTOMER_COLUMNS`` plus one ``affinity_<category>`` column per category, in file order."""
    aff = [(affinity_column(c), "float64", f"share of weighted 365-day interactions in category {c}")
           for c in categories]
    cut = next(i for i, c in enumerate(CUSTOMER_COLUMNS) if c[0] == "top_category")
    return [*CUSTOMER_COLUMNS[:cut], *aff, *CUSTOMER_COLUMNS[cut:]]


_MEMORY = re.compile(r"\d+(?:\.\d+)?\s*(?:[KMGT]i?B)", re.IGNORECASE)  # what DuckDB's memory_limit takes


@dataclass(frozen=True)
class FeatureConfig:
    n_categories: int = 20  # affinity columns for the top categories by 365-day interactions (alphabetical order)
    categories: tuple[str, ...] | None = None  # fixed category list instead (stable columns across datasets)
    # implicit-feedback weights per event type (interactions.weight; category affinity)
    weights: dict[str, float] = field(default_factory=lambda: {
        "view": 1.0, "click": 2.0, "favorite": 3.0, "rate": 3.0, "add_to_cart": 4.0, "purchase": 5.0})
    threads: int | None = None  # DuckDB threads (None: DuckDB's default, all cores)
    memory_limit: str | None = None  # DuckDB memory limit, e.g. "8GB" (None: DuckDB's default, 80% of RAM)
    temp_dir: str | None = None  # where DuckDB spills when over the limit (None: next to the output)
    hmac_key: str | None = field(default=None, repr=False)  # OneID's key, only for record ids that were phones/emails (stored hashed); never printed
    tz: str = "UTC"  # wall clock of the hour-of-day and weekend features (the brand's zone, e.g. Asia/Shanghai)

    def __post_init__(self) -> None:
        # checked here, before DuckDB sees them: its own errors are tracebacks deep inside the build
        if self.n_categories < 0:
            raise SchemaError(f"--n-categories: must be 0 (no affinity columns) or more, got {self.n_categories}")
        if self.threads is not None and self.threads < 1:
            raise SchemaError(f"--threads: must be 1 or more, got {self.threads}")
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(self.tz)
        except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
            raise SchemaError(f"--tz: unknown time zone {self.tz!r}; use an IANA name such as Asia/Shanghai or UTC"
                              ) from None
        if self.memory_limit is not None and not _MEMORY.fullmatch(str(self.memory_limit).strip()):
            raise SchemaError(f"--memory-limit: {self.memory_limit!r} is not a size; use a number and a unit "
                              "KB, MB, GB or TB (or KiB, MiB, GiB, TiB), e.g. 8GB or 512MB")


# ISO 8601 as people type it: a date, optionally a time (minutes, seconds, fraction) and a UTC offset.
# Nothing else: pandas reads 01/06/2026 month-first without a word, and a cutoff a month off is silent damage.
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?")


def parse_iso(text: object, option: str, date_only: bool = False) -> pd.Timestamp:
    """``text`` as a UTC timestamp (a date is midnight UTC); :class:`SchemaError` naming ``option`` otherwise.

    The one parser of dates given on the command line (``--as-of``, ``--date``, ``--end``, config files).
    ``date_only`` accepts ``YYYY-MM-DD`` alone.
    """
    value = str(text).strip()
    want = "YYYY-MM-DD" if date_only else "YYYY-MM-DD, optionally with a time, e.g. 2026-06-01T12:00 or 2026-06-01T12:00Z"
    if not _ISO.fullmatch(value) or (date_only and len(value) != 10):
        raise SchemaError(f"{option}: not an ISO 8601 date: {text!r}; use {want}")
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise SchemaError(f"{option}: not a date or time: {text!r} ({exc}); use {want}") from exc
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def parse_cutoffs(text: str | Sequence[str], option: str = "--as-of") -> list[pd.Timestamp]:
    """``"2026-06-01,2026-07-01"`` -> sorted unique UTC timestamps; a date means midnight UTC."""
    parts = [p.strip() for p in (text.split(",") if isinstance(text, str) else text) if str(p).strip()]
    out = [parse_iso(p, option) for p in parts]
    if not out:
        raise SchemaError(f"{option}: no cutoff given")
    return sorted(set(out))


def _day(ts: pd.Timestamp) -> str:
    """A cutoff as the user typed it: the date alone at midnight UTC, else the ISO timestamp."""
    ts = pd.Timestamp(ts)
    return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.isoformat()


@dataclass
class BuildResult:
    cutoffs: list[pd.Timestamp]
    categories: list[str]
    paths: dict[str, Path]
    rows: dict[str, int]
    seconds: dict[str, float]
    unmapped: dict[str, int]  # fact rows whose (source, record_id) has no one_id
    unmapped_sources: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)  # table -> source -> (lost, rows)
    known_sources: list[str] = field(default_factory=list)  # sources OneID knows


def build(
    raw_dir: Path,
    identity_dir: Path,
    out_dir: Path,
    cutoffs: Sequence[pd.Timestamp] | None = None,
    config: FeatureConfig = FeatureConfig(),
    on_step: Callable[[str], None] | None = None,
    record_map: Path | None = None,
    tag_config=None,
    append: bool = False,
) -> BuildResult:
    """Compute every feature table as of ``cutoffs`` (default: the day after the last fact) and write them.

    ``append=True`` keeps the snapshots of other cutoffs already in ``out_dir`` (same affinity categories as
    before, so the columns stay the same) and replaces those of ``cutoffs``: a daily run adds one snapshot.

    Raises :class:`SchemaError` naming the file and column when an input is missing or malformed.
    """
    from features import customer, interactions, items
    from features.io import atomic_write

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    step = on_step or (lambda _msg: None)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    step("staging inputs")
    con, staged = stage(Path(raw_dir), Path(identity_dir), config, record_map=record_map,
                        temp_dir=config.temp_dir or str(out_dir / ".duckdb_tmp"))
    cuts = list(cutoffs) if cutoffs else [staged.default_cutoff]
    empty = [c for c in cuts if staged.data_start is not None and c <= staged.data_start]
    if empty:  # a 0-row snapshot would replace good ones and train/score nobody: refuse before writing
        con.close()
        shown = ", ".join(_day(c) for c in empty)
        raise SchemaError(f"--as-of {shown}: no customer has an event, order or first sighting before "
                          f"{'this cutoff' if len(empty) == 1 else 'these cutoffs'}; the data runs from "
                          f"{staged.data_start:%Y-%m-%d} to {staged.data_end:%Y-%m-%d} (give a cutoff after "
                          f"{staged.data_start:%Y-%m-%d}, or leave --as-of out for {_day(staged.default_cutoff)})")
    customer.set_cutoffs(con, cuts)
    seconds["stage"] = time.perf_counter() - t0
    previous = read_meta(out_dir) if append and (out_dir / "meta.json").exists() else None
    before = ((previous or {}).get("config") or {}).get("tz", "UTC")
    if previous is not None and before != config.tz:  # two clocks in one table: hour shares would not compare
        raise SchemaError(f"--tz {config.tz}: the snapshots already in {out_dir} use --tz {before}; pass --tz {before} "
                          "with --append, or rebuild every cutoff without --append")
    if config.categories:
        categories = list(config.categories)
    elif previous:
        categories = previous["categories"]
    else:
        categories = customer.top_categories(con, config.n_categories)
    paths, rows = {}, {}

    def keep_others(job: Callable[[Path], None], old: Path, key: str) -> Callable[[Path], None]:
        if previous is None or not old.exists():
            return job

        def merged(tmp: Path) -> None:
            new = tmp.with_name(tmp.name + ".new")
            try:
                job(new)
                these = ", ".join(f"'{c.isoformat()}'::TIMESTAMPTZ" for c in cuts)
                con.execute(f"COPY (SELECT * FROM read_parquet('{old}') WHERE event_timestamp NOT IN ({these}) "
                            f"UNION ALL BY NAME SELECT * FROM read_parquet('{new}') ORDER BY event_timestamp, {key}) "
                            f"TO '{tmp}' (FORMAT parquet)")
            finally:
                new.unlink(missing_ok=True)
        return merged

    jobs = [
        ("customer_features", keep_others(lambda p: customer.write(con, p, categories, config, tag_config),
                                          out_dir / "customer_features.parquet", "one_id")),
        ("item_features", keep_others(lambda p: items.write(con, p), out_dir / "item_features.parquet", "item_id")),
        ("interactions", lambda p: interactions.write(con, p, config)),
    ]
    for name, job in jobs:
        step(f"computing {name}")
        t = time.perf_counter()
        path = out_dir / f"{name}.parquet"
        atomic_write(path, job)
        paths[name] = path
        rows[name] = con.sql(f"SELECT count(*) FROM read_parquet('{path}')").fetchall()[0][0]
        seconds[name] = time.perf_counter() - t
    con.close()
    seconds["total"] = time.perf_counter() - t0
    all_cuts = sorted({*cuts, *(pd.Timestamp(c) for c in (previous or {}).get("cutoffs", []))})
    meta = {
        "cutoffs": [c.isoformat() for c in all_cuts], "categories": categories, "rows": rows,
        "unmapped": staged.unmapped, "config": {k: v for k, v in asdict(config).items() if k != "hmac_key"},  # never the key
        "customer_columns": [c[0] for c in customer_columns(categories)],
        "item_columns": [c[0] for c in ITEM_COLUMNS],
    }
    paths["meta"] = atomic_write(out_dir / "meta.json", lambda p: p.write_text(json.dumps(meta, indent=2)))
    return BuildResult(cuts, categories, paths, rows, seconds, staged.unmapped, staged.unmapped_sources,
                       staged.known_sources)


def read_meta(features_dir: Path) -> dict:
    """The ``meta.json`` of a build (cutoffs, categories, columns); SchemaError naming the file if absent."""
    path = Path(features_dir) / "meta.json"
    if not path.exists():
        raise SchemaError(f"{path}: no feature build found; run `portrait features build` first")
    return json.loads(path.read_text())
