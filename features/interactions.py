"""``interactions.parquet``: (one_id, item_id, event_type, ts, weight) for recommenders and lookalike.

Every item event (view, click, favorite, rate, add_to_cart, purchase) strictly before the last
cutoff, plus purchases known only from order lines (e.g. store orders without a purchase event).
A purchase whose order was refunded in full before that cutoff (``oli.cancel_ts``, set by
:func:`features.returns.stand_orders`) is a ``view``: the customer looked at the items but did
not keep them (a purchase event is tied to its order by an order line of the same customer, item
and time). A partial refund, or one after the cutoff, keeps the purchase.
Weights come from :class:`features.build.FeatureConfig` (``rate`` events weigh their rating).
Rows are not sorted; consumers split by ``ts`` themselves.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.build import ET_CODES, FeatureConfig

ITEM_EVENTS = ("view", "click", "favorite", "rate", "add_to_cart", "purchase")


def _until(con) -> str:
    """The last cutoff as a SQL literal (a literal lets DuckDB push the filter into the scans)."""
    last = con.sql("SELECT max(cutoff) FROM cuts").fetchall()[0][0]
    return f"'{pd.Timestamp(last).isoformat()}'::TIMESTAMPTZ"


def interactions_sql(until: str, config: FeatureConfig = FeatureConfig()) -> str:
    """The interactions query over the staged tables; ``until`` is a SQL timestamp literal (exclusive)."""
    codes = {t: ET_CODES[t] for t in ITEM_EVENTS}
    kinds = ", ".join(f"({c}::UTINYINT, '{t}', {float(config.weights.get(t, 1.0))})" for t, c in codes.items())
    p, rate, view = codes["purchase"], codes["rate"], codes["view"]
    # oli.cancel_ts: when features.returns.stand_orders found the order refunded in full (NULL: never)
    refunded = f"coalesce(cancel_ts < {until}, false)"
    return (
        f"WITH k(et, event_type, w) AS (VALUES {kinds}), "
        # purchase events told apart by their order lines (customer, item, time), as in x below
        f"gone AS (SELECT cid, iid, ts, {p}::UTINYINT et FROM oli WHERE ts < {until} GROUP BY ALL "
        f"HAVING bool_and({refunded})), x AS ("
        f"SELECT e.cid, e.iid, CASE WHEN g.cid IS NULL THEN e.et ELSE {view}::UTINYINT END et, e.ts, e.value "
        f"FROM ev e LEFT JOIN gone g USING (cid, iid, ts, et) WHERE e.iid IS NOT NULL AND e.ts < {until} "
        f"UNION ALL SELECT o.cid, o.iid, (CASE WHEN {refunded} THEN {view} ELSE {p} END)::UTINYINT et, o.ts, "
        f"NULL value FROM oli o WHERE o.ts < {until} "
        f"AND NOT EXISTS (SELECT 1 FROM ev e WHERE e.et = {p} AND e.cid = o.cid AND e.iid = o.iid AND e.ts = o.ts)) "
        f"SELECT c.one_id, i.item_id, k.event_type, x.ts, CASE WHEN x.et = {rate} AND x.value IS NOT NULL "
        "THEN x.value ELSE k.w END::DOUBLE weight FROM x JOIN k USING (et) JOIN cust c USING (cid) JOIN item i USING (iid)"
    )


def write(con, path: Path, config: FeatureConfig = FeatureConfig()) -> None:
    """COPY the interactions before the last cutoff to Parquet at ``path``."""
    con.execute(f"COPY ({interactions_sql(_until(con), config)}) TO '{path}' (FORMAT parquet)")


def frame(con, config: FeatureConfig = FeatureConfig()) -> pd.DataFrame:
    return con.sql(interactions_sql(_until(con), config)).df()
