"""A negative or too large --seed is a usage error naming --seed (it was numpy's 'expected non-negative
integer', blamed on the input file after the work had started)."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner


@pytest.fixture()
def files(tmp_path):
    inter = tmp_path / "inter.csv"
    pd.DataFrame({"user": [1, 1, 2, 2, 3], "item": [1, 2, 1, 3, 2]}).to_csv(inter, index=False)
    tx = tmp_path / "tx.csv"
    pd.DataFrame({"customer_id": ["a", "b"], "date": ["2024-01-01", "2024-02-01"], "amount": [1.0, 2.0]}).to_csv(tx, index=False)
    return inter, tx


@pytest.mark.parametrize("seed", ["-1", "4294967296"])
def test_seed_out_of_numpy_range_is_refused_naming_the_option(files, seed, monkeypatch, tmp_path):
    from portrait.cli import app

    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(tmp_path / "data"))
    inter, tx = files
    for args in (["evaluate", "recommender", "-i", str(inter)], ["evaluate", "lookalike", "-i", str(inter)],
                 ["evaluate", "customer-value", "--transactions", str(tx), "--calibration-end", "2024-01-15"],
                 ["train", "lookalike"]):
        r = CliRunner().invoke(app, [*args, "--seed", seed])
        assert r.exit_code == 2 and "--seed" in r.output and "Traceback" not in r.output, (args, r.output)
