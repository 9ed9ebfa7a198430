"""Load the canonical tables into DuckDB for the feature build, with integer keys and checked columns.

:func:`stage` checks every input file (missing file, unreadable file, missing column or wrong column type
are :class:`~features.schema.SchemaError` naming the file and the column), maps people to OneID's
``one_id`` through the record map, and encodes customers, items, event types and channels as small
integers, so the aggregations in :mod:`features.customer`, :mod:`features.items` and
:mod:`features.interactions` hash integers instead of strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features.schema import SchemaError

if TYPE_CHECKING:
    from features.build import FeatureConfig

CHANNELS = ("app", "miniprogram", "web", "store")  # channel mix columns; anything else counts as "other"
ET_CODES = {"view": 1, "click": 2, "search": 3, "add_to_cart": 4, "purchase": 5, "coupon_use": 6, "favorite": 7, "rate": 8}
V, D, T, B, I = "VARCHAR", "DOUBLE", "TIMESTAMPTZ", "BOOLEAN", "BIGINT"
# file -> {column: (SQL type, value when the file lacks the column; None = required)}; the canonical schemas
# in features.schema hold more columns, these are the ones the build reads
_INPUTS: dict[str, dict[str, tuple[str, str | None]]] = {
    "record_map": {"source": (V, None), "record_id": (V, None), "one_id": (V, None)},
    "events": {"source": (V, None), "record_id": (V, None), "event_type": (V, None), "item_id": (V, None),
               "ts": (T, None), "channel": (V, "NULL"), "session_id": (V, "NULL"), "value": (D, "NULL")},
    "orders": {"order_id": (V, None), "source": (V, None), "record_id": (V, None), "ts": (T, None),
               "amount": (D, None), "discount": (D, "0.0"), "coupon_used": (B, "false"), "channel": (V, "NULL"),
               "refund_of": (V, "NULL")},
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
    data_start: pd.Timestamp | None = None  # the first event, order or golden first_seen: a cutoff at or before it has no customer
    # per table, source -> (rows dropped, rows of that source): a whole source not matching (orders imported
    # with --set source=POS, identity records with pos) is named, not one total among others
    unmapped_sources: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)
    known_sources: list[str] = field(default_factory=list)  # the sources of the record map


def _fits(found: str, want: str) -> bool:
    found = found.upper().strip('"')
    if found == "NULL":  # an all-null column (e.g. written from pandas None)
        return True
    if want == T:
        return found.startswith(("TIMESTAMP", "DATE"))
    if want in (D, I):
        return any(k in found for k in ("INT", "DOUBLE", "FLOAT", "DECIMAL", "REAL")) and (want == D or "INT" in found)
    return found.startswith(want)


def _source(con, path: Path, name: str, relation: str | None = None) -> str | None:
    """SQL selecting the needed + optional columns of ``path`` (or of a registered ``relation`` read
    from it), or None when the file is absent."""
    if not path.exists():
        return None
    frm = relation or f"read_parquet('{path}')"
    try:
        types = {r[0]: r[1] for r in con.sql(f"DESCRIBE SELECT * FROM {frm}").fetchall()}
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
    return f"(SELECT {', '.join(sel)} FROM {frm})"


def _identity_source(con, identity_dir: Path, name: str, path: Path | None = None) -> str | None:
    """:func:`_source` for a OneID table; after incremental identity runs (deltas listed in
    ``manifest.json``) the current table, base + deltas (``read_identity_table``), not the base file."""
    default = identity_dir / f"{name}.parquet"
    path = path or default
    if path == default and path.exists():
        from features.identity.state import StateError
        from features.identity.tables import read_identity_table, read_manifest

        try:
            if (read_manifest(identity_dir) or {}).get("deltas"):
                con.register(f"identity_{name}", read_identity_table(identity_dir, name))
                return _source(con, path, name, relation=f"identity_{name}")
        except StateError as exc:  # a corrupt manifest or a missing delta part: the build's input error
            raise SchemaError(f"{identity_dir}: {exc}") from exc
    return _source(con, path, name)


def _hashed_ids(con, identity_dir: Path, config: "FeatureConfig", s: dict[str, str]) -> str | None:
    """A registered (raw, stored) table of the fact tables' record ids that OneID stored hashed (phones
    and emails used as record ids, :mod:`features.identity.record_ids`), or None when there are none."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from features.identity.hashing import MissingKeyError
    from features.identity.record_ids import fact_id_mapper

    try:
        mapper = fact_id_mapper(identity_dir, config.hmac_key)
    except MissingKeyError as exc:
        raise SchemaError(str(exc)) from exc
    if mapper is None:
        return None
    raw = con.sql(" UNION ".join(f"SELECT DISTINCT record_id FROM {s[t]}" for t in ("events", "orders", "campaign_contacts"))
                  ).arrow()
    raw = (raw.read_all() if hasattr(raw, "read_all") else raw).column(0).combine_chunks().cast(pa.string())
    raw = raw.filter(pc.is_valid(raw))
    stored = mapper(raw)
    changed = pc.not_equal(raw, stored)
    con.register("hashed_record_ids", pa.table({"raw": raw.filter(changed), "stored": stored.filter(changed)}))
    return "hashed_record_ids"


