"""Training labels from the window strictly after each cutoff (never before it).

``future_labels(raw_dir, identity_dir, entities)`` returns one row per ``(one_id, event_timestamp)``
of the entity frame (Feast's entity-dataframe style; ``cutoff`` is accepted for ``event_timestamp``)
or, given cutoffs, per customer known before each cutoff (the feature table's population):

- ``purchased_<H>d`` (bool), ``orders_<H>d`` (int): purchases with ``cutoff <= ts < cutoff + H days``
  for each horizon H, not counting one refunded in full inside the horizon; ``spend_<H>d`` (float): the
  net spend of the horizon, purchases minus refunds dated in it, floored at 0 per customer;
- ``buy_30d_<category>`` (bool) for the top categories (by units sold before the last cutoff), from
  order lines in the 30 days after the cutoff (of purchases not refunded in full in those 30 days);
  ``category_horizon_days`` sets another window (``buy_<H>d_<category>``: propensity's own horizon);
- ``observed_days``: days of data after the cutoff (last event/order - cutoff) and
  ``complete_<H>d``: whether the data covers the whole horizon (a censored label reads as "no purchase").

Features use ``ts < cutoff`` and labels ``ts >= cutoff``: the two windows never overlap.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from features.build import FeatureConfig, stage
from features.schema import SchemaError


def label_category_column(category: str, horizon_days: int = 30) -> str:
    return f"buy_{int(horizon_days)}d_" + re.sub(r"[^0-9a-z]+", "_", str(category).lower()).strip("_")


def _entities(entities: pd.DataFrame | Sequence) -> tuple[pd.DataFrame | None, list[pd.Timestamp]]:
    if isinstance(entities, pd.DataFrame):
        df = entities.rename(columns={"cutoff": "event_timestamp"})
        missing = [c for c in ("one_id", "event_timestamp") if c not in df.columns]
        if missing:
            raise SchemaError(f"entity frame: missing column(s) {missing}; found {list(entities.columns)}")
        ts = pd.to_datetime(df["event_timestamp"], utc=True, errors="coerce")
        if ts.isna().any():
            raise SchemaError(f"entity frame: column 'event_timestamp' has {int(ts.isna().sum())} missing or bad timestamp(s)")
        df = pd.DataFrame({"one_id": df["one_id"].astype(str), "event_timestamp": ts.astype("datetime64[us, UTC]")})
        return df, sorted(df["event_timestamp"].unique())
    cuts = [pd.Timestamp(c) for c in entities]
    return None, [c.tz_localize("UTC") if c.tzinfo is None else c.tz_convert("UTC") for c in cuts]


def future_labels(
    raw_dir: Path,
    identity_dir: Path,
    entities: pd.DataFrame | Sequence,
    horizons: Sequence[int] = (30, 90, 180),
    categories: Sequence[str] | None = None,
    n_categories: int = 5,
    record_map: Path | None = None,
    hmac_key: str | None = None,
    category_horizon_days: int = 30,
) -> pd.DataFrame:
    """Labels after each cutoff; see the module docstring. Sorted by (event_timestamp, one_id)."""
    from features.customer import set_cutoffs, stage_aggregates

    ent, cuts = _entities(entities)
    if not cuts:
        raise SchemaError("future_labels: no cutoff given")
    # an entity frame needs orders only; cutoffs alone need events too (the population is everyone active before)
    con, staged = stage(Path(raw_dir), Path(identity_dir), FeatureConfig(hmac_key=hmac_key),
                         record_map=record_map, events=ent is None)
    try:
        set_cutoffs(con, cuts)
        if ent is None:
            stage_aggregates(con, [], FeatureConfig())
            con.execute("CREATE TEMP TABLE ent AS SELECT k.one_id, p.cutoff event_timestamp FROM pop p JOIN cust k USING (cid)")
        else:
            con.register("ent_df", ent)
            con.execute("CREATE TEMP TABLE ent AS SELECT DISTINCT one_id, event_timestamp FROM ent_df")
        if categories is None:
            categories = [r[0] for r in con.sql(
                "SELECT i.category FROM oli JOIN item i USING (iid), (SELECT max(cutoff) m FROM cuts) c "
                f"WHERE oli.ts < c.m AND (oli.cancel_ts IS NULL OR oli.cancel_ts >= c.m) AND i.category IS NOT NULL "
                "GROUP BY i.category "
                f"ORDER BY sum(quantity) DESC, i.category LIMIT {int(n_categories)}").fetchall()]
            categories = sorted(categories)
        hmax = max(int(h) for h in (*horizons, 30))
        end = lambda h: f"e.event_timestamp + INTERVAL {int(h)} DAY"  # noqa: E731
        win = lambda h: f"o.ts < {end(h)}"  # noqa: E731
        # a purchase refunded in full inside the horizon is no purchase of it (features.returns)
        live = lambda h: f"NOT o.refund AND (o.cancel_ts IS NULL OR o.cancel_ts >= {end(h)})"  # noqa: E731
        cols = []
        for h in horizons:
            # spend: net of the horizon's refunds, floored at 0 per customer: a refund of a purchase made
            # before the cutoff can outweigh the horizon's purchases, and a negative value is no LTV target
            # (the tweedie/ZILN models take none); the refunded purchase already counted in the features
            cols += [f"count(o.ts) FILTER (WHERE {win(h)} AND {live(h)}) > 0 AS purchased_{h}d",
                     f"count(o.ts) FILTER (WHERE {win(h)} AND {live(h)}) AS orders_{h}d",
                     f"greatest(coalesce(sum(o.amount) FILTER (WHERE {win(h)}), 0), 0)::DOUBLE AS spend_{h}d"]
        last = staged.data_end
        base = (
            f"SELECT e.one_id, e.event_timestamp, {', '.join(cols)} FROM ent e LEFT JOIN cust k USING (one_id) "
            f"LEFT JOIN od o ON o.cid = k.cid AND o.ts >= e.event_timestamp AND o.ts < e.event_timestamp + INTERVAL {hmax} DAY "
            "GROUP BY e.one_id, e.event_timestamp"
        )
        cat_codes = dict(con.sql("SELECT category, cat FROM cats").fetchall())
        ch = int(category_horizon_days)
        cat_cols = [f"count(l.ts) FILTER (WHERE i.cat = {cat_codes.get(c, -1)}) > 0 AS {label_category_column(c, ch)}"
                    for c in categories]
        cat_sql = (
            f"SELECT e.one_id, e.event_timestamp, {', '.join(cat_cols) or 'NULL AS _none'} FROM ent e LEFT JOIN cust k USING (one_id) "
            "LEFT JOIN (oli l JOIN item i USING (iid)) ON l.cid = k.cid AND l.ts >= e.event_timestamp "
            f"AND l.ts < {end(ch)} AND (l.cancel_ts IS NULL OR l.cancel_ts >= {end(ch)}) GROUP BY e.one_id, e.event_timestamp"
        )
        out = con.sql(
            f"SELECT b.*, c.* EXCLUDE (one_id, event_timestamp) FROM ({base}) b JOIN ({cat_sql}) c "
            "USING (one_id, event_timestamp) ORDER BY event_timestamp, one_id"
        ).df()
    finally:
        con.close()
    out = out.drop(columns=[c for c in ("_none",) if c in out.columns])
    out["event_timestamp"] = pd.to_datetime(out["event_timestamp"], utc=True).astype("datetime64[us, UTC]")
    observed = (pd.Timestamp(last).tz_convert("UTC") - out["event_timestamp"]).dt.total_seconds() / 86400.0
    out["observed_days"] = observed.clip(lower=0.0)
    for h in horizons:
        out[f"complete_{h}d"] = out["observed_days"] >= h
    return out
