"""The time split is purged: no training or validation label window runs into the holdout's.

With monthly snapshots and H = 90 (churn) or 180 days (LTV), the cutoffs just before the holdout have
label windows ``[c, c + H)`` that end after the holdout cutoff: the model (and its early stopping and
calibration) learned outcomes from the very period its holdout AUC/Gini and promotion gate score.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest

JOBS = {"churn": 90, "ltv": 180, "propensity": 30}


def monthly(end: str, n: int) -> list[pd.Timestamp]:
    """``n`` snapshots 30 days apart up to ``end`` (the demo's spacing)."""
    last = pd.Timestamp(end, tz="UTC")
    return sorted(last - pd.Timedelta(days=30 * i) for i in range(n))


def assert_purged(train: pd.Series, val: pd.Series, test: pd.Series, horizon: int) -> None:
    """Every train/validation row's label window ends on or before the (single) holdout cutoff."""
    assert test.nunique() == 1 and len(train) and len(val)
    hold = test.iloc[0]
    for part in (train, val):
        assert (part + pd.Timedelta(days=horizon) <= hold).all(), (sorted(part.unique()), hold)
    assert train.max() < val.min()  # validation is newer than every training cutoff


@pytest.mark.parametrize("job, horizon", sorted(JOBS.items()))
def test_train_and_validation_windows_end_by_the_holdout_cutoff(job, horizon) -> None:
    """The demo's 16 snapshots, 30 days apart: each job's split keeps its windows out of the holdout's."""
    from training.datasets import TrainingSet, training_cutoffs

    cuts = training_cutoffs(monthly("2026-07-01", 16), horizon, None, 6)
    frame = pd.DataFrame({"one_id": "a", "event_timestamp": pd.Series(cuts, dtype="datetime64[us, UTC]")})
    train, val, test = TrainingSet(frame, [], [], cuts, horizon).split()
    assert_purged(train["event_timestamp"], val["event_timestamp"], test["event_timestamp"], horizon)
    end = pd.Timestamp("2026-07-01", tz="UTC")
    assert test["event_timestamp"].iloc[0] == max(c for c in monthly("2026-07-01", 16) if c + pd.Timedelta(days=horizon) <= end)
    # max_cutoffs (6): holdout, validation and the 4 newest purged train cutoffs; LTV's 16 snapshots hold 3
    assert len(cuts) == (5 if job == "ltv" else 6)


def test_split_purges_cutoffs_it_was_given() -> None:
    """A TrainingSet holding every cutoff still splits purged: the ones in the holdout's window are dropped."""
    from training.datasets import TrainingSet

    cuts = monthly("2026-04-01", 10)
    frame = pd.DataFrame({"one_id": "a", "event_timestamp": pd.Series(cuts, dtype="datetime64[us, UTC]")})
    train, val, test = TrainingSet(frame, [], [], cuts, 90).split()
    assert_purged(train["event_timestamp"], val["event_timestamp"], test["event_timestamp"], 90)
    assert val["event_timestamp"].iloc[0] == pd.Timestamp("2026-01-01", tz="UTC")  # 2026-04-01 - 90 d
    with pytest.raises(ValueError, match="2 older ones whose 90-day label windows end by it"):
        TrainingSet(frame, [], [], cuts[-4:], 90).split()  # only 2026-01-01 ends by the holdout


def test_max_cutoffs_counts_holdout_validation_and_train() -> None:
    from training.datasets import training_cutoffs

    cuts = monthly("2026-07-01", 16)
    got = training_cutoffs(cuts, 90, None, 3)
    assert [str(c.date()) for c in got] == ["2025-12-03", "2026-01-02", "2026-04-02"]
    older = [c for c in cuts if c <= pd.Timestamp("2025-12-03", tz="UTC")]  # every purged train cutoff
    assert len(training_cutoffs(cuts, 90, None, 100)) == 2 + len(older)


@pytest.mark.parametrize("job, horizon", sorted(JOBS.items()))
def test_the_old_minimum_is_refused_and_the_advised_list_trains(job, horizon) -> None:
    """The old minimum (3 snapshots a full window before the last) is refused, with an --as-of list that
    passes the purged check; the demo's old 11 snapshots are too few for LTV."""
    from training.datasets import training_cutoffs

    end = pd.Timestamp("2026-07-01", tz="UTC")
    n_old = next(n for n in range(3, 40) if len([c for c in monthly("2026-07-01", n)
                                                 if c + pd.Timedelta(days=horizon) <= end]) >= 3)
    if horizon > 30:  # propensity's 30-day window: the old minimum (4 monthly snapshots) already is purged
        with pytest.raises(ValueError, match=f"{horizon}\\+ days before the holdout") as err:
            training_cutoffs(monthly("2026-07-01", n_old), horizon, None, 6)
        advised = re.search(r"--as-of ([0-9,-]+)`", str(err.value)).group(1).split(",")
        got = training_cutoffs([pd.Timestamp(d, tz="UTC") for d in advised], horizon, None, 6)
        assert len(got) >= 3 and advised[-1] == "2026-07-01"
    if job == "ltv":
        with pytest.raises(ValueError, match="portrait features build --as-of"):
            training_cutoffs(monthly("2026-07-01", 11), horizon, None, 6)
