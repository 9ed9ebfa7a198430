"""The availability window of ``window_ease`` ("what else"): items first seen after a user's last event are left out.

Its algebra on hand-built matrices; a catalog that grows over time (the window keeps the launches of
a later era away from the customers of an earlier one, and is kept); a catalog where event times say
nothing about availability (the inner split vetoes it); never for "what next" (temporal inner split).
"""

from __future__ import annotations

import pickle

import numpy as np
import scipy.sparse as sp

from models.recommenders import make
from models.recommenders.availability import first_seen, last_event, late_items


def test_first_seen_last_event_and_late_items_by_hand():
    T = sp.csr_matrix(np.array([[1.0, 0, 5.0, 0], [0, 0, 2.0, 0], [3.0, 0, 0, 0]]))
    assert first_seen(T).tolist() == [1.0, np.inf, 2.0, np.inf]  # items 1 and 3: never seen
    assert last_event(T).tolist() == [5.0, 2.0, 3.0]
    assert last_event(sp.csr_matrix((1, 4))).tolist() == [np.inf]  # no history: nothing is late for it
    late = late_items(np.array([1.0, 4.0, 2.0, np.inf]), np.array([5.0, 2.0, 3.0, np.inf]))
    assert late.toarray().astype(int).tolist() == [[0, 0, 0, 1], [0, 1, 0, 1], [0, 1, 0, 1], [0, 0, 0, 0]]


def eras(n_users: int = 400, seed: int = 0) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Items 0-29 exist from day 1, items 30-59 launch on day 200. Early users (days 1-20) take old items of
    their cluster; late users (days 200-220) take old and new items of theirs, so old and new co-occur."""
    rng = np.random.default_rng(seed)
    rows, cols, days = [], [], []
    for u in range(n_users):
        cluster, late = rng.integers(0, 3), u % 2 == 1
        pool = np.r_[np.arange(cluster * 10, cluster * 10 + 10), 30 + np.arange(cluster * 10, cluster * 10 + 10)]
        picks = rng.choice(pool if late else pool[:10], 7, replace=False)
        rows += [u] * 7
        cols += list(picks)
        days += list((200.0 if late else 1.0) + rng.uniform(0, 20, 7))
    shape = (n_users, 60)
    X = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=shape)
    return X, sp.csr_matrix((np.array(days), (rows, cols)), shape=shape)


def test_a_later_eras_launches_are_not_recommended_to_an_earlier_eras_customers():
    # what the window does once kept (here the inner split's gap is 0: kept on the tie, not preferred)
    X, T = eras()
    model = make("window_ease", inner="random", seed=0, availability=True).fit(X, times=T)
    assert model.first_seen_ is not None and model.first_seen_[30:].min() >= 200
    early = np.arange(0, 400, 2)
    ids, _ = model.recommend(X[early], k=10, times=T[early])
    assert (ids[ids >= 0] < 30).all()  # only what existed while they were customers
    without = make("window_ease", inner="random", seed=0, availability=False).fit(X, times=T)
    ids_off, _ = without.recommend(X[early], k=10, times=T[early])
    assert without.first_seen_ is None and (ids_off >= 30).any()  # the co-occurrence alone does recommend them
    later = np.arange(1, 400, 2)
    ids_late, _ = model.recommend(X[later], k=10, times=T[later])
    assert (ids_late >= 30).any()  # the later era is not held back
    no_times, _ = model.recommend(X[early], k=10)  # no times, no window
    assert (no_times >= 30).any()


def test_the_inner_split_vetoes_the_window_when_times_say_nothing_about_availability():
    """Each user's events share one day (user u on day u): every item looks "launched" with its first
    consumer, so the window would hide the early users' own held-out items. The inner split sees it."""
    X, _ = eras()
    X = X[np.arange(0, 400, 2)]  # one era: every item of a cluster is taken by everyone in any order
    T = X.copy().tocsr()
    T.data = np.repeat(np.arange(1.0, X.shape[0] + 1), np.diff(X.indptr))
    model = make("window_ease", inner="random", seed=0, availability=True).fit(X, times=T)
    assert model.first_seen_ is None


def test_never_for_what_next_nor_for_models_pickled_before_it():
    X, T = eras()
    model = make("window_ease", inner="temporal", seed=0, availability=True).fit(X, times=T)
    assert model.first_seen_ is None  # a customer back after months should see the launches
    fitted = make("window_ease", inner="random", seed=0, availability=True).fit(X, times=T)
    state = {k: v for k, v in fitted.__dict__.items() if k not in ("availability", "first_seen_")}
    old = object.__new__(type(fitted))
    old.__setstate__(pickle.loads(pickle.dumps(state)))
    early = np.arange(0, 400, 2)
    assert old.first_seen_ is None and old.availability is False
    ids, _ = old.recommend(X[early], k=10, times=T[early])
    assert (ids >= 30).any()  # recommends as it did when it was pickled


def test_the_fetched_top_and_the_fallback_equal_excluding_every_late_item(monkeypatch):
    """Fetch-and-drop (and, when the fetch runs out, the row ranked again) is the top-k with the late items
    excluded outright, filters and extra exclusions included."""
    import models.recommenders.availability as availability
    from models.recommenders.ease import WindowEASE

    X, T = eras()
    model = make("window_ease", inner="random", seed=0, availability=True).fit(X, times=T)
    rows = np.arange(0, 40)
    allowed = np.ones(60, bool)
    allowed[[3, 33]] = False
    extra = sp.csr_matrix(([1.0, 1.0], ([0, 5], [1, 31])), shape=(len(rows), 60))
    late = late_items(model.first_seen_, last_event(T[rows]))
    want = WindowEASE.__mro__[1].recommend(model, X[rows], k=12, allowed=allowed, exclude=(late + extra).tocsr(),
                                           times=T[rows])
    for overfetch in ((3, 10), (1, 0)):  # (1, 0): the fetch is just k, so early rows need the fallback
        monkeypatch.setattr(availability, "OVERFETCH", overfetch)
        got = model.recommend(X[rows], k=12, allowed=allowed, exclude=extra, times=T[rows])
        assert (got[0] == want[0]).all() and np.allclose(got[1], want[1])


def test_a_bad_k_is_refused_as_without_the_window():
    """With times (the window on) ``k < 1`` is the same ValueError as without times, not an empty or numpy error."""
    import pytest

    X, T = eras()
    model = make("window_ease", inner="random", seed=0, availability=True).fit(X, times=T)
    assert model.first_seen_ is not None
    for k in (0, -1):
        for times in (None, T[:5]):
            with pytest.raises(ValueError, match="k must be >= 1"):
                model.recommend(X[:5], k=k, times=times)


def test_off_unless_asked_for_and_on_in_the_what_else_evaluation_default():
    """A window_ease made for serving (``make`` defaults, or ``portrait train recommender``'s temporal one) never
    hides launches; the evaluation's random-protocol default asks for the window."""
    from training.recommender_eval import default_model

    X, T = eras()
    assert make("window_ease", seed=0).fit(X, times=T).first_seen_ is None
    assert default_model("temporal").availability is False
    assert default_model("random-75-25").availability is True
    assert default_model("random-75-25").fit(X, times=T).first_seen_ is not None
