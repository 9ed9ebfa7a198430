"""The recommender's temporal holdout: built once, shared by every model measured or gated on it.

:class:`Holdout` cuts one event table at ``max(timestamp) - holdout_days``: the customers
with history before the cut, every item, and the items each customer met after the cut
and not before it (re-consumption is not a discovery). :meth:`Holdout.score` fits any
model on events before the cut and ranks for those customers. The training job
(:mod:`training.recommender`) builds it from the challenger's events and scores the
challenger, popularity and, at the promotion gate, the champion's configuration refitted
on the same events weighted its own way: customers or items only that weighting keeps
are appended to the index, so the rows scored and the items relevant never change.

Run: through ``portrait train recommender``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["Holdout", "event_matrices", "fit_model", "holdout_metrics"]


def event_matrices(df: pd.DataFrame, users: pd.Index, items: pd.Index, epoch: pd.Timestamp) -> tuple[Any, Any, Any]:
    """Weights ``X``, last-event days ``T`` (days since ``epoch``, plus 1) and each event's day."""
    from training.evaluation.splits import to_matrix

    X = to_matrix(df, users, items, df["weight"].to_numpy(np.float32))
    days = (df["timestamp"] - epoch).dt.total_seconds().to_numpy() / 86400.0 + 1.0
    last = df.assign(d=days).groupby(["user", "item"], as_index=False, sort=False)["d"].max()
    T = to_matrix(last, users, items, last["d"].to_numpy(np.float64))
    return X, T, days


def fit_model(model: Any, X: Any, T: Any) -> Any:
    """``model.fit(X, times=T)`` for models that read event times, ``model.fit(X)`` otherwise."""
    import inspect

    return model.fit(X, times=T) if "times" in inspect.signature(model.fit).parameters else model.fit(X)


def _extend(index: pd.Index, ids: pd.Series) -> pd.Index:
    """``index`` with the ids it lacks appended (first-seen order): existing positions never move."""
    new = pd.unique(ids[~ids.isin(index)])
    return index.append(pd.Index(new)) if len(new) else index


@dataclass(frozen=True)
class Holdout:
    """One global temporal holdout (see the module docstring); build it with :meth:`build`."""

    cut: pd.Timestamp  # events at or after it are held out
    users: pd.Index  # customers with an event before the cut: the rows of ``truth``
    items: pd.Index  # every item of the events: the columns of ``truth``
    truth: sp.csr_matrix  # items each customer met after the cut and not before it
    rows: np.ndarray  # the customers scored: those with at least one such item
    k: int  # cut-off of the metrics

    @classmethod
    def build(cls, df: pd.DataFrame, holdout_days: float, k: int) -> Holdout:
        """The holdout of ``df`` (``user, item, timestamp, weight``): its last ``holdout_days`` days."""
        from training.evaluation.splits import to_matrix

        cut = df["timestamp"].max() - pd.Timedelta(days=holdout_days)
        train, test = df[df["timestamp"] < cut], df[df["timestamp"] >= cut]
        users, items = pd.Index(pd.unique(train["user"])), pd.Index(pd.unique(df["item"]))
        seen = to_matrix(train, users, items, np.ones(len(train), np.float32))
        truth = to_matrix(test, users, items, np.ones(len(test), np.float32))
        truth = truth - truth.multiply(seen > 0)  # re-consumption is not a discovery
        truth.eliminate_zeros()
        return cls(cut, users, items, truth.tocsr(), np.flatnonzero(np.diff(truth.indptr) > 0), k)

    def score(self, make_model: Callable[[], Any], events: pd.DataFrame) -> dict[str, float]:
        """Fit ``make_model()`` on ``events`` before the cut; ranking metrics on this holdout.

        ``events`` are the holdout's own, or the same events weighted another way (a champion's
        configuration): customers and items only they hold are appended to the index, so they
        feed the fit but neither add a customer to score nor change what is relevant.
        """
        from training.evaluation.ranking import ranking_metrics

        if len(self.rows) == 0:
            return {"n_users": 0}
        train = events[events["timestamp"] < self.cut]
        if train.empty:  # e.g. a champion whose weighting keeps no event before the cut: it learned nothing
            return {"precision": 0.0, "recall": 0.0, "ndcg": 0.0, "map": 0.0, "hit_rate": 0.0, "coverage": 0.0,
                    "n_users": len(self.rows)}
        users, items = _extend(self.users, train["user"]), _extend(self.items, train["item"])
        X, T, _ = event_matrices(train, users, items, train["timestamp"].min())
        relevant = self.truth[self.rows]
        relevant.resize((len(self.rows), len(items)))  # appended items are never relevant
        model = make_model()
        fit_model(model, X, T)
        ids, _ = model.recommend(X[self.rows], k=self.k, times=T[self.rows])
        return ranking_metrics(ids, relevant, k=self.k)


def holdout_metrics(df: pd.DataFrame, make_model: Callable[[], Any], config: Any,
                    train_events: pd.DataFrame | None = None) -> dict[str, float]:
    """:meth:`Holdout.score` on ``df``'s holdout (``config.holdout_days``, ``config.k``), built for this call.

    ``train_events`` (the same events weighted another way) replaces ``df`` on the fitting side only.
    """
    holdout = Holdout.build(df, config.holdout_days, config.k)
    return holdout.score(make_model, df if train_events is None else train_events)