# UTC hour and ISO weekday by integer arithmetic (ICU calendar functions on TIMESTAMPTZ cost 3x more);
# 1970-01-01 was a Thursday (ISO weekday 4)
_HR = "((epoch_us({0}) // 3600000000) % 24)::UTINYINT"
_DOW = "((epoch_us({0}) // 86400000000 + 3) % 7 + 1)::UTINYINT"


def _clock(col: str, tz: str) -> tuple[str, str]:
    """SQL for the hour and ISO weekday of ``col`` on the wall clock of ``tz`` (UTC: integer arithmetic).

    A brand in Shanghai sells at 20:00 local, 12:00 UTC: UTC hours made its evening shoppers
    "afternoon" and its 05:00-14:00 shoppers night owls.
    """
    if tz in ("UTC", "Etc/UTC"):
        return _HR.format(col), _DOW.format(col)
    local = f"timezone('{tz}', {col})"
    return f"hour({local})::UTINYINT", f"isodow({local})::UTINYINT"


def _ch(col: str) -> str:
    whens = " ".join(f"WHEN '{c}' THEN {i + 1}" for i, c in enumerate(CHANNELS))
    return f"(CASE {col} {whens} ELSE 0 END)::UTINYINT"


# a refund row: a negative amount, or a zero one naming the order it refunds (features.schema_orders accepts
# both); a zero row naming an order is no purchase, as features.returns.stand_orders reads it too
_REFUND = "(amount < 0 OR (amount = 0 AND refund_of IS NOT NULL))"


def _settle_refunds(con) -> None:
    """``od`` from ``od_raw``: refunds applied by :func:`features.returns.stand_orders`.

    ``od(cid, order_id, ts, amount, refund, cancel_ts, discount, coupon, ch, hr, dow)``: ``amount`` is signed
    (a refund's is negative, at its own time), ``cancel_ts`` the time a purchase became refunded in full
    (NULL: never); a purchase counts as of a cutoff only when ``cancel_ts`` is NULL or not before it.
    """
    from features.returns import stand_orders

    if not con.sql(f"SELECT count(*) FROM od_raw WHERE {_REFUND}").fetchall()[0][0]:  # no refund: nothing to settle
        con.execute("CREATE TABLE od AS SELECT cid, order_id, ts, amount, false refund, NULL::TIMESTAMPTZ cancel_ts, "
                    "discount, coupon, ch, hr, dow FROM od_raw")
        con.execute("DROP TABLE od_raw")
        return
    raw = con.sql("SELECT rn, cid, epoch_us(ts) t, amount, order_id, refund_of FROM od_raw ORDER BY rn").df()
    # a refund from an account OneID does not know has no customer (-1) until it links to a purchase
    cid, amount, cancel = stand_orders(raw["cid"].fillna(-1).to_numpy(np.int64), raw["t"].to_numpy(np.int64),
                                       raw["amount"].to_numpy(), raw["order_id"].to_numpy(object),
                                       raw["refund_of"].to_numpy(object))
    keep = cid >= 0  # linked to a purchase's buyer, else dropped (the unmapped count says so)
    con.register("od_fix", pd.DataFrame({"rn": raw["rn"].to_numpy()[keep], "cid": cid[keep].astype(np.int32),
                                         "amount": amount[keep], "cancel_us": cancel[keep]}))
    refund = _REFUND.replace("amount", "r.amount")
    con.execute(f"CREATE TABLE od AS SELECT f.cid, r.order_id, r.ts, f.amount, {refund} refund, "
                "CASE WHEN f.cancel_us >= 0 THEN make_timestamptz(f.cancel_us) END cancel_ts, r.discount, r.coupon, "
                "r.ch, r.hr, r.dow FROM od_raw r JOIN od_fix f USING (rn)")
    con.execute("DROP TABLE od_raw")
    con.unregister("od_fix")


