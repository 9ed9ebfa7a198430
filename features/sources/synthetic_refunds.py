"""Synthetic refunds: a small share of past orders refunded a few days later, so the demo exercises refunds.

A refund is an ``orders`` row of its own (order id ``R`` + the order's hex, negative amount, no lines), as
shops export them (:mod:`features.schema_orders`): three in four refund the whole order, the rest a part;
four in five name their order in ``refund_of``, the others do not (settled by customer and day). Drawn
from their own random stream (``SeedSequence(seed, spawn_key=(2, block))``), so every other table and
the ground truth (which counts purchases, gross) are the same bytes as without refunds.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from features.sources.synthetic_config import DAY_US, GeneratorConfig

REFUND_SHARE = 0.02  # of past orders with a positive amount
FULL_SHARE = 0.75  # of refunds: the whole order (else 20-80% of it)
NAMED_SHARE = 0.8  # of refunds: naming the order they refund


def add_refunds(config: GeneratorConfig, block: int, orders: pa.Table, now_us: int) -> pa.Table:
    """``orders`` with refund rows added before ``now_us``, in time order."""
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(2, block)))
    n = len(orders)
    amount = orders["amount"].to_numpy(zero_copy_only=False)
    ts = orders["ts"].cast(pa.int64()).to_numpy(zero_copy_only=False)
    # every draw is made for every order, so a refund does not depend on which others fall before now
    hit, delay = rng.random(n) < REFUND_SHARE, rng.integers(DAY_US, 15 * DAY_US, n)
    full, share, named = rng.random(n) < FULL_SHARE, rng.uniform(0.2, 0.8, n), rng.random(n) < NAMED_SHARE
    pick = np.flatnonzero(hit & (amount > 0) & (ts + delay < now_us))
    if not len(pick):
        return orders
    rows = orders.take(pa.array(pick))
    back = np.where(full[pick], amount[pick], np.round(amount[pick] * share[pick], 2))
    refunds = pa.table({
        "order_id": pc.binary_join_element_wise("R", pc.utf8_slice_codeunits(rows["order_id"], 1), ""),
        "source": rows["source"], "record_id": rows["record_id"],
        "ts": pa.array(ts[pick] + delay[pick], type=pa.int64()).cast(orders.schema.field("ts").type),
        "amount": pa.array(-back, type=pa.float64()), "discount": pa.array(np.zeros(len(pick))),
        "coupon_used": pa.array(np.zeros(len(pick), dtype=bool)), "channel": rows["channel"],
        "store_id": rows["store_id"],
        "refund_of": pa.array(rows["order_id"].to_pylist(), mask=~named[pick], type=pa.string()),
    }, schema=orders.schema)
    both = pa.concat_tables([orders, refunds])
    return both.take(pc.sort_indices(both, [("ts", "ascending")]))
