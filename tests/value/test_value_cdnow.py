"""CDNOW loader and ``portrait evaluate customer-value`` on a small slice of the real file."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from portrait.cli import app


@pytest.fixture()
def cdnow_slice(shared_data, tmp_path):
    src = shared_data / "cdnow" / "CDNOW_master.txt"
    lines = src.read_text().splitlines()
    keep = [lines[0]] + [ln for ln in lines[1:] if int(ln.split()[0]) <= 1500]  # the first 1,500 customers
    path = tmp_path / "cdnow_slice.txt"
    path.write_text("\n".join(keep) + "\n")
    return path


def test_cdnow_eval_json_shape_and_sanity(cdnow_slice) -> None:
    res = CliRunner().invoke(app, ["evaluate", "customer-value", "--transactions", str(cdnow_slice),
                                   "--calibration-end", "1997-09-30", "--holdout-weeks", "39", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    for key in ("auc", "spearman", "gini", "top_decile_capture", "total_ratio", "model"):
        assert key in out
    assert {"bgnbd_gg_lifetimes", "recency_only"} <= set(out["baselines"])
    assert out["setup"]["customers"] == 1500
    # every training label window ends by the calibration end: no holdout data in training
    h = out["setup"]["train_horizon_days"]
    assert all(pd.Timestamp(c) + pd.Timedelta(days=h) <= pd.Timestamp("1997-10-01") for c in out["setup"]["train_cutoffs"])
    assert out["auc"] > 0.65 and out["gini"] > 0.5  # small slice: noisy, but far above random
    # the default ranks buyers by the unweighted ensemble (candidates' P(buy) with BG/NBD), chosen by nobody
    assert out["model"].endswith("p_buy blend+bgnbd"), out["model"]
    assert 0.5 < out["total_ratio"] < 2.0


def test_cdnow_eval_rejects_a_holdout_past_the_data(cdnow_slice) -> None:
    res = CliRunner().invoke(app, ["evaluate", "customer-value", "--transactions", str(cdnow_slice),
                                   "--calibration-end", "1998-03-31", "--holdout-weeks", "39"])
    assert res.exit_code == 2
    assert "runs past the last transaction" in res.output


def test_csv_with_missing_column_names_it(tmp_path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("cust,when,amount\n1,2020-01-01,3.0\n")
    res = CliRunner().invoke(app, ["evaluate", "customer-value", "--transactions", str(path),
                                   "--calibration-end", "2020-06-30", "--holdout-weeks", "4"])
    assert res.exit_code == 2
    assert "customer_id" in res.output


@pytest.mark.parametrize("end", ["2019-12-01", "2020-08-01"])  # before any purchase; nobody has bought twice yet
def test_eval_with_an_empty_age_curve_names_the_calibration_end(tmp_path, end) -> None:
    days = pd.date_range("2020-01-01", periods=300, freq="D")
    path = tmp_path / "once.csv"  # every customer buys exactly once
    pd.DataFrame({"customer_id": [f"c{i}" for i in range(300)], "date": days.strftime("%Y-%m-%d"),
                  "amount": 10.0}).to_csv(path, index=False)
    res = CliRunner().invoke(app, ["evaluate", "customer-value", "--transactions", str(path),
                                   "--calibration-end", end, "--holdout-weeks", "4"])
    assert res.exit_code == 2, res.output
    assert "--calibration-end" in res.output and "Traceback" not in res.output
