"""The cohort age curve behind portrait's horizon scaling: spend_by_age and AgeCurve on hand-built data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.transactions import prepare, spend_by_age
from models.btyd import AgeCurve


def _tx(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return prepare(pd.DataFrame(rows, columns=["customer_id", "ts", "amount"]))


def test_spend_by_age_leaves_out_first_day_and_anything_after_end() -> None:
    tx = _tx([("a", "2020-01-01", 100.0), ("a", "2020-01-01", 5.0), ("a", "2020-01-03", 10.0),
              ("a", "2020-01-09", 20.0), ("b", "2020-01-02", 50.0), ("a", "2020-02-01", 999.0)])
    out = spend_by_age(tx, pd.Timestamp("2020-01-15", tz="UTC"))
    assert out["spend"].tolist() == [10.0, 20.0]  # age 2 in bin 0, age 8 in bin 1; day 0 and Feb left out
    # a: ages 1..13 observed (13 days), b: ages 1..12 (12 days); bin 0 holds ages 1-6, bin 1 ages 7-13
    assert out["exposure_days"].tolist() == [12.0, 13.0]


def test_age_curve_recovers_a_power_law_and_integrates_it() -> None:
    age = np.arange(0, 52 * 7, 7, dtype=float)
    rate = 2.0 * ((age + 3.5) / 7) ** -0.3
    bins = pd.DataFrame({"age_start_days": age, "spend": rate * 700, "exposure_days": np.full(len(age), 700.0)})
    curve = AgeCurve(min_age_days=14).fit(bins)
    assert curve.k_ == pytest.approx(-0.3, abs=1e-6) and curve.c_ == pytest.approx(2.0, rel=1e-6)
    days = np.arange(100, 200) + 0.5  # midpoint rule over [100, 200)
    assert curve.expected([100.0], 100)[0] == pytest.approx(curve.rate(days).sum(), rel=1e-4)
    # older customers and shorter horizons expect less; a longer horizon more
    assert curve.expected([300.0], 100)[0] < curve.expected([100.0], 100)[0] < curve.expected([100.0], 200)[0]


def test_age_curve_falls_back_to_a_flat_rate_on_short_histories() -> None:
    bins = pd.DataFrame({"age_start_days": [0.0, 7.0], "spend": [30.0, 10.0], "exposure_days": [60.0, 20.0]})
    curve = AgeCurve().fit(bins)
    assert curve.k_ == 0.0 and curve.expected([5.0], 10)[0] == pytest.approx(5.0)


def test_age_curve_without_repeat_spend_says_so() -> None:
    bins = pd.DataFrame({"age_start_days": [0.0, 7.0], "spend": [0.0, 0.0], "exposure_days": [60.0, 20.0]})
    with pytest.raises(ValueError, match="no repeat spend"):
        AgeCurve().fit(bins)


def test_value_config_rejects_an_unknown_scaling() -> None:
    from training.customer_value import ValueConfig

    assert ValueConfig(scaling="bgnbd").scaling == "bgnbd"
    with pytest.raises(ValueError, match="scaling='ratio'.*age_curve"):
        ValueConfig(scaling="ratio")
    assert ValueConfig().buy == "ensemble" and ValueConfig(buy="validated").buy == "validated"
    with pytest.raises(ValueError, match="buy='best'.*ensemble"):
        ValueConfig(buy="best")


def test_benchmark_rejects_an_unknown_part(capsys, monkeypatch) -> None:
    import sys

    from benchmarks import customer_value as bench

    for parts in ("cdnow,speed", ","):
        monkeypatch.setattr(sys, "argv", ["customer_value", "--parts", parts])
        with pytest.raises(SystemExit) as exc:
            bench.main()
        assert exc.value.code == 2 and "--parts" in capsys.readouterr().err
