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

from features.schema import SchemaError

KEYS = ("one_id", "event_timestamp")
ITEM_KEYS = ("item_id", "event_timestamp")
AFFINITY_PREFIX = "affinity_"
CHANNELS = ("app", "miniprogram", "web", "store")  # channel mix columns; anything else counts as "other"


def _win(stem: str, dtype: str, what: str, windows: Sequence[int]) -> list[tuple[str, str, str]]:
    return [(f"{stem}_{w}d", dtype, f"{what} in the {w} days before the cutoff") for w in windows]


# (name, dtype, description): the customer feature and rule-tag columns, in file order (after the keys).
# dtypes: int64, float64, string, bool. NaN marks "undefined" (e.g. recency of a customer who never bought).
CUSTOMER_COLUMNS: list[tuple[str, str, str]] = [
    ("recency_days", "float64", "days from the last order to the cutoff (NaN: no order before the cutoff)"),
    *_win("frequency", "int64", "orders", (30, 90, 365)),
    *_win("monetary", "float64", "paid amount", (30, 90, 365)),
    ("orders_total", "int64", "orders before the cutoff, all history"),
    ("monetary_total", "float64", "paid amount before the cutoff, all history"),
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
    ("event_type", "string", "view / click / favorite / rate / add_to_cart / purchase"),
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


def parse_cutoffs(text: str | Sequence[str]) -> list[pd.Timestamp]:
    """``"2026-06-01,2026-07-01"`` -> sorted unique UTC timestamps; a date means midnight UTC."""
    parts = [p.strip() for p in (text.split(",") if isinstance(text, str) else text) if str(p).strip()]
    out = []
    for p in parts:
        try:
            ts = pd.Timestamp(p)
        except (ValueError, TypeError) as exc:
            raise SchemaError(f"--as-of: not a date or timestamp: {p!r}") from exc
        out.append(ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC"))
    if not out:
        raise SchemaError("--as-of: no cutoff given")
    return sorted(set(out))


@dataclass
class BuildResult:
    cutoffs: list[pd.Timestamp]
    categories: list[str]
    paths: dict[str, Path]
    rows: dict[str, int]
    seconds: dict[str, float]
    unmapped: dict[str, int]  # fact rows whose (source, record_id) has no one_id


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
    customer.set_cutoffs(con, cuts)
    seconds["stage"] = time.perf_counter() - t0
    previous = read_meta(out_dir) if append and (out_dir / "meta.json").exists() else None
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
        "unmapped": staged.unmapped, "config": {k: v for k, v in asdict(config).items()},
        "customer_columns": [c[0] for c in customer_columns(categories)],
        "item_columns": [c[0] for c in ITEM_COLUMNS],
    }
    paths["meta"] = atomic_write(out_dir / "meta.json", lambda p: p.write_text(json.dumps(meta, indent=2)))
    return BuildResult(cuts, categories, paths, rows, seconds, staged.unmapped)


ET_CODES = {"view": 1, "click": 2, "search": 3, "add_to_cart": 4, "purchase": 5, "coupon_use": 6, "favorite": 7, "rate": 8}
V, D, T, B, I = "VARCHAR", "DOUBLE", "TIMESTAMPTZ", "BOOLEAN", "BIGINT"
# file -> {column: (SQL type, value when the file lacks the column; None = required)}; the canonical schemas
# in features.schema hold more columns, these are the ones the build reads
_INPUTS: dict[str, dict[str, tuple[str, str | None]]] = {
    "record_map": {"source": (V, None), "record_id": (V, None), "one_id": (V, None)},
    "events": {"source": (V, None), "record_id": (V, None), "event_type": (V, None), "item_id": (V, None),
               "ts": (T, None), "channel": (V, "NULL"), "session_id": (V, "NULL"), "value": (D, "NULL")},
    "orders": {"order_id": (V, None), "source": (V, None), "record_id": (V, None), "ts": (T, None),
               "amount": (D, None), "discount": (D, "0.0"), "coupon_used": (B, "false"), "channel": (V, "NULL")},
    "order_lines": {"order_id": (V, None), "item_id": (V, None), "quantity": (I, None), "unit_price": (D, "NULL")},
    "items": {"item_id": (V, None), "category": (V, None), "brand": (V, "NULL"), "price": (D, "NULL"),
              "launch_date": (T, "NULL"), "in_stock": (B, "NULL")},
    "campaign_contacts": {"source": (V, None), "record_id": (V, None), "sent_at": (T, None), "responded_at": (T, "NULL")},
    "golden": {"one_id": (V, None), "birth_year": (I, "NULL"), "gender": (V, "NULL"), "city": (V, "NULL"),
               "reg_channel": (V, "NULL"), "occupation": (V, "NULL"), "first_seen": (T, "NULL"), "n_records": (I, "1")},
}


def _empty(name: str) -> str:
    return "(SELECT " + ", ".join(f"NULL::{t} {c}" for c, (t, _) in _INPUTS[name].items()) + " LIMIT 0)"


@dataclass
class Staged:
    default_cutoff: pd.Timestamp  # midnight UTC after the last event or order
    data_end: pd.Timestamp  # the last event or order
    unmapped: dict[str, int]  # fact rows dropped because OneID has no one_id for their record


def _fits(found: str, want: str) -> bool:
    found = found.upper().strip('"')
    if found == "NULL":  # an all-null column (e.g. written from pandas None)
        return True
    if want == T:
        return found.startswith(("TIMESTAMP", "DATE"))
    if want in (D, I):
        return any(k in found for k in ("INT", "DOUBLE", "FLOAT", "DECIMAL", "REAL")) and (want == D or "INT" in found)
    return found.startswith(want)


def _source(con, path: Path, name: str) -> str | None:
    """SQL selecting the needed + optional columns of ``path``, or None when the file is absent."""
    if not path.exists():
        return None
    try:
        types = {r[0]: r[1] for r in con.sql(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()}
    except Exception as exc:  # duckdb raises several types; the user needs the file name
        raise SchemaError(f"{path}: cannot be read as Parquet ({exc})") from exc
    cols = list(types)
    missing = [c for c, (_, default) in _INPUTS[name].items() if default is None and c not in cols]
    if missing:
        raise SchemaError(f"{path}: table '{name}' is missing column(s) {missing}; found {cols}")
    for c, (t, _) in _INPUTS[name].items():
        if c in types and not _fits(types[c], t):
            raise SchemaError(f"{path}: column '{c}' has type {types[c]}, expected {t} (write it with portrait data import)")
    sel = [c if c in cols else f"{default}::{t} AS {c}" for c, (t, default) in _INPUTS[name].items()]
    return f"(SELECT {', '.join(sel)} FROM read_parquet('{path}'))"


# UTC hour and ISO weekday by integer arithmetic (ICU calendar functions on TIMESTAMPTZ cost 3x more);
# 1970-01-01 was a Thursday (ISO weekday 4)
_HR = "((epoch_us({0}) // 3600000000) % 24)::UTINYINT"
_DOW = "((epoch_us({0}) // 86400000000 + 3) % 7 + 1)::UTINYINT"


def _ch(col: str) -> str:
    whens = " ".join(f"WHEN '{c}' THEN {i + 1}" for i, c in enumerate(CHANNELS))
    return f"(CASE {col} {whens} ELSE 0 END)::UTINYINT"


def stage(raw_dir: Path, identity_dir: Path, config: FeatureConfig, record_map: Path | None = None,
          temp_dir: str | None = None, events: bool = True):
    """Open DuckDB and load the inputs as compact tables keyed by integers; ``(connection, Staged)``.

    ``events=False`` leaves ``ev`` empty (labels need orders only). Tables: ``cust(cid, one_id)``,
    ``item(iid, item_id, cat, category, brand, price, launch_date, in_stock)``,
    ``ev(cid, et, iid, cat, ch, unknown_item, ts, sess, value, hr, dow)``, ``od(cid, oid, ts, amount, discount, coupon, ch, hr, dow)``,
    ``oli(cid, iid, ts, quantity, unit_price)``, ``cc(cid, sent_at, responded_at)``, ``gold(cid, ...)``.
    """
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # hour/weekday features are UTC by definition
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET enable_progress_bar = false")
    if config.threads:
        con.execute(f"SET threads = {int(config.threads)}")
    if config.memory_limit:
        con.execute(f"SET memory_limit = '{config.memory_limit}'")
    if temp_dir:
        con.execute(f"SET temp_directory = '{temp_dir}'")
    raw_dir, identity_dir = Path(raw_dir), Path(identity_dir)
    rm_path = Path(record_map) if record_map else identity_dir / "record_map.parquet"
    src = {name: _source(con, raw_dir / f"{name}.parquet", name)
           for name in ("events", "orders", "order_lines", "items", "campaign_contacts")}
    src["record_map"] = _source(con, rm_path, "record_map")
    src["golden"] = _source(con, identity_dir / "golden.parquet", "golden")
    if src["record_map"] is None:
        raise SchemaError(f"{rm_path}: no OneID record map; run `portrait identity resolve` first")
    if src["events"] is None and src["orders"] is None:
        raise SchemaError(f"{raw_dir}: neither events.parquet nor orders.parquet found")
    s = {k: v or _empty(k) for k, v in src.items()}
    events_last = None
    if not events:  # labels need orders only: skip the big table, keep its last timestamp for the data end
        if src["events"]:
            events_last = f"(SELECT max(ts) FROM read_parquet('{raw_dir / 'events.parquet'}'))"
        s["events"] = _empty("events")
    et = " ".join(f"WHEN '{k}' THEN {v}" for k, v in ET_CODES.items())
    # with a catalog, events naming an unknown item keep counting for the customer but not for items
    # (counted in unmapped["event_items_not_in_catalog"]); without one, the events define the items
    event_items = "" if src["items"] else f"UNION SELECT DISTINCT item_id FROM {s['events']} WHERE item_id IS NOT NULL"
    ddl = [
        f"CREATE TABLE cust AS SELECT (row_number() OVER (ORDER BY one_id))::INTEGER cid, one_id FROM "
        f"(SELECT DISTINCT one_id FROM {s['record_map']} UNION SELECT one_id FROM {s['golden']}) WHERE one_id IS NOT NULL",
        f"CREATE TABLE rec AS SELECT r.source, r.record_id, c.cid FROM {s['record_map']} r JOIN cust c USING (one_id)",
        f"CREATE TABLE cats AS SELECT (row_number() OVER (ORDER BY category))::SMALLINT cat, category "
        f"FROM (SELECT DISTINCT category FROM {s['items']} WHERE category IS NOT NULL)",
        f"CREATE TABLE item AS SELECT (row_number() OVER (ORDER BY d.item_id))::INTEGER iid, d.item_id, c.cat, i.category, "
        f"i.brand, i.price, i.launch_date, i.in_stock, i.item_id IS NOT NULL AS in_catalog FROM "
        f"(SELECT item_id FROM {s['items']} UNION SELECT DISTINCT item_id FROM {s['order_lines']} {event_items}) d "
        f"LEFT JOIN {s['items']} i USING (item_id) LEFT JOIN cats c USING (category)",
        f"CREATE TABLE ev AS SELECT r.cid, (CASE e.event_type {et} ELSE 0 END)::UTINYINT et, i.iid, i.cat, "
        f"{_ch('e.channel')} ch, e.item_id IS NOT NULL AND i.iid IS NULL unknown_item, e.ts, CASE WHEN e.session_id IS NULL THEN NULL ELSE hash(e.session_id) END sess, "
        f"e.value, {_HR.format('e.ts')} hr, {_DOW.format('e.ts')} dow "
        f"FROM {s['events']} e JOIN rec r USING (source, record_id) LEFT JOIN item i USING (item_id)",
        f"CREATE TABLE od AS SELECT r.cid, o.order_id, o.ts, o.amount, coalesce(o.discount, 0) discount, "
        f"coalesce(o.coupon_used, false) coupon, {_ch('o.channel')} ch, {_HR.format('o.ts')} hr, {_DOW.format('o.ts')} dow "
        f"FROM {s['orders']} o JOIN rec r USING (source, record_id)",
        f"CREATE TABLE oli AS SELECT o.cid, i.iid, o.ts, l.quantity, l.unit_price "
        f"FROM {s['order_lines']} l JOIN od o USING (order_id) JOIN item i USING (item_id)",
        f"CREATE TABLE cc AS SELECT r.cid, c.sent_at, c.responded_at FROM {s['campaign_contacts']} c JOIN rec r USING (source, record_id)",
        f"CREATE TABLE gold AS SELECT c.cid, g.birth_year, g.gender, g.city, g.reg_channel, g.occupation, g.first_seen, "
        f"g.n_records FROM {s['golden']} g JOIN cust c USING (one_id)",
    ]
    for q in ddl:
        con.execute(q)
    n = lambda q: con.sql(q).fetchall()[0][0]  # noqa: E731
    unmapped = {"events": n(f"SELECT count(*) FROM {s['events']}") - n("SELECT count(*) FROM ev"),
                "orders": n(f"SELECT count(*) FROM {s['orders']}") - n("SELECT count(*) FROM od"),
                "event_items_not_in_catalog": n("SELECT count(*) FROM ev WHERE unknown_item")}
    last = n("SELECT max(ts) FROM (SELECT max(ts) ts FROM ev UNION ALL SELECT max(ts) FROM od"
             + (f" UNION ALL SELECT {events_last}" if events_last else "") + ")")
    if last is None:
        raise SchemaError(f"{raw_dir}: no event or order belongs to a known one_id (check {rm_path})")
    default = pd.Timestamp(last).tz_convert("UTC").normalize() + pd.Timedelta(days=1)
    return con, Staged(default, pd.Timestamp(last).tz_convert("UTC"), unmapped)


def read_meta(features_dir: Path) -> dict:
    """The ``meta.json`` of a build (cutoffs, categories, columns); SchemaError naming the file if absent."""
    path = Path(features_dir) / "meta.json"
    if not path.exists():
        raise SchemaError(f"{path}: no feature build found; run `portrait features build` first")
    return json.loads(path.read_text())
