"""Check and normalize a transactions frame for :mod:`features.transactions` (re-exported there)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.amounts import parse_amounts
from features.schema import SchemaError
from features.timeparse import parse_times

RETURNS = ("net", "ignore", "refuse")


def prepare(
    tx: pd.DataFrame,
    customer: str = "customer_id",
    ts: str = "ts",
    amount: str = "amount",
    quantity: str | None = None,
    origin: str = "<transactions>",
    returns: str = "net",
) -> pd.DataFrame:
    """Check and normalize transactions to ``customer_id, ts, amount[, quantity]``.

    ``customer_id`` becomes a string, ``ts`` a UTC timestamp (dates are midnight UTC),
    ``amount`` a float read by :func:`features.amounts.parse_amounts` (currency symbols,
    thousands separators and decimal commas are understood, one convention per column).

    A negative amount is a return or refund. ``returns="net"`` (the default) keeps it: it is
    not a purchase (no order, no purchase day) but takes its amount off the customer's spend
    from its own time on, see :func:`features.transactions.features_as_of`; ``"ignore"`` drops
    those rows and ``"refuse"`` raises. Raises :class:`SchemaError` naming ``origin``, the
    column and a bad value when a column is missing or holds unreadable or missing values.
    """
    if returns not in RETURNS:
        raise SchemaError(f"returns must be one of {', '.join(RETURNS)}; got {returns!r}")
    cols = {"customer_id": customer, "ts": ts, "amount": amount}
    if quantity is not None:
        cols["quantity"] = quantity
    missing = [src for src in cols.values() if src not in tx.columns]
    if missing:
        raise SchemaError(f"{origin}: missing column(s) {missing}; found {list(tx.columns)}")
    if tx.empty:
        raise SchemaError(f"{origin}: no transactions (no data rows)")
    tx = tx.reset_index(drop=True)
    out = pd.DataFrame({"customer_id": tx[customer].astype("string")})
    if out["customer_id"].isna().any():
        row = int(np.flatnonzero(out["customer_id"].isna().to_numpy())[0])
        raise SchemaError(f"{origin}: column {customer!r} has missing customer ids (first at data row {row + 1})")
    try:
        stamp = parse_times(tx[ts], origin, ts)
        for name in [c for c in ("amount", "quantity") if c in cols]:
            out[name] = parse_amounts(tx[cols[name]], origin, cols[name]).to_numpy()
    except ValueError as exc:
        raise SchemaError(str(exc)) from None
    out["ts"] = stamp.astype("datetime64[us, UTC]").to_numpy()
    out = out[["customer_id", "ts", "amount"] + (["quantity"] if quantity is not None else [])]
    back = out["amount"] < 0
    if "quantity" in out and ((out["quantity"] < 0) & ~back).any():
        row = int(np.flatnonzero(((out["quantity"] < 0) & ~back).to_numpy())[0])
        raise SchemaError(f"{origin}: column {quantity!r} is negative on a purchase (amount >= 0): "
                          f"{_show(tx[quantity].iloc[row])} at data row {row + 1}; only returns may have negative quantities")
    if back.any() and returns == "refuse":
        row = int(np.flatnonzero(back.to_numpy())[0])
        raise SchemaError(f"{origin}: column {amount!r} holds {int(back.sum())} negative amount(s) (returns), "
                          f"e.g. {_show(tx[amount].iloc[row])} at data row {row + 1}; returns='net' (CLI --returns net, the "
                          "default) reads them as returns, 'ignore' drops them")
    if back.any() and returns == "ignore":
        out = out[~back]
    out = out.reset_index(drop=True)
    out.attrs["returns_ignored"] = int(back.sum()) if returns == "ignore" else 0
    return out


def _show(value: object) -> str:
    """A cell as the user wrote it: text quoted, numbers plain (not ``np.float64(-5.0)``)."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return repr(float(value)) if isinstance(value, (float, np.floating)) else repr(str(value))