def stage(raw_dir: Path, identity_dir: Path, config: "FeatureConfig", record_map: Path | None = None,
          temp_dir: str | None = None, events: bool = True):
    """Open DuckDB and load the inputs as compact tables keyed by integers; ``(connection, Staged)``.

    ``events=False`` leaves ``ev`` empty (labels need orders only). Tables: ``cust(cid, one_id)``,
    ``item(iid, item_id, cat, category, brand, price, launch_date, in_stock)``,
    ``ev(cid, et, iid, cat, ch, unknown_item, ts, sess, value, hr, dow)``, ``od`` (:func:`_settle_refunds`),
    ``oli(cid, iid, ts, cancel_ts, quantity, unit_price)``, ``cc(cid, sent_at, responded_at)``, ``gold(cid, ...)``.
    """
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # cutoffs are UTC; hour/weekday features use config.tz (_clock)
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
    src["record_map"] = _identity_source(con, identity_dir, "record_map", rm_path)
    src["golden"] = _identity_source(con, identity_dir, "golden")
    if src["record_map"] is None:
        raise SchemaError(f"{rm_path}: no OneID record map; run `portrait identity resolve` first")
    if src["events"] is None and src["orders"] is None:
        raise SchemaError(f"{raw_dir}: neither events.parquet nor orders.parquet found")
    s = {k: v or _empty(k) for k, v in src.items()}
    rec_map = _hashed_ids(con, identity_dir, config, s)
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
        f"CREATE TABLE rec AS SELECT r.source, r.record_id, c.cid FROM {s['record_map']} r JOIN cust c USING (one_id)"
        + (f" UNION ALL SELECT r.source, m.raw, c.cid FROM {s['record_map']} r JOIN {rec_map} m ON m.stored = r.record_id "
           "JOIN cust c USING (one_id)" if rec_map else ""),
        f"CREATE TABLE cats AS SELECT (row_number() OVER (ORDER BY category))::SMALLINT cat, category "
        f"FROM (SELECT DISTINCT category FROM {s['items']} WHERE category IS NOT NULL)",
        f"CREATE TABLE item AS SELECT (row_number() OVER (ORDER BY d.item_id))::INTEGER iid, d.item_id, c.cat, i.category, "
        f"i.brand, i.price, i.launch_date, i.in_stock, i.item_id IS NOT NULL AS in_catalog FROM "
        f"(SELECT item_id FROM {s['items']} UNION SELECT DISTINCT item_id FROM {s['order_lines']} {event_items}) d "
        f"LEFT JOIN {s['items']} i USING (item_id) LEFT JOIN cats c USING (category)",
        f"CREATE TABLE ev AS SELECT r.cid, (CASE e.event_type {et} ELSE 0 END)::UTINYINT et, i.iid, i.cat, "
        f"{_ch('e.channel')} ch, e.item_id IS NOT NULL AND i.iid IS NULL unknown_item, e.ts, CASE WHEN e.session_id IS NULL THEN NULL ELSE hash(e.session_id) END sess, "
        f"e.value, {_clock('e.ts', config.tz)[0]} hr, {_clock('e.ts', config.tz)[1]} dow "
        f"FROM {s['events']} e JOIN rec r USING (source, record_id) LEFT JOIN item i USING (item_id)",
        f"CREATE TABLE od_raw AS SELECT (row_number() OVER () - 1)::BIGINT rn, r.cid, o.order_id, o.refund_of, o.ts, "
        f"o.amount, coalesce(o.discount, 0) discount, coalesce(o.coupon_used, false) coupon, {_ch('o.channel')} ch, "
        f"{_clock('o.ts', config.tz)[0]} hr, {_clock('o.ts', config.tz)[1]} dow "
        # a refund naming its order is kept even from an account OneID does not know (a store's service desk):
        # it belongs to the order's buyer (features.returns.stand_orders); one naming no known order is dropped
        f"FROM {s['orders']} o LEFT JOIN rec r USING (source, record_id) "
        f"WHERE r.cid IS NOT NULL OR (o.refund_of IS NOT NULL AND o.amount <= 0)",
        _settle_refunds,
        # lines of purchases only (a refund's own lines are no sale), with the time their order was cancelled
        f"CREATE TABLE oli AS SELECT o.cid, i.iid, o.ts, o.cancel_ts, l.quantity, l.unit_price "
        f"FROM {s['order_lines']} l JOIN od o USING (order_id) JOIN item i USING (item_id) WHERE NOT o.refund",
        f"CREATE TABLE cc AS SELECT r.cid, c.sent_at, c.responded_at FROM {s['campaign_contacts']} c JOIN rec r USING (source, record_id)",
        f"CREATE TABLE gold AS SELECT c.cid, g.birth_year, g.gender, g.city, g.reg_channel, g.occupation, g.first_seen, "
        f"g.n_records FROM {s['golden']} g JOIN cust c USING (one_id)",
    ]
    for q in ddl:
        q(con) if callable(q) else con.execute(q)
    n = lambda q: con.sql(q).fetchall()[0][0]  # noqa: E731
    unmapped = {"events": n(f"SELECT count(*) FROM {s['events']}") - n("SELECT count(*) FROM ev"),
                "orders": n(f"SELECT count(*) FROM {s['orders']}") - n("SELECT count(*) FROM od"),
                "event_items_not_in_catalog": n("SELECT count(*) FROM ev WHERE unknown_item")}
    by_source: dict[str, dict[str, tuple[int, int]]] = {}
    # an order's refund from an account OneID does not know is not lost when it names a purchase kept (od_raw)
    kept = (" AND NOT (t.refund_of IS NOT NULL AND t.amount <= 0 AND t.refund_of IN "
            "(SELECT order_id FROM od WHERE NOT refund AND order_id IS NOT NULL))")
    for name in ("events", "orders"):
        if unmapped[name]:
            rows = con.sql(f"SELECT source, count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM rec r WHERE "
                           f"r.source = t.source AND r.record_id = t.record_id){kept if name == 'orders' else ''}) "
                           f"lost, count(*) n FROM {s[name]} t GROUP BY source HAVING lost > 0 ORDER BY lost DESC").fetchall()
            by_source[name] = {str(src): (int(lost), int(total)) for src, lost, total in rows}
    known = [r[0] for r in con.sql("SELECT DISTINCT source FROM rec ORDER BY 1").fetchall()] if by_source else []
    last = n("SELECT max(ts) FROM (SELECT max(ts) ts FROM ev UNION ALL SELECT max(ts) FROM od"
             + (f" UNION ALL SELECT {events_last}" if events_last else "") + ")")
    if last is None:
        raise SchemaError(f"{raw_dir}: no event or order belongs to a known one_id (check {rm_path})")
    default = pd.Timestamp(last).tz_convert("UTC").normalize() + pd.Timedelta(days=1)
    # the customer population of a cutoff is whoever has a fact or a first sighting before it (features.customer: pop)
    first = n("SELECT min(ts) FROM (SELECT min(ts) ts FROM ev UNION ALL SELECT min(ts) FROM od "
              "UNION ALL SELECT min(first_seen) FROM gold)")
    return con, Staged(default, pd.Timestamp(last).tz_convert("UTC"), unmapped,
                       pd.Timestamp(first).tz_convert("UTC") if first is not None else None, by_source, known)
