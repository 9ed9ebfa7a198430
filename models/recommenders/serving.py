"""What a shop needs around a recommender: ids, filters, exclusions, cold start, fresh events.

:class:`RecommenderBundle` is the one object serving loads (it is what
``training/recommender.py`` registers in MLflow). It holds a fitted recommender, the
id <-> index maps, each known customer's history (weights and times), what each has
bought (never re-recommended, per event type), an :class:`ItemCatalog` for business
filters, a segment-popularity model for cold start, and an optional FAISS item index.

Example (serving)::

    bundle = RecommenderBundle.load(path)
    recs = bundle.recommend("c-42", k=10, filters=ItemFilters(in_stock_only=True, price_max=50),
                            recent=[("sku-9", "add_to_cart", now)])
    cold = bundle.recommend("new-id", k=10, profile={"age_band": "25-34", "gender": "F"})
    page = bundle.similar_items("sku-9", k=10)

Each result is a list of ``(item_id, score)``; :attr:`last_source` says how it was made:
``history`` (the customer's own events), ``segment`` (cold start from the profile
segment) or ``popular`` (no history, no usable profile).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from models.base import Model
from models.recommenders import _fast_path
from models.recommenders._fast_path import same_ranking as _same_ranking
from models.recommenders._fast_path import topk_1d as _topk_1d  # noqa: F401 - kept importable under its old name

SEGMENT_FIELDS = ("age_band", "gender", "city", "lifecycle")  # cold-start profile, most to least general kept


@dataclass(frozen=True)
class ItemFilters:
    """Business filters; ``None`` means "no constraint"."""

    categories_allow: tuple[str, ...] | None = None  # only these categories
    categories_deny: tuple[str, ...] | None = None  # never these categories
    price_min: float | None = None
    price_max: float | None = None
    in_stock_only: bool = False
    launched_after: str | None = None  # ISO date: launch_date >= this
    launched_before: str | None = None  # ISO date: launch_date <= this (e.g. "today": no pre-announced items)
    exclude_items: tuple[str, ...] = ()  # e.g. items already in the cart


@dataclass
class ItemCatalog:
    """Item attributes aligned with the model's item indices (unknown attributes: NaN / None)."""

    category: np.ndarray  # object (str or None)
    price: np.ndarray  # float64, NaN unknown
    in_stock: np.ndarray  # bool
    launch_date: np.ndarray  # datetime64[D], NaT unknown

    @classmethod
    def from_frame(cls, items: Sequence[Any], df: pd.DataFrame | None) -> "ItemCatalog":
        """Align an items table (``item_id, category, price, in_stock, launch_date``) with ``items``."""
        n = len(items)
        if df is None or len(df) == 0:
            return cls(np.full(n, None, object), np.full(n, np.nan), np.ones(n, bool),
                       np.full(n, np.datetime64("NaT"), "datetime64[D]"))
        last = df.drop_duplicates("item_id", keep="last")
        t = last.set_index(last["item_id"].astype(str)).reindex(pd.Index([str(i) for i in items]))
        col = lambda name, default: t[name] if name in t.columns else pd.Series(default, index=t.index)  # noqa: E731
        launch = pd.to_datetime(col("launch_date", pd.NaT), errors="coerce", utc=True).dt.tz_localize(None)
        return cls(
            category=col("category", None).astype(object).where(col("category", None).notna(), None).to_numpy(),
            price=pd.to_numeric(col("price", np.nan), errors="coerce").to_numpy(np.float64),
            in_stock=col("in_stock", True).fillna(True).astype(bool).to_numpy(),
            launch_date=launch.to_numpy().astype("datetime64[D]"),
        )

    def known_categories(self) -> frozenset[str]:
        """Every category some item of the catalogue has (computed once)."""
        known = getattr(self, "_known_categories", None)
        if known is None:
            known = self._known_categories = frozenset(str(c) for c in self.category if c is not None)
        return known

    def unknown_categories(self, names: Sequence[str]) -> list[str]:
        """The ``names`` no item of the catalogue has (a typo in a filter must not pass silently)."""
        known = self.known_categories()
        return [n for n in dict.fromkeys(names) if n not in known]

    def mask(self, f: ItemFilters | None, item_index: pd.Index | None = None) -> np.ndarray | None:
        """Boolean mask of items passing ``f`` (None when ``f`` constrains nothing)."""
        if f is None:
            return None
        m = np.ones(len(self.price), bool)
        if f.categories_allow is not None:
            m &= np.isin(self.category, list(f.categories_allow))
        if f.categories_deny:
            m &= ~np.isin(self.category, list(f.categories_deny))
        if f.price_min is not None:
            m &= self.price >= f.price_min  # unknown price fails a price filter
        if f.price_max is not None:
            m &= self.price <= f.price_max
        if f.in_stock_only:
            m &= self.in_stock
        if f.launched_after is not None:
            m &= self.launch_date >= np.datetime64(f.launched_after, "D")
        if f.launched_before is not None:
            m &= self.launch_date <= np.datetime64(f.launched_before, "D")
        if f.exclude_items and item_index is not None:
            pos = item_index.get_indexer([str(i) for i in f.exclude_items])
            m[pos[pos >= 0]] = False
        return m


