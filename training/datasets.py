"""Training sets for churn, LTV and propensity: Feast point-in-time features + labels after each cutoff.

1. :func:`training_cutoffs`: the feature snapshots (``<data>/features/meta.json``) whose label
   window ``[c, c + H)`` ends on or before ``as_of`` (labels never come from after the data), purged:
   the newest is the holdout, and validation and training use only cutoffs whose window ends by the
   holdout cutoff (``c + H <= holdout``), so no model sees an outcome from the holdout's window.
2. :func:`entities`: the population of each cutoff (every customer in that snapshot).
3. :func:`build`: labels from ``features.labels.future_labels`` (orders with ``ts >= c``), then
   features from Feast ``get_historical_features`` for the model's FeatureService, with the
   labels carried through the entity frame. Features come only from snapshots at or before
   ``c`` (Feast's point-in-time join), labels only from after ``c``.
4. :meth:`TrainingSet.split`: time-based, purged split by cutoff — newest = test (the promotion
   holdout), the newest whose window ends by the holdout = validation (early stopping, calibration,
   LTV's candidate choice), older ones = train. Train and validation windows may overlap each other:
   that can only make validation look better than it is (more trees, a steeper calibration), which the
   purged holdout then measures and gates; purging it too would cost another H of history per job.

:func:`truth_by_one_id` maps the synthetic generator's ground truth to OneIDs for scoring
a model against the true future (majority person of each OneID's records).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

KEYS = ["one_id", "event_timestamp"]


@dataclass(frozen=True)
class Paths:
    data_dir: str  # Settings.data_dir
    mlflow_uri: str  # Settings.mlflow_uri
    mlflow_artifacts: str | None  # Settings.mlflow_artifacts (None: the tracking server's default)
    # OneID's HMAC key: labels join raw orders to record ids that were phones/emails (stored hashed);
    # never printed nor logged (registry.SECRET_FIELDS)
    hmac_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, s: Any) -> "Paths":
        artifacts = None if s.mlflow_artifacts is None else str(s.mlflow_artifacts)
        return cls(str(s.data_dir), s.mlflow_uri, artifacts, getattr(s, "hmac_key", None))

    @property
    def features_dir(self) -> Path:
        return Path(self.data_dir) / "features"


@dataclass(frozen=True)
class DatasetConfig:
    service: str = "churn_v1"  # Feast FeatureService the model reads (training and serving alike)
    horizon_days: int = 90  # label window after each cutoff
    as_of: str | None = None  # last date labels may use; None = the newest feature snapshot
    max_cutoffs: int = 6  # cutoffs used: holdout, validation and the newest max_cutoffs - 2 train ones (>= 3)
    active_window_days: float | None = None  # keep customers with an order this recently (churn's population)
    max_rows_per_cutoff: int | None = None  # random sample per cutoff for speed; None keeps all
    seed: int = 0

    def __post_init__(self) -> None:
        if self.as_of is not None:
            from features.build import parse_iso

            parse_iso(self.as_of, "as_of")  # ISO 8601 only, as on the command line
        for name, low in (("horizon_days", 1), ("max_cutoffs", 3)):
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be at least {low}, got {getattr(self, name)!r}")
        for name in ("active_window_days", "max_rows_per_cutoff"):
            if getattr(self, name) is not None and not getattr(self, name) > 0:
                raise ValueError(f"{name} must be above 0 (or null for none), got {getattr(self, name)!r}")


def task_params(cfg: DatasetConfig) -> dict[str, Any]:
    """The logged params (``log_config``'s flat names) that define what a model predicts: the promotion
    gate compares a challenger only with a champion trained for the same label horizon and population."""
    return {"dataset.horizon_days": cfg.horizon_days, "dataset.active_window_days": cfg.active_window_days}


@dataclass
class TrainingSet:
    frame: pd.DataFrame  # one_id, event_timestamp, features, labels
    features: list[str]
    labels: list[str]
    cutoffs: list[pd.Timestamp]  # oldest first; the newest is the holdout
    horizon_days: int  # label window [c, c + H) of every row

    def split(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """(train, validation, test) by cutoff, purged: test = newest; validation = the newest cutoff whose
        label window ends by the test cutoff, train = older such cutoffs (see :func:`purged`)."""
        parts = purged(self.cutoffs, self.horizon_days)
        if parts is None:
            raise ValueError(f"need a holdout cutoff and 2 older ones whose {self.horizon_days}-day label windows "
                             f"end by it (validation, train), got {[str(c.date()) for c in self.cutoffs]}")
        train, val, test = parts
        ts = self.frame["event_timestamp"]
        return self.frame[ts.isin(train)], self.frame[ts == val], self.frame[ts == test]


def purged(cutoffs: list[pd.Timestamp], horizon_days: int
           ) -> tuple[list[pd.Timestamp], pd.Timestamp, pd.Timestamp] | None:
    """``(train, validation, holdout)``: holdout = the newest cutoff; validation and train (older) are the
    cutoffs whose label window ``[c, c + H)`` ends on or before the holdout cutoff; None if fewer than 2.

    Without the purge, monthly snapshots with H = 90 or 180 days had training and validation labels from
    inside the holdout's own window: the model learned the outcomes its holdout AUC/Gini and gate scored.
    """
    if not cutoffs:
        return None
    hold = max(cutoffs)
    fit = sorted(c for c in cutoffs if c + pd.Timedelta(days=horizon_days) <= hold)
    return (fit[:-1], fit[-1], hold) if len(fit) >= 2 else None


def feature_cutoffs(features_dir: Path) -> list[pd.Timestamp]:
    """Every snapshot in ``customer_features.parquet`` (from the features meta), oldest first."""
    from features.build import read_meta

    return sorted(pd.Timestamp(c).tz_convert("UTC") for c in read_meta(Path(features_dir))["cutoffs"])


def training_cutoffs(cutoffs: list[pd.Timestamp], horizon_days: int, as_of: pd.Timestamp | None,
                     max_cutoffs: int) -> list[pd.Timestamp]:
    """The cutoffs a job uses, oldest first: the holdout (the newest whose label window ends by ``as_of``,
    default the newest cutoff), then validation and the newest ``max_cutoffs - 2`` train cutoffs, purged
    (:func:`purged`: their windows end by the holdout cutoff). Cutoffs in between are not used."""
    if not cutoffs:
        raise ValueError("no feature snapshots; run 'portrait features build' first")
    end = as_of if as_of is not None else max(cutoffs)
    h = pd.Timedelta(days=horizon_days)
    ok = sorted(c for c in cutoffs if c + h <= end)
    parts = purged(ok, horizon_days)
    if parts is None:  # train, validation, holdout: fewer failed later, without saying what to build
        before = [c for c in ok if c + h <= ok[-1]] if ok else []
        raise ValueError(f"{len(ok) or 'no'} feature snapshot{'' if len(ok) == 1 else 's'} "
                         f"{'has' if len(ok) == 1 else 'have'} a full {horizon_days}-day label window before "
                         f"{end.date()}"
                         + (f", {len(before) or 'none'} of them {horizon_days}+ days before the newest of those "
                            f"({ok[-1].date()}, the holdout)" if ok else "")
                         + f"; snapshots: {[str(c.date()) for c in cutoffs]}; training needs a holdout snapshot "
                         f"{horizon_days}+ days before the last one and at least 2 more {horizon_days}+ days before "
                         "the holdout (validation and train: a label window running into the holdout's would "
                         "leak its outcomes): build monthly ones, e.g. `portrait features "
                         f"build --as-of {_monthly_example(end, horizon_days)}` then `portrait features materialize`")
    train, val, hold = parts
    return train[-(max_cutoffs - 2):] + [val, hold]


def _monthly_example(end: pd.Timestamp, horizon_days: int) -> str:
    """The fewest month starts up to ``end`` (then ``end`` itself) that train: an --as-of for the error message."""
    end = (end.tz_localize(None) if end.tzinfo else end).normalize()  # the list's last snapshot: the check's end
    last = end.to_period("M")
    months = int(np.ceil(2 * horizon_days / 31))  # about the holdout's and validation's windows; grown until it trains
    while True:
        days = [pd.Timestamp(f"{last - i}-01") for i in range(months, -1, -1)]
        days += [] if days[-1] == end else [end]
        if purged([c for c in days if c + pd.Timedelta(days=horizon_days) <= end], horizon_days) is not None:
            return ",".join(str(d.date()) for d in days)
        months += 1


def entities(features_dir: Path, cutoffs: list[pd.Timestamp], cfg: DatasetConfig) -> pd.DataFrame:
    """``one_id, event_timestamp`` of every customer in each snapshot (filtered/sampled per ``cfg``)."""
    cols = KEYS + (["recency_days"] if cfg.active_window_days is not None else [])
    df = pd.read_parquet(Path(features_dir) / "customer_features.parquet", columns=cols)
    df["event_timestamp"] = pd.to_datetime(df["event_timestamp"], utc=True).astype("datetime64[us, UTC]")
    df = df[df["event_timestamp"].isin(cutoffs)]
    if cfg.active_window_days is not None:
        df = df[df["recency_days"] <= cfg.active_window_days]
    if cfg.max_rows_per_cutoff:
        df = df.groupby("event_timestamp", group_keys=False).apply(
            lambda g: g.sample(min(len(g), cfg.max_rows_per_cutoff), random_state=cfg.seed))
    return df[KEYS].reset_index(drop=True)


def store_for(paths: Paths) -> Any:
    from features.store import open_store

    return open_store(Path(paths.data_dir))


def historical(paths: Paths, service: str, entity_df: pd.DataFrame, store: Any = None) -> pd.DataFrame:
    """Feast point-in-time features of ``service`` for the entity rows (extra columns carried)."""
    store = store or store_for(paths)
    out = store.historical(service, entity_df)
    out["event_timestamp"] = pd.to_datetime(out["event_timestamp"], utc=True).astype("datetime64[us, UTC]")
    return out.sort_values(KEYS).reset_index(drop=True)


def feature_names(paths: Paths, service: str, store: Any = None) -> list[str]:
    """The service's feature columns (Feast declaration order)."""
    store = store or store_for(paths)
    return [c for c in store.columns(service) if c != "one_id"]


def build(paths: Paths, cfg: DatasetConfig, categories: list[str] | None = None, n_categories: int = 5) -> TrainingSet:
    """Labels after each training cutoff and Feast features as of it (see the module docstring).

    ``categories`` (default: the top ``n_categories`` by units sold before the newest cutoff) get a
    ``buy_<H>d_<category>`` label each, over the same horizon H as the other labels.
    """
    from features.labels import future_labels

    data = Path(paths.data_dir)
    as_of = pd.Timestamp(cfg.as_of, tz="UTC") if cfg.as_of else None
    cuts = training_cutoffs(feature_cutoffs(paths.features_dir), cfg.horizon_days, as_of, cfg.max_cutoffs)
    ents = entities(paths.features_dir, cuts, cfg)
    labels = future_labels(data / "raw", data / "identity", ents, horizons=(cfg.horizon_days,),
                           categories=categories, n_categories=n_categories, hmac_key=paths.hmac_key,
                           category_horizon_days=cfg.horizon_days)
    check_observed(labels, cfg)
    label_cols = [c for c in labels.columns if c not in KEYS and not c.startswith(("observed_days", "complete_"))]
    store = store_for(paths)
    frame = historical(paths, cfg.service, labels[KEYS + label_cols], store)
    return TrainingSet(frame, feature_names(paths, cfg.service, store), label_cols, cuts, cfg.horizon_days)


CENSOR_SLACK_DAYS = 1.0  # the data may stop a few minutes before the snapshot day (the generator's `now`)


def check_observed(labels: pd.DataFrame, cfg: DatasetConfig) -> None:
    """ValueError unless the data covers every cutoff's label window (minus :data:`CENSOR_SLACK_DAYS`).

    A window running past the last event or order reads as "no purchase" for everyone: with
    ``--as-of`` after the data's end the holdout was all churners (AUC nan, base rate 1) and a
    version was registered anyway; half-covered windows give finite but wrong metrics and gates.
    """
    import datetime as dt

    if "observed_days" not in labels.columns or not len(labels):
        return
    seen = labels.groupby("event_timestamp")["observed_days"].min()
    short = seen[seen < cfg.horizon_days - CENSOR_SLACK_DAYS]
    if not len(short):
        return
    cut, days = short.index[-1], float(short.iloc[-1])
    # observed_days is clipped at 0 for cutoffs after the data: the end comes from the best-covered cutoff
    ends = [pd.Timestamp(c) + pd.Timedelta(days=float(d)) for c, d in seen.items() if d > 0]
    end = max(ends).date() if ends else None
    where = f"--as-of {cfg.as_of}" if cfg.as_of else "the newest feature snapshot"
    raise ValueError(f"{where}: the data ends {f'on {end} ' if end else 'before every cutoff '}(last event or order), "
                     f"so the {cfg.horizon_days}-day labels after cutoff {pd.Timestamp(cut).date()} would see only "
                     f"{days:.0f} days and read as no purchase; "
                     + (f"give --as-of {end + dt.timedelta(days=1)} or earlier" if end else "build features at "
                        "cutoffs inside the data") + " (nothing trained or registered)")


MIN_HOLDOUT_CLASS = 10  # fewer positives (or negatives) than this and a holdout AUC/Gini is a coin toss


def check_names(ts: "TrainingSet", exclude: tuple[str, ...], monotone: tuple[tuple[str, int], ...]) -> None:
    """ValueError naming a config's ``exclude`` / ``monotone`` feature that the training set does not have.

    A typo (``recency_dayz``) was silently ignored: the model trained on the very feature the user excluded.
    """
    import difflib

    have = [c for c in ts.features if c in ts.frame.columns]
    for field, names in (("exclude", list(exclude)), ("monotone", [m[0] for m in monotone])):
        for name in names:
            if name not in have:
                close = difflib.get_close_matches(str(name), have, n=3)
                raise ValueError(f"config field {field!r}: no feature {name!r} in this model's feature service"
                                 + (f"; did you mean {close}?" if close else f"; features: {have}"))


def check_holdout(positive: np.ndarray, cutoff: pd.Timestamp, what: str) -> None:
    """ValueError unless the holdout has :data:`MIN_HOLDOUT_CLASS` rows of each class: on a handful of
    rows (``dataset.max_rows_per_cutoff: 5``) the gate's AUC/Gini is noise and could crown a worse model."""
    pos = int(np.asarray(positive, dtype=bool).sum())
    neg = len(positive) - pos
    if min(pos, neg) < MIN_HOLDOUT_CLASS:
        raise ValueError(f"the holdout (cutoff {pd.Timestamp(cutoff).date()}) has {len(positive)} rows, {pos} {what} "
                         f"and {neg} not: at least {MIN_HOLDOUT_CLASS} of each are needed to measure and gate a model; "
                         "raise dataset.max_rows_per_cutoff or use more data (nothing trained or registered)")


def scoring_frame(paths: Paths, service: str, cutoff: pd.Timestamp | None = None) -> pd.DataFrame:
    """Features of every customer as of ``cutoff`` (default: the newest snapshot) through Feast."""
    cutoff = cutoff or feature_cutoffs(paths.features_dir)[-1]
    ents = entities(paths.features_dir, [cutoff], DatasetConfig())
    return historical(paths, service, ents)


def truth_by_one_id(paths: Paths) -> pd.DataFrame | None:
    """The generator's ``truth_people`` future outcomes per OneID (None when there is no ground truth)."""
    data = Path(paths.data_dir)
    truth_dir = data / "raw" / "_truth"
    if not (truth_dir / "truth_people.parquet").exists():
        return None
    recs = pd.read_parquet(truth_dir / "truth_records.parquet", columns=["source", "record_id", "person_id"])
    from features.identity.tables import read_identity_table  # applies incremental deltas, if any

    rmap = read_identity_table(data / "identity", "record_map", columns=["source", "record_id", "one_id"]).to_pandas()
    link = rmap.merge(recs, on=["source", "record_id"])
    best = link.groupby(["one_id", "person_id"]).size().rename("n").reset_index()
    best = best.sort_values(["one_id", "n"], ascending=[True, False]).drop_duplicates("one_id")
    people = pd.read_parquet(truth_dir / "truth_people.parquet")
    keep = ["person_id"] + [c for c in people.columns if c.startswith("future_") or c in ("churn_next_90d", "dormant")]
    return best[["one_id", "person_id"]].merge(people[keep], on="person_id", how="left")


def sample_rows(df: pd.DataFrame, n: int | None, seed: int = 0) -> pd.DataFrame:
    """At most ``n`` random rows (all when ``n`` is None)."""
    return df if n is None or len(df) <= n else df.sample(n, random_state=np.random.RandomState(seed))
