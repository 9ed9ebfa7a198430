"""Returns (negative amounts) in customer-value data: not purchases, netted from their own time on."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.schema import SchemaError
from features.transactions import features_as_of, labels_after, prepare, spend_by_age
from portrait.cli import app

D0 = pd.Timestamp("2024-01-01", tz="UTC")


def _tx(rows: list[tuple[str, int, float]]) -> pd.DataFrame:
    return prepare(pd.DataFrame([(c, D0 + pd.Timedelta(days=d), a) for c, d, a in rows],
                                columns=["customer_id", "ts", "amount"]))


def _one(tx: pd.DataFrame, day: int) -> pd.Series:
    return features_as_of(tx, D0 + pd.Timedelta(days=day)).set_index("customer_id").loc["a"]


def test_a_return_nets_spend_only_from_its_own_date_on() -> None:
    tx = _tx([("a", 1, 100.0), ("a", 10, 50.0), ("a", 20, -50.0), ("b", 1, 10.0)])
    before = _one(tx, 15)  # the return has not happened yet: nothing is known of it
    assert before["monetary_total"] == 150.0 and before["returned_share"] == 0.0
    after = _one(tx, 25)
    assert after["monetary_total"] == pytest.approx(100.0)
    assert after["returned_share"] == pytest.approx(1 / 3)
    # a return is not a purchase: two orders on two days, the last one on day 10
    assert (after["n_orders"], after["n_days"], after["recency_days"]) == (2.0, 2.0, 15.0)
    assert after["monetary_mean"] == pytest.approx(50.0)
    assert after["first_amount"] == pytest.approx(100 * 2 / 3)  # every purchase day keeps the same share
    assert after["monetary_30d"] == pytest.approx(100.0)
    assert _one(tx, 40)["monetary_30d"] == pytest.approx(0.0)  # days 10-39: 50 bought and 50 refunded
    # the same customer without the return: identical up to day 20
    clean = _tx([("a", 1, 100.0), ("a", 10, 50.0), ("b", 1, 10.0)])
    pd.testing.assert_series_equal(before, _one(clean, 15))


def test_refunds_above_spend_stop_at_zero() -> None:
    tx = _tx([("a", 1, 20.0), ("a", 3, -30.0)])
    f = _one(tx, 5)
    assert f["monetary_total"] == 0.0 and f["returned_share"] == 1.0


def test_labels_are_net_of_returns_inside_the_window() -> None:
    tx = _tx([("a", 1, 100.0), ("a", 12, 80.0), ("a", 15, -30.0), ("b", 1, 40.0), ("b", 12, -40.0),
              ("c", 1, 5.0), ("c", 11, 10.0), ("c", 40, -10.0)])
    rows = pd.DataFrame({"customer_id": ["a", "b", "c"], "cutoff": D0 + pd.Timedelta(days=10)})
    y = labels_after(tx, rows, 20).set_index("customer_id")
    assert y.loc["a", "spend"] == 50.0 and y.loc["a", "any_purchase"]
    assert y.loc["b", "spend"] == 0.0 and not y.loc["b", "any_purchase"]  # a refund is not a purchase
    assert y.loc["c", "spend"] == 10.0  # its refund falls after the window
    assert y["n_orders"].tolist() == [1.0, 0.0, 1.0]


def test_spend_by_age_nets_returns_at_their_age() -> None:
    tx = _tx([("a", 0, 10.0), ("a", 8, 30.0), ("a", 9, -20.0), ("b", 0, 10.0), ("b", 1, -50.0)])
    curve = spend_by_age(tx, D0 + pd.Timedelta(days=14), bin_days=7)
    assert curve["spend"].tolist() == [0.0, 10.0]  # b's refund (more than its repeat spend) floors at 0


def test_ignore_drops_returns_and_refuse_names_the_row() -> None:
    raw = pd.DataFrame({"customer_id": ["a", "a", "b"], "ts": ["2024-01-01", "2024-01-05", "2024-01-02"],
                        "amount": ["10.00", "(4.00)", "3"]})
    assert prepare(raw)["amount"].tolist() == [10.0, -4.0, 3.0]
    assert prepare(raw, returns="ignore")["amount"].tolist() == [10.0, 3.0]
    with pytest.raises(SchemaError, match=r"1 negative amount.*'\(4.00\)' at data row 2"):
        prepare(raw, returns="refuse", origin="tx.csv")
    with pytest.raises(SchemaError, match="returns must be one of"):
        prepare(raw, returns="keep")


def test_negative_quantity_is_only_for_returns() -> None:
    raw = pd.DataFrame({"customer_id": ["a", "a"], "ts": ["2024-01-01", "2024-01-05"],
                        "amount": [10.0, -4.0], "quantity": [2, -1]})
    assert prepare(raw, quantity="quantity")["quantity"].tolist() == [2.0, -1.0]
    raw.loc[0, "quantity"] = -2
    with pytest.raises(SchemaError, match="'quantity' is negative on a purchase.*data row 1"):
        prepare(raw, quantity="quantity", origin="tx.csv")


@pytest.fixture()
def cdnow_table(shared_data, tmp_path) -> pd.DataFrame:
    from portrait.commands.eval_value import load_transactions_file

    src = shared_data / "cdnow" / "CDNOW_master.txt"
    lines = src.read_text().splitlines()
    keep = [lines[0]] + [ln for ln in lines[1:] if int(ln.split()[0]) <= 1500]
    (tmp_path / "slice.txt").write_text("\n".join(keep) + "\n")
    return load_transactions_file(tmp_path / "slice.txt", "customer_id", "date", "amount")


def test_money_text_files_read_like_plain_numbers(cdnow_table, tmp_path) -> None:
    """The same CDNOW transactions written as $1,234.50 or as 1.234,50 € (semicolons) read back identically."""
    from portrait.commands.eval_value import load_transactions_file

    base = cdnow_table.assign(date=cdnow_table["ts"].dt.strftime("%Y-%m-%d"))[["customer_id", "date", "amount"]]
    big = base["amount"] * 37  # CDNOW stays under $1,000: scale some amounts past the thousands
    us = base.assign(amount=[f"${a:,.2f}" for a in big])
    eu = base.assign(amount=[f"{a:,.2f} €".replace(",", " ").replace(".", ",").replace(" ", ".", 1)
                             if a >= 1000 else f"{a:.2f} €".replace(".", ",") for a in big])
    us.to_csv(tmp_path / "us.csv", index=False)
    eu.to_csv(tmp_path / "eu.csv", sep=";", index=False)
    for name in ("us.csv", "eu.csv"):
        got = load_transactions_file(tmp_path / name, "customer_id", "date", "amount")
        np.testing.assert_allclose(got["amount"].to_numpy(), big.round(2).to_numpy(), err_msg=name)


def test_cdnow_with_returns_evaluates_and_counts_them(cdnow_table, tmp_path) -> None:
    """Every tenth purchase partly refunded a week later: the run reads them, nets them and says how many."""
    tx = cdnow_table
    back = tx.iloc[::10].assign(ts=lambda d: d["ts"] + pd.Timedelta(days=7), amount=lambda d: -0.5 * d["amount"])
    both = pd.concat([tx, back], ignore_index=True)
    path = tmp_path / "with_returns.csv"
    both.assign(date=both["ts"].dt.strftime("%Y-%m-%d"))[["customer_id", "date", "amount"]].to_csv(path, index=False)
    run = CliRunner().invoke
    args = ["evaluate", "customer-value", "--transactions", str(path), "--calibration-end", "1997-09-30",
            "--holdout-weeks", "39"]
    res = run(app, args + ["--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    holdout_end = pd.Timestamp("1997-10-01", tz="UTC") + pd.Timedelta(weeks=39)
    assert out["setup"]["returns"] == int((back["ts"] < holdout_end).sum()) > 400  # those the run can see
    assert out["auc"] > 0.65 and out["gini"] > 0.5
    res = run(app, args + ["--returns", "refuse"])
    msg = " ".join(res.output.split())  # rich wraps long lines
    assert res.exit_code == 2 and "negative amount" in msg and "data row" in msg


def test_constant_columns_do_not_reach_the_learners(cdnow_table) -> None:
    from training.customer_value import ValueConfig, fit

    end = pd.Timestamp("1997-10-01", tz="UTC")
    fitted = fit(cdnow_table, end, 273, ValueConfig(candidates=("lgbm",)))
    assert "returned_share" not in fitted.feature_names  # no returns in CDNOW: one value everywhere
    assert "n_orders" in fitted.feature_names


def test_a_same_day_refund_cancels_that_days_purchase() -> None:
    base = [("a", 1, 100.0), ("a", 10, 50.0)]
    plain = _one(_tx(base), 45)
    cancelled = _one(_tx(base + [("a", 20, 40.0), ("a", 20, -40.0)]), 45)
    pd.testing.assert_series_equal(plain, cancelled)  # an order cancelled on the day is no purchase at all
    partly = _one(_tx(base + [("a", 20, 40.0), ("a", 20, -10.0)]), 45)
    assert (partly["n_days"], partly["monetary_total"], partly["last_amount"]) == (3.0, 180.0, 30.0)
    more = _one(_tx(base + [("a", 20, 40.0), ("a", 20, -70.0)]), 45)  # 30 beyond the day's spend stays a return
    assert (more["n_days"], more["monetary_total"]) == (2.0, 120.0)
    # a refund of exactly one of the day's orders cancels that order, not a share of the day
    two = _one(_tx(base + [("a", 20, 40.0), ("a", 20, 30.0), ("a", 20, -30.0)]), 45)
    one = _one(_tx(base + [("a", 20, 40.0)]), 45)
    pd.testing.assert_series_equal(two, one)


def test_a_return_before_the_first_purchase_is_dropped() -> None:
    # it refunds something bought before the data began: it must not take spend off later purchases
    early = _tx([("a", 1, -30.0), ("a", 5, 80.0), ("b", 1, 10.0)])
    assert _one(early, 10)["monetary_total"] == 80.0


def test_returns_neither_start_the_data_nor_extend_the_holdout(cdnow_table, tmp_path) -> None:
    from training.customer_value import ValueConfig, evaluate

    end = pd.Timestamp("1997-09-30", tz="UTC")
    early = pd.DataFrame({"customer_id": ["1"], "ts": [pd.Timestamp("1996-06-01", tz="UTC")], "amount": [-1.0]})
    tx = pd.concat([cdnow_table, early], ignore_index=True)
    a = evaluate(cdnow_table, end, 39, ValueConfig(candidates=("lgbm",)))
    b = evaluate(tx, end, 39, ValueConfig(candidates=("lgbm",)))
    assert a["setup"]["train_cutoffs"] == b["setup"]["train_cutoffs"]  # a refund is no start of the data
    assert (a["auc"], a["gini"]) == (b["auc"], b["gini"])
    cancelled = pd.DataFrame({"customer_id": ["1", "1"], "ts": [pd.Timestamp("1996-06-01", tz="UTC")] * 2,
                              "amount": [30.0, -30.0]})  # a purchase cancelled on its day starts nothing either
    c = evaluate(pd.concat([cdnow_table, cancelled], ignore_index=True), end, 39, ValueConfig(candidates=("lgbm",)))
    assert a["setup"]["train_cutoffs"] == c["setup"]["train_cutoffs"] and a["auc"] == c["auc"]
    short = cdnow_table[cdnow_table["ts"] < pd.Timestamp("1998-03-01", tz="UTC")]
    for late in ([-1.0], [5.0, -5.0]):  # a late refund, a late purchase cancelled on its day
        rows = pd.DataFrame({"customer_id": "1", "ts": pd.Timestamp("1998-08-01", tz="UTC"), "amount": late})
        with pytest.raises(ValueError, match="runs past the last transaction"):
            evaluate(pd.concat([short, rows], ignore_index=True), end, 39)


def test_bad_files_and_options_give_one_clear_line(tmp_path) -> None:
    run = CliRunner().invoke
    path = tmp_path / "shifted.csv"  # unquoted decimal commas in a comma-separated file
    path.write_text("customer_id,date,amount\n1,1997-01-01,11,77\n2,1997-01-02,3,00\n")
    res = run(app, ["evaluate", "customer-value", "--transactions", str(path), "--calibration-end", "1997-01-01"])
    assert res.exit_code == 2 and "data row 1 has more fields than the header" in res.output
    assert res.output.count("\n") == 1  # one line, not wrapped by the console
    res = run(app, ["evaluate", "customer-value", "--transactions", str(path), "--calibration-end", "1997-01-01",
                    "--returns", "keep"])
    assert res.exit_code == 2 and "--returns must be one of net, ignore, refuse" in res.output
    only = tmp_path / "only_returns.csv"
    only.write_text("customer_id,date,amount\n1,1997-01-01,-5\n2,1997-03-01,-3\n")
    res = run(app, ["evaluate", "customer-value", "--transactions", str(only), "--calibration-end", "1997-01-31",
                    "--holdout-weeks", "2"])
    assert res.exit_code == 2 and "only returns" in res.output


def test_ignored_returns_are_counted() -> None:
    raw = pd.DataFrame({"customer_id": ["a", "a"], "ts": ["2024-01-01", "2024-01-05"], "amount": [10.0, -4.0]})
    assert prepare(raw, returns="ignore").attrs["returns_ignored"] == 1
    with pytest.raises(SchemaError, match=r"e\.g\. -4\.0 at data row 2"):  # a number, not np.float64(-4.0)
        prepare(raw, returns="refuse")
    raw.loc[1, "amount"] = -1234567.89
    with pytest.raises(SchemaError, match=r"e\.g\. -1234567\.89 at"):  # every digit, not -1.23457e+06
        prepare(raw, returns="refuse")
