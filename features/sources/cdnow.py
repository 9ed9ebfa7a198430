"""CDNOW transactions (Fader, Hardie & Lee) as portrait orders.

The file is whitespace-separated with a header: customer id, date (YYYYMMDD),
number of CDs, dollar value. :func:`load_transactions` gives the plain
``customer_id, date, amount, quantity`` frame that ``portrait evaluate
customer-value`` reads; :func:`load_tables` gives canonical tables under source ``cdnow``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.schema import SchemaError


def load_transactions(path: Path) -> pd.DataFrame:
    """Return ``customer_id, date, amount, quantity``, one row per line of the file."""
    path = Path(path)
    if not path.exists():
        raise SchemaError(f"{path}: no such file")
    df = pd.read_csv(path, sep=r"\s+", dtype=str)
    expected = ["customer_id", "date", "number_of_cds", "dollar_value"]
    missing = [c for c in expected if c not in df.columns]
    if missing:
        raise SchemaError(f"{path}: missing column(s) {missing}; found {list(df.columns)}")
    return pd.DataFrame({
        "customer_id": df["customer_id"].str.lstrip("0").replace("", "0"),
        "date": pd.to_datetime(df["date"], format="%Y%m%d", utc=True).astype("datetime64[us, UTC]"),
        "amount": df["dollar_value"].astype("float64"),
        "quantity": df["number_of_cds"].astype("int64"),
    })


def load_tables(path: Path) -> dict[str, pd.DataFrame]:
    """Canonical ``identity_records`` and ``orders`` (raw, before validation)."""
    tx = load_transactions(path)
    first = tx.groupby("customer_id")["date"].max()
    ident = pd.DataFrame({"source": "cdnow", "record_id": first.index, "member_id": "cdnow-" + first.index,
                          "observed_at": first.to_numpy()})
    orders = pd.DataFrame({
        "order_id": "cdnow-" + pd.RangeIndex(len(tx)).astype(str),
        "source": "cdnow",
        "record_id": tx["customer_id"],
        "ts": tx["date"],
        "amount": tx["amount"],
        "discount": 0.0,
        "channel": "web",
    })
    return {"identity_records": ident, "orders": orders}
