"""The rules of the money tables that span columns: refunds in ``orders``, repeated lines in ``order_lines``.

**Refunds.** Shops export a refund as its own row with a negative ``amount`` and its own order id
(``R123``), often naming the order it refunds (``refund_of``, or a header such as ``original_order_id``
or ``原订单号``). A refund is accepted with or without that column; naming an order that is not in the
table does not reject it (the original may predate the export) and the import reports how many do;
the features then treat it as a refund without a known order (settled by customer and day,
:func:`features.returns.settle_returns`). Rejected: ``refund_of`` on a row with a positive amount (a
refund's amount is negative; a positive one would count as a purchase) and a row naming itself. A zero
amount is valid either way.

**Repeated order lines.** An order may hold two lines of one item (two sizes, a promotion split). With
a ``line_no`` column (``line``, ``line_id``, ``行号``, ...) the key is ``(order_id, line_no)`` and a row
repeating one is a duplicate, rejected. Without it, the lines of one ``(order_id, item_id)`` in one import
are merged into one line (:func:`fold_lines`): quantities summed, ``unit_price`` the quantity-weighted
mean (null when a merged line has none: the revenue would be a guess), and the import says how many.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# header names read as refund_of / line_no (compared ignoring case, width and punctuation)
REFUND_HEADERS = ("original_order_id", "original_order", "orig_order_id", "refund_for", "refunded_order_id",
                  "return_of", "returned_order_id", "parent_order_id", "原订单号", "原订单编号", "原单号", "退款原订单号")
LINE_HEADERS = ("line", "line_id", "line_number", "line_item_id", "lineno", "行号", "明细行号", "订单行号")


def order_checks(orders: pd.DataFrame) -> list[tuple[pd.Series, str]]:
    """Rows of typed ``orders`` that contradict themselves, with the reason (see the module doc)."""
    named = orders["refund_of"].notna()
    return [
        (named & (orders["amount"] > 0).fillna(False).astype(bool),
         "refund_of: set on a row with a positive amount (a refund's amount is negative)"),
        (named & (orders["refund_of"] == orders["order_id"]).fillna(False).astype(bool),
         "refund_of: names the row's own order_id"),
    ]


def fold_lines(lines: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Lines sharing ``(order_id, item_id)`` merged into the first of them; ``(lines, rows merged away)``."""
    key = ["order_id", "item_id"]
    again = lines.duplicated(key, keep=False)
    if not again.any():
        return lines, 0
    lines = lines.reset_index(drop=True)
    again = again.reset_index(drop=True)
    rep = lines[again]
    qty = rep["quantity"].astype("float64")
    value = (qty * rep["unit_price"].astype("float64")).groupby([rep["order_id"], rep["item_id"]], sort=False)
    agg = pd.DataFrame({
        "quantity": qty.groupby([rep["order_id"], rep["item_id"]], sort=False).sum(),
        "value": value.sum(min_count=1),
        "priced": rep["unit_price"].notna().groupby([rep["order_id"], rep["item_id"]], sort=False).all(),
    })
    agg["unit_price"] = np.where(agg["priced"], agg["value"] / agg["quantity"].where(agg["quantity"] > 0), np.nan)
    first = lines[~lines.duplicated(key, keep="first")].copy()
    at = pd.MultiIndex.from_frame(first[key]).get_indexer(agg.index)
    rows = first.index[at]
    first.loc[rows, "quantity"] = agg["quantity"].round().astype("int64").to_numpy()
    first.loc[rows, "unit_price"] = agg["unit_price"].to_numpy()
    return first, len(lines) - len(first)
