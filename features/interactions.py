"""``interactions.parquet``: (one_id, item_id, event_type, ts, weight) for recommenders and lookalike.

Every item event (view, click, favorite, rate, add_to_cart, purchase) strictly before the last
cutoff, plus purchases known only from order lines (e.g. store orders without a purchase event).
Weights come from :class:`features.build.FeatureConfig` (``rate`` events weigh their rating).
Rows are not sorted; consumers split by ``ts`` themselves.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.build import ET_CODES, FeatureConfig

ITEM_EVENTS = ("view", "click", "favorite", "rate", "add_to_cart", "purchase")


def interactions_sql(config: FeatureConfig = FeatureConfig()) -> str:
    codes = {t: ET_CODES[t] for t in ITEM_EVENTS}
    names = " ".join(f"WHEN {c} THEN '{t}'" for t, c in codes.items())
    weights = " ".join(f"WHEN {codes[t]} THEN {float(config.weights.get(t, 1.0))}" for t in ITEM_EVENTS)
    p = codes["purchase"]
    return (
        "WITH m AS (SELECT max(cutoff) m FROM cuts), x AS ("
        f"SELECT cid, iid, et, ts, CASE WHEN et = {codes['rate']} AND value IS NOT NULL THEN value "
        f"ELSE CASE et {weights} END END w FROM ev, m WHERE iid IS NOT NULL AND et IN ({', '.join(map(str, codes.values()))}) "
        "AND ts < m.m "
        f"UNION ALL SELECT o.cid, o.iid, {p} et, o.ts, {float(config.weights.get('purchase', 1.0))} w FROM oli o, m "
        f"WHERE o.ts < m.m AND NOT EXISTS (SELECT 1 FROM ev e WHERE e.et = {p} AND e.cid = o.cid AND e.iid = o.iid AND e.ts = o.ts)) "
        f"SELECT k.one_id, i.item_id, (CASE et {names} END)::VARCHAR event_type, x.ts, x.w::DOUBLE weight "
        "FROM x JOIN cust k USING (cid) JOIN item i USING (iid)"
    )


def write(con, path: Path, config: FeatureConfig = FeatureConfig()) -> None:
    """COPY the interactions before the last cutoff to Parquet at ``path``."""
    con.execute(f"COPY ({interactions_sql(config)}) TO '{path}' (FORMAT parquet)")


def frame(con, config: FeatureConfig = FeatureConfig()) -> pd.DataFrame:
    return con.sql(interactions_sql(config)).df()
