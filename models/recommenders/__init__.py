"""Next-best-item recommenders on implicit feedback, one interface (``models.base.Recommender``).

Models work on integer user/item indices and ``scipy.sparse`` CSR histories; mapping
ids is the training layer's job. :func:`make` builds any of them by name::

    from models.recommenders import make
    model = make("window_ease").fit(user_items, times=event_times)
    ids, scores = model.recommend(user_items[rows], k=20, allowed=in_stock_mask)

Names: ``window_ease`` (portrait's default), ``ease``, ``dlae``, ``als``, ``bpr``,
``item_knn`` (BM25), ``item_cosine``, ``popularity``, ``segment_popularity``.
"""

from __future__ import annotations

from typing import Any

DEFAULT = "window_ease"
NAMES = ("window_ease", "ease", "dlae", "als", "bpr", "item_knn", "item_cosine", "popularity", "segment_popularity")


def make(name: str, **params: Any) -> Any:
    """A fresh, unfitted recommender by name, with ``params`` overriding its defaults."""
    from models.recommenders.ease import EASE, WindowEASE
    from models.recommenders.implicit_models import ALS, BPR, ItemKNN
    from models.recommenders.popularity import Popularity, SegmentPopularity

    builders = {
        "window_ease": lambda: WindowEASE(**params),
        "ease": lambda: EASE(**{"lam": 500.0, **params}),
        "dlae": lambda: EASE(**{"lam": 500.0, "dropout": 0.5, **params}),
        "als": lambda: ALS(**params),
        "bpr": lambda: BPR(**params),
        "item_knn": lambda: ItemKNN(**{"similarity": "bm25", **params}),
        "item_cosine": lambda: ItemKNN(**{"similarity": "cosine", **params}),
        "popularity": lambda: Popularity(**params),
        "segment_popularity": lambda: SegmentPopularity(**params),
    }
    if name not in builders:
        raise ValueError(f"unknown recommender {name!r}; choose one of {', '.join(NAMES)}")
    return builders[name]()