def segment_key(profile: dict[str, Any] | None, fields: Sequence[str]) -> str | None:
    """``"age_band=25-34|gender=F"`` for the given fields; None if any is missing."""
    if not profile:
        return None
    vals = [profile.get(f) for f in fields]
    if any(v is None or (isinstance(v, float) and np.isnan(v)) or v == "" for v in vals):
        return None
    return "|".join(f"{f}={v}" for f, v in zip(fields, vals))


@dataclass
class RecommenderBundle(Model):
    """A fitted recommender with everything serving needs (see the module docstring)."""

    model: Any
    users: pd.Index
    items: pd.Index
    history: sp.csr_matrix  # weights, users x items
    times: sp.csr_matrix | None  # event times in days (same pattern as history) or None
    bought: sp.csr_matrix  # items never to re-recommend per user (exclude_event_types)
    catalog: ItemCatalog
    segments: dict[tuple[str, ...], tuple[Any, dict[str, int]]] = field(default_factory=dict)
    event_weights: dict[str, float] = field(default_factory=dict)
    exclude_event_types: tuple[str, ...] = ("purchase",)
    epoch: pd.Timestamp | None = None  # time origin of ``times`` (day 1.0)
    ann: Any = None  # models.ann.AnnIndex over item vectors (optional)
    last_source: str = "history"

    # ------------------------------------------------------------------ helpers
    def _days(self, ts: Any) -> float:
        if self.epoch is None or ts is None:
            return float(self.times.data.max() + 1.0) if self.times is not None and self.times.nnz else 1.0
        stamp = pd.Timestamp(ts)
        stamp = stamp.tz_convert("UTC") if stamp.tzinfo else stamp.tz_localize("UTC")
        return (stamp - self.epoch).total_seconds() / 86400.0 + 1.0

    def _row(self, user_id: str | None, recent: Iterable[tuple[str, str, Any]] | None
             ) -> tuple[sp.csr_matrix, sp.csr_matrix | None, sp.csr_matrix, bool]:
        """History row (+ fresh events), its times, its exclusions, and whether it is non-empty."""
        pos = self.user_position(user_id)
        recent = list(recent or ())
        if pos >= 0 and not recent:  # the common case: slice the stored rows, no copies
            t = self.times[pos] if self.times is not None else None
            return self.history[pos], t, self.bought[pos], self.history[pos].nnz > 0
        n = len(self.items)
        h = np.zeros(n, np.float32)
        t = np.zeros(n, np.float64)
        b = np.zeros(n, np.float32)
        if pos >= 0:
            row = self.history[pos]
            h[row.indices] = row.data
            if self.times is not None:
                tr = self.times[pos]
                t[tr.indices] = tr.data
            b[self.bought[pos].indices] = 1.0
        for item_id, event_type, ts in recent:
            j = self.items.get_indexer([str(item_id)])[0]
            if j < 0:
                continue  # an item the model has never seen cannot inform it
            h[j] += self.event_weights.get(event_type, 1.0)
            t[j] = max(t[j], self._days(ts))
            if event_type in self.exclude_event_types:
                b[j] = 1.0
        hc = sp.csr_matrix(h[None, :])
        tc = None
        if self.times is not None:
            tc = sp.csr_matrix((t[hc.indices].clip(min=1.0), hc.indices, hc.indptr), shape=hc.shape)
        return hc, tc, sp.csr_matrix(b[None, :]), hc.nnz > 0

    def _format(self, ids: np.ndarray, scores: np.ndarray) -> list[tuple[str, float]]:
        keep = ids >= 0
        names = getattr(self, "_item_str", None)
        if names is None:
            return [(str(self.items[i]), float(s)) for i, s in zip(ids[keep], scores[keep])]
        return [(names[i], s) for i, s in zip(ids[keep].tolist(), scores[keep].tolist())]

    # ------------------------------------------------------------------ one-customer fast path
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_fast", None)  # a cache of arrays derived from the fields: rebuilt by prepare_serving()
        return state

    def user_position(self, user_id: str | None) -> int:
        """Row of ``user_id`` in the history (-1 when unknown); a hash lookup, no array built."""
        if user_id is None:
            return -1
        try:
            pos = self.users.get_loc(str(user_id))
        except (KeyError, TypeError):
            return -1
        return pos if isinstance(pos, (int, np.integer)) else -1

    def prepare_serving(self, check: int = 64) -> bool:
        """Build the one-customer fast path and verify it against :meth:`recommend`'s general path.

        Serving calls this once per loaded version. It keeps the raw CSR arrays of the
        history and exclusions, the model's own query weights for every customer (its
        ``_query``: weighting, recency; one batch call), the item ids as strings and the
        popularity fallback, so a request for a known customer with no fresh events is a few
        array slices, one product with the model's item-item matrix and a partial sort: no
        scipy matrix is built per request. Supported: item-item models with a dense or sparse
        ``B_`` (EASE, DLAE, portrait's WindowEASE); other models keep the general path. The
        fast path is enabled only if it ranks the same items with the same scores (float32
        tolerance) as the general path for ``check`` customers; returns whether it is on.
        """
        self._fast = None
        self._item_str = [str(i) for i in self.items]
        self._popular = np.asarray((self.history > 0).sum(axis=0), dtype=np.float32).ravel()
        self._fast = _fast_path.build(self.model, self.history, self.times, self.bought, len(self.items))
        if self._fast is None:
            return False
        rng = np.random.default_rng(0)
        known = np.flatnonzero(np.diff(self._fast["h"][0]) > 0)  # customers with a history
        for pos in rng.choice(known, min(check, len(known)), replace=False) if len(known) else []:
            for seen in (True, False):
                fast = self._fast_topk(int(pos), 10, None, seen)
                slow = self._general(self.history[pos], self.times[pos] if self.times is not None else None,
                                     self.bought[pos], 10, None, seen)
                if fast is not None and not _same_ranking(fast, slow):  # None: too few candidates, general path
                    self._fast = None
                    return False
        return True

    def _fast_topk(self, pos: int, k: int, allowed: np.ndarray | None, exclude_seen: bool
                   ) -> tuple[np.ndarray, np.ndarray] | None:
        """Top-``k`` (item indices, scores) for history row ``pos``, or None when the general path must answer."""
        return _fast_path.topk(self._fast, pos, k, allowed, exclude_seen)

    def _general(self, h: sp.csr_matrix, t: sp.csr_matrix | None, b: sp.csr_matrix, k: int,
                 allowed: np.ndarray | None, exclude_seen: bool) -> tuple[np.ndarray, np.ndarray]:
        ids, scores = self.model.recommend(h, k=k, exclude_seen=exclude_seen, allowed=allowed, exclude=b, times=t)
        return ids[0], scores[0]

    # ------------------------------------------------------------------ public
    def recommend(
        self, user_id: str | None, k: int = 10, filters: ItemFilters | None = None,
        recent: Iterable[tuple[str, str, Any]] | None = None, profile: Any = None,
        exclude_seen: bool = False,
    ) -> list[tuple[str, float]]:
        """Top-``k`` ``(item_id, score)`` for one customer.

        ``recent``: ``(item_id, event_type, timestamp)`` events newer than the training data,
        folded into the history now. Bought items (``exclude_event_types``) are never returned;
        ``exclude_seen`` also drops every item in the history. A customer with no usable history
        gets the most specific profile segment with data, else global popularity; ``profile`` is
        a dict, or a callable returning one (called only when a cold start needs it).
        """
        allowed = self.catalog.mask(filters, self.items)
        if getattr(self, "_fast", None) is not None and not recent:
            pos = self.user_position(user_id)
            hp = self._fast["h"][0]
            if pos >= 0 and hp[pos + 1] > hp[pos]:
                got = self._fast_topk(pos, k, allowed, exclude_seen)
                if got is not None:
                    self.last_source = "history"
                    return self._format(*got)
        h, t, b, has_history = self._row(user_id, recent)
        if has_history:
            self.last_source = "history"
            return self._format(*self._general(h, t, b, k, allowed, exclude_seen))
        return self.recommend_cold(profile() if callable(profile) else profile, k=k, filters=filters, exclude=b)

    def recommend_cold(self, profile: dict[str, Any] | None, k: int = 10, filters: ItemFilters | None = None,
                       exclude: sp.csr_matrix | None = None) -> list[tuple[str, float]]:
        """Cold start: popularity within the most specific known segment of ``profile``."""
        allowed = self.catalog.mask(filters, self.items)
        for fields, (model, codes) in sorted(self.segments.items(), key=lambda kv: -len(kv[0])):
            key = segment_key(profile, fields) if fields else ""
            if key is None or key not in codes:
                continue
            self.last_source = "segment" if fields else "popular"
            ids, scores = model.recommend_segments([codes[key]], k=k, allowed=allowed, exclude=exclude)
            return self._format(ids[0], scores[0])
        self.last_source = "popular"
        pop = getattr(self, "_popular", None)
        pop = (pop if pop is not None else np.asarray((self.history > 0).sum(axis=0), dtype=np.float32).ravel())[None, :]
        from models.recommenders._base import masked_topk

        ids, scores = masked_topk(pop, k, None, allowed, exclude)
        return self._format(ids[0], scores[0])

    def recommend_batch(self, user_ids: Sequence[str], k: int = 20, filters: ItemFilters | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item *indices* and scores for many known customers (unknown ids: -1 rows)."""
        pos = self.users.get_indexer([str(u) for u in user_ids])
        ok = pos >= 0
        ids = np.full((len(pos), k), -1, np.int64)
        scores = np.full((len(pos), k), -np.inf, np.float32)
        if ok.any():
            rows = pos[ok]
            ids[ok], scores[ok] = self.model.recommend(
                self.history[rows], k=k, exclude_seen=False, allowed=self.catalog.mask(filters, self.items),
                exclude=self.bought[rows], times=None if self.times is None else self.times[rows])
        return ids, scores

    def similar_items(self, item_id: str, k: int = 10, filters: ItemFilters | None = None) -> list[tuple[str, float]]:
        """Items to show on ``item_id``'s page (FAISS index when present, else the model)."""
        j = self.items.get_indexer([str(item_id)])[0]
        if j < 0:
            raise KeyError(f"unknown item {item_id!r}")
        allowed = self.catalog.mask(filters, self.items)
        if self.ann is not None:
            mask = np.ones(len(self.items), bool) if allowed is None else allowed.copy()
            mask[j] = False
            ids, scores = self.ann.search(self.ann_vectors_[j][None, :], k=k, allowed=mask)
            return self._format(ids[0], scores[0])
        ids, scores = self.model.similar_items(np.array([j]), k=k if allowed is None else len(self.items))
        if allowed is not None:
            keep = (ids[0] >= 0) & allowed[ids[0].clip(0)]
            return self._format(ids[0][keep][:k], scores[0][keep][:k])
        return self._format(ids[0][:k], scores[0][:k])

    def attach_ann(self, vectors: np.ndarray, **index_params: Any) -> float:
        """Index item ``vectors`` (n_items, dim) in FAISS for ``similar_items``; returns recall@10 vs exact."""
        from models.ann import AnnIndex

        self.ann_vectors_ = np.ascontiguousarray(vectors, dtype=np.float32)
        self.ann = AnnIndex(metric="cosine", **{"target_recall": 0.99, **index_params}).fit(self.ann_vectors_)
        return float(self.ann.recall_vs_exact(k=10))

