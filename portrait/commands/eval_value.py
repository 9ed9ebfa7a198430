"""``portrait evaluate customer-value``: portrait's value model vs BG/NBD on any transactions file.

Reads a customer id / date / amount file (CDNOW's whitespace format, or any CSV/TSV/Parquet
with ``--customer-col/--date-col/--amount-col``), trains only on transactions up to
``--calibration-end`` and scores the next ``--holdout-weeks``. The JSON's top level holds
the default model's figures (auc, spearman, gini, top_decile_capture, total_ratio, model),
``baselines`` the peers measured in the same run.
"""

from __future__ import annotations

from pathlib import Path

import typer

from portrait.commands._common import console, emit_json, fail, progress


def load_transactions_file(path: Path, customer: str, date: str, amount: str, returns: str = "net") -> "object":
    """Transactions as ``customer_id, ts, amount[, quantity]`` from CDNOW's format or a table file.

    Negative amounts are returns, read as ``returns`` says (see :func:`features.transactions.prepare`).
    """
    import pandas as pd

    from features.schema import SchemaError
    from features.transactions import prepare

    if not path.exists():
        raise SchemaError(f"{path}: no such file")
    with open(path, "rb") as fh:
        head = fh.readline().decode("utf-8", "replace").split()
    if head[:2] == ["customer_id", "date"] and "dollar_value" in head:  # CDNOW_master.txt
        from features.sources.cdnow import load_transactions

        return prepare(load_transactions(path), ts="date", amount="amount", quantity="quantity", origin=str(path),
                       returns=returns)
    from features.io import read_frame

    df = read_frame(path)  # dates: ISO, YYYYMMDD, epochs or one inferred format (features.timeparse)
    return prepare(df, customer=customer, ts=date, amount=amount, origin=str(path), returns=returns)


def register(app: typer.Typer) -> None:
    """Add ``customer-value`` to ``app`` (the ``evaluate`` group)."""

    @app.command("customer-value")
    def customer_value(
        transactions: Path = typer.Option(..., "--transactions", help="Transactions file (CDNOW txt, CSV, TSV or Parquet)."),
        calibration_end: str = typer.Option(..., "--calibration-end", help="Last day of the calibration period (YYYY-MM-DD, included)."),
        holdout_weeks: int = typer.Option(39, "--holdout-weeks", min=1, help="Weeks after the calibration end to score."),
        customer_col: str = typer.Option("customer_id", help="Customer id column (table files)."),
        date_col: str = typer.Option("date", help="Date/timestamp column (table files)."),
        amount_col: str = typer.Option("amount", help="Amount column (table files): numbers, or money text such as "
                                       "$1,234.50 or 12,50 EUR (one decimal mark per column)."),
        returns: str = typer.Option("net", help="Negative amounts (returns, refunds): 'net' takes them off the "
                                    "customer's spend from their date on, 'ignore' drops them, 'refuse' stops."),
        seed: int = typer.Option(0, min=0, max=2**32 - 1, help="Random seed of the learners."),
        json_out: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
    ) -> None:
        """Train on the calibration period only, score the holdout: AUC, Spearman, Gini, top decile, totals."""
        import pandas as pd

        from features.schema import SchemaError
        from features.transactions_prepare import RETURNS
        from training.customer_value import ValueConfig, evaluate

        if returns not in RETURNS:
            fail(f"--returns must be one of {', '.join(RETURNS)}; got {returns!r}")
        try:  # ISO only: 05/09/1997 would silently mean May 9 to some and 5 September to others
            end = pd.to_datetime(calibration_end, format="ISO8601").tz_localize("UTC")
        except (ValueError, TypeError):
            fail(f"--calibration-end: cannot parse {calibration_end!r} as a date (YYYY-MM-DD)")
        try:
            tx = load_transactions_file(transactions, customer_col, date_col, amount_col, returns)
            with progress("customer value", total=None) as advance:
                result = evaluate(tx, end, holdout_weeks, ValueConfig(seed=seed), progress=advance)
        except (SchemaError, ValueError, KeyError) as exc:
            fail(str(exc))
        if json_out:
            emit_json(result)
            return
        from rich.table import Table

        cols = ("auc", "spearman", "gini", "top_decile_capture", "total_ratio")
        table = Table("model", *cols)
        rows = {f"portrait ({result['model']})": result, **result["baselines"]}
        for name, r in rows.items():
            table.add_row(name, *("-" if r.get(c) is None else f"{r[c]:.3f}" for c in cols))
        console.print(table)
