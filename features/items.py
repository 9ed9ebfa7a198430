"""Item features per (item_id, cutoff): popularity over windows, conversion, category, brand, price band, age.

Computed in DuckDB over the tables staged by :func:`features.build.stage`, from events and
order lines strictly before each cutoff; an item launched after a cutoff is not in that snapshot.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.build import ET_CODES, ITEM_COLUMNS

_CAST = {"int64": "BIGINT", "float64": "DOUBLE", "string": "VARCHAR", "bool": "BOOLEAN"}


DAY_US = 86_400_000_000


def _in(w: int) -> str:
    """``ts >= cutoff - w days`` on the age ``a = cutoff - ts`` in microseconds."""
    return f"a <= {int(w) * DAY_US}"


def _base(table: str, days: int) -> str:
    # a line of an order refunded in full before the cutoff sold nothing as of it (features.returns)
    live = " AND (x.cancel_ts IS NULL OR x.cancel_ts >= c.cutoff)" if table == "oli" else ""
    return (f"(SELECT x.*, c.cutoff, epoch_us(c.cutoff) - epoch_us(x.ts) a FROM {table} x "
            f"JOIN cuts c ON x.ts < c.cutoff AND x.ts >= c.cutoff - INTERVAL {int(days)} DAY{live})")


def items_sql() -> str:
    """The item table query over ``item``, ``ev``, ``oli`` and ``cuts``; typed per ``ITEM_COLUMNS``."""
    v, a, p = ET_CODES["view"], ET_CODES["add_to_cart"], ET_CODES["purchase"]
    iv = (
        "SELECT iid, cutoff, "
        + ", ".join(f"count(*) FILTER (WHERE et = {v} AND {_in(w)}) views_{w}d" for w in (7, 30, 90))
        + f", count(*) FILTER (WHERE et = {a} AND {_in(30)}) carts_30d, count(*) FILTER (WHERE et = {p}) purchase_events_90d"
        + f" FROM {_base('ev', 90)} WHERE iid IS NOT NULL GROUP BY iid, cutoff"
    )
    io = (
        "SELECT iid, cutoff, "
        + ", ".join(f"coalesce(sum(quantity) FILTER (WHERE {_in(w)}), 0) units_{w}d" for w in (7, 30, 90))
        + f", count(DISTINCT cid) buyers_90d, coalesce(sum(quantity * unit_price) FILTER (WHERE {_in(30)}), 0) revenue_30d"
        + f" FROM {_base('oli', 90)} GROUP BY iid, cutoff"
    )
    # distinct (item, customer) pairs first: cheaper than count(DISTINCT) over every event
    users = (
        "SELECT iid, cutoff, count(*) users_30d FROM (SELECT DISTINCT iid, cutoff, cid FROM "
        f"(SELECT iid, cutoff, cid FROM {_base('ev', 30)} WHERE iid IS NOT NULL "
        f"UNION ALL SELECT iid, cutoff, cid FROM {_base('oli', 30)})) GROUP BY iid, cutoff"
    )
    band = (
        "SELECT iid, ['low', 'mid', 'high'][ntile(3) OVER (PARTITION BY category ORDER BY price)] band "
        "FROM item WHERE price IS NOT NULL"
    )
    pop = (
        "SELECT i.iid, c.cutoff FROM item i, cuts c WHERE i.in_catalog AND (i.launch_date IS NULL OR i.launch_date < c.cutoff) "
        "UNION SELECT iid, cutoff FROM iv UNION SELECT iid, cutoff FROM io"
    )
    cols = {
        "category": "i.category", "brand": "i.brand", "price": "i.price",
        "price_band": "coalesce(b.band, 'unknown')",
        "age_days": "(epoch(p.cutoff) - epoch(i.launch_date)) / 86400.0", "in_stock": "i.in_stock",
        **{f"views_{w}d": f"coalesce(iv.views_{w}d, 0)" for w in (7, 30, 90)},
        "carts_30d": "coalesce(iv.carts_30d, 0)",
        **{f"units_{w}d": f"coalesce(io.units_{w}d, 0)" for w in (7, 30, 90)},
        "buyers_90d": "coalesce(io.buyers_90d, 0)", "revenue_30d": "coalesce(io.revenue_30d, 0)",
        "conversion_rate_90d": "CASE WHEN coalesce(iv.views_90d, 0) > 0 "
                               "THEN least(1.0, iv.purchase_events_90d / iv.views_90d) ELSE 0.0 END",
        "popularity_rank_30d": "rank() OVER (PARTITION BY p.cutoff ORDER BY coalesce(u.users_30d, 0) DESC)",
    }
    typed = {n: t for n, t, _ in ITEM_COLUMNS}
    select = ", ".join(f"CAST({cols[n]} AS {_CAST[typed[n]]}) AS {n}" for n in typed)
    return (
        f"WITH iv AS ({iv}), io AS ({io}), u AS ({users}), b AS ({band}), p AS ({pop}) "
        f"SELECT i.item_id, p.cutoff AS event_timestamp, {select} FROM p JOIN item i USING (iid) "
        "LEFT JOIN iv USING (iid, cutoff) LEFT JOIN io USING (iid, cutoff) LEFT JOIN u USING (iid, cutoff) "
        "LEFT JOIN b USING (iid) ORDER BY event_timestamp, item_id"
    )


def write(con, path: Path) -> None:
    """COPY the item table for every cutoff in ``cuts`` to Parquet at ``path``."""
    con.execute(f"COPY ({items_sql()}) TO '{path}' (FORMAT parquet)")


def frame(con) -> pd.DataFrame:
    """The item table as a DataFrame (tests, small data)."""
    return con.sql(items_sql()).df()
