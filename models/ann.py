"""Approximate (or exact) nearest-neighbour search over dense vectors with FAISS.

:class:`AnnIndex` is the one vector index portrait uses: customer embeddings for
lookalike expansion, item factors for ``similar_items``. It picks the FAISS index by
population size unless told otherwise:

* ``flat``  exact inner product (``IndexFlatIP``) below ``exact_max`` vectors (default 1M);
* ``ivf``   ``IndexIVFFlat`` with ~2 sqrt(n) lists from ``exact_max`` up; after building,
  ``nprobe`` is raised until the measured recall@k against exact search on a sample of
  the indexed vectors reaches ``target_recall`` (default 0.95);
* ``hnsw``  ``IndexHNSWFlat`` (on request), ``efSearch`` calibrated the same way.

``metric="cosine"`` L2-normalizes vectors and queries, so scores are cosines;
``metric="ip"`` keeps raw inner products. Searches can exclude ids (one list for all
queries, or one list per query) and restrict results to an ``allowed`` mask (business
or eligibility filters); global filters run inside FAISS through an ``IDSelector``.
Indexes pickle (the FAISS part is serialized), so :meth:`Model.save`/``load`` work.

Example::

    index = AnnIndex(metric="cosine").fit(vectors, ids=customer_idx)
    ids, scores = index.search(queries, k=100, exclude=seed_ids)
    index.recall_vs_exact(k=10)   # measured, not assumed
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from models._ann_util import as_float32, drop_per_query, is_per_query, normalize, recall_of
from models.base import Model

KINDS = ("auto", "flat", "ivf", "hnsw")


class AnnIndex(Model):
    """A FAISS vector index with id mapping, exclusions, filters and measured recall.

    Parameters
    ----------
    metric : {"cosine", "ip"}
        Cosine similarity (vectors normalized) or raw inner product.
    kind : {"auto", "flat", "ivf", "hnsw"}
        Index type; ``auto`` = ``flat`` below ``exact_max`` vectors, else ``ivf``.
    exact_max : int
        Population size from which ``auto`` switches from exact to IVF.
    nlist : int, optional
        IVF lists; default ``2 * sqrt(n)`` rounded, at least 16.
    hnsw_m : int
        HNSW graph degree.
    target_recall : float
        Recall@``calibration_k`` vs exact the approximate kinds are tuned to reach.
    calibration_k : int
        ``k`` used when calibrating ``nprobe`` / ``efSearch``.
    calibration_queries : int
        Number of indexed vectors used as calibration queries.
    train_size : int
        Vectors sampled to train IVF centroids (at least 40 per list).
    threads : int, optional
        OpenMP threads for FAISS (None: FAISS default).
    seed : int
        Sampling seed (calibration queries, IVF training sample).
    """

    def __init__(
        self,
        metric: str = "cosine",
        kind: str = "auto",
        exact_max: int = 1_000_000,
        nlist: int | None = None,
        hnsw_m: int = 32,
        target_recall: float = 0.95,
        calibration_k: int = 10,
        calibration_queries: int = 500,
        train_size: int = 100_000,
        threads: int | None = None,
        seed: int = 0,
    ) -> None:
        self.metric = metric
        self.kind = kind
        self.exact_max = exact_max
        self.nlist = nlist
        self.hnsw_m = hnsw_m
        self.target_recall = target_recall
        self.calibration_k = calibration_k
        self.calibration_queries = calibration_queries
        self.train_size = train_size
        self.threads = threads
        self.seed = seed

    # ------------------------------------------------------------------ build
    def fit(self, vectors: Any, ids: Any | None = None) -> "AnnIndex":
        """Index ``vectors`` (n, dim); ``ids`` (n,) int64 external ids, default ``0..n-1``.

        Returns
        -------
        self
        """
        import faiss

        if self.metric not in ("cosine", "ip"):
            raise ValueError(f"metric must be 'cosine' or 'ip', got {self.metric!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.threads:
            faiss.omp_set_num_threads(int(self.threads))
        x = as_float32(vectors)
        if self.metric == "cosine":
            x = normalize(x)
        n, dim = x.shape
        if n == 0:
            raise ValueError("cannot index zero vectors")
        self.ids_ = None
        if ids is not None:
            ids = np.asarray(ids, dtype=np.int64)
            if ids.shape != (n,):
                raise ValueError(f"ids must have shape ({n},), got {ids.shape}")
            order = np.argsort(ids, kind="stable")
            if n > 1 and (np.diff(ids[order]) == 0).any():
                raise ValueError("ids must be unique")
            self.ids_ = ids
            self._sorted_ids = ids[order]
            self._sorted_pos = order
        kind = self.kind if self.kind != "auto" else ("flat" if n < self.exact_max else "ivf")
        self.kind_ = kind
        self.dim_ = dim
        self.n_ = n
        rng = np.random.default_rng(self.seed)
        if kind == "flat":
            index = faiss.IndexFlatIP(dim)
        elif kind == "ivf":
            nlist = self.nlist or max(16, int(round(2 * np.sqrt(n))))
            nlist = min(nlist, max(1, n // 39))  # FAISS wants ~39 training points per list
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
            size = min(n, max(self.train_size, 40 * nlist))
            sample = x if n <= size else x[np.sort(rng.choice(n, size, replace=False))]
            index.cp.seed = self.seed
            index.cp.niter = 10  # k-means sweeps: recall is recovered by calibrating nprobe
            index.train(sample)
        else:
            index = faiss.IndexHNSWFlat(dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 80
        index.add(x)
        self.index_ = index
        self.search_param_ = None
        if kind != "flat":
            self._calibrate(x, rng)
        return self

    def _set_param(self, value: int) -> None:
        if self.kind_ == "ivf":
            self.index_.nprobe = int(value)
        elif self.kind_ == "hnsw":
            self.index_.hnsw.efSearch = int(value)
        self.search_param_ = int(value)

    def _calibrate(self, x: np.ndarray, rng: np.random.Generator) -> None:
        """Raise nprobe / efSearch until recall@k vs exact reaches ``target_recall``."""
        import faiss

        k = min(self.calibration_k, self.n_)
        q = x[rng.choice(self.n_, min(self.calibration_queries, self.n_), replace=False)]
        exact = faiss.IndexFlatIP(self.dim_)
        exact.add(x)
        _, truth = exact.search(q, k)
        if self.kind_ == "ivf":
            steps = [v for v in (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
                     if v <= self.index_.nlist] + [self.index_.nlist]
        else:
            steps = [16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024]
        recall = 0.0
        for value in steps:
            self._set_param(value)
            _, got = self.index_.search(q, k)
            recall = recall_of(got, truth)
            # a margin (a fifth of the gap to 1) so that unseen queries reach the target too
            if recall >= self.target_recall + 0.2 * (1.0 - self.target_recall):
                break
        self.calibrated_recall_ = recall

    # ----------------------------------------------------------------- search
    def _positions(self, ids: Any) -> np.ndarray:
        """External ids -> internal positions (unknown ids dropped)."""
        ids = np.asarray(ids, dtype=np.int64).ravel()
        if self.ids_ is None:
            return ids[(ids >= 0) & (ids < self.n_)]
        loc = np.searchsorted(self._sorted_ids, ids)
        loc = np.clip(loc, 0, self.n_ - 1)
        hit = self._sorted_ids[loc] == ids
        return self._sorted_pos[loc[hit]]

    def _to_external(self, pos: np.ndarray) -> np.ndarray:
        if self.ids_ is None:
            return pos
        out = np.where(pos >= 0, self.ids_[np.maximum(pos, 0)], -1)
        return out.astype(np.int64)

    def search(
        self,
        queries: Any,
        k: int = 10,
        exclude: Any | Sequence[Any] | None = None,
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` indexed vectors for each query, best first.

        Parameters
        ----------
        queries : array of shape (n_queries, dim) or (dim,)
        k : int
            Results per query.
        exclude : array of ids, or a sequence (one array of ids per query), optional
            Ids never returned. One array applies to every query (filtered inside FAISS);
            a per-query sequence is applied by over-fetching and dropping.
        allowed : ndarray of bool, shape (n_indexed,), optional
            Mask over indexed positions (the order given to :meth:`fit`); only ``True``
            positions may be returned.

        Returns
        -------
        ids, scores : ndarray of shape (n_queries, k)
            External ids (-1 where fewer than ``k`` qualify) and similarities.
        """
        import faiss

        self._check_fitted("index_")
        q = as_float32(queries)
        if q.shape[1] != self.dim_:
            raise ValueError(f"queries have dim {q.shape[1]}, index has {self.dim_}")
        if self.metric == "cosine":
            q = normalize(q)
        k = int(k)
        if k <= 0:
            raise ValueError("k must be positive")
        per_query = exclude is not None and is_per_query(exclude, len(q))
        mask = None
        if allowed is not None:
            mask = np.asarray(allowed, dtype=bool).copy()
            if mask.shape != (self.n_,):
                raise ValueError(f"allowed must be a bool mask of shape ({self.n_},)")
        if exclude is not None and not per_query:
            mask = np.ones(self.n_, dtype=bool) if mask is None else mask
            mask[self._positions(exclude)] = False
        params = None
        if mask is not None:
            bitmap = np.packbits(mask, bitorder="little")
            selector = faiss.IDSelectorBitmap(self.n_, faiss.swig_ptr(bitmap))
            params = self._params(selector)
            params._keep = (bitmap, selector)  # keep the buffer alive during search
        fetch = k
        if per_query:
            fetch = k + max((len(np.asarray(e).ravel()) for e in exclude), default=0)
        fetch = min(fetch, self.n_)
        scores, pos = self.index_.search(q, fetch, params=params)
        ids = self._to_external(pos)
        if per_query:
            ids, scores = drop_per_query(ids, scores, exclude, k)
        elif fetch < k:
            pad = k - fetch
            ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
            scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        scores = np.where(ids < 0, -np.inf, scores).astype(np.float32)
        return ids, scores

    def _params(self, selector: Any) -> Any:
        import faiss

        if self.kind_ == "ivf":
            return faiss.SearchParametersIVF(sel=selector, nprobe=self.index_.nprobe)
        if self.kind_ == "hnsw":
            return faiss.SearchParametersHNSW(sel=selector, efSearch=self.index_.hnsw.efSearch)
        return faiss.SearchParameters(sel=selector)

    def reconstruct(self, ids: Any) -> np.ndarray:
        """Stored (normalized, for cosine) vectors of the given external ids."""
        self._check_fitted("index_")
        pos = self._positions(ids)
        if self.kind_ == "ivf":
            self.index_.make_direct_map()
        return np.vstack([self.index_.reconstruct(int(p)) for p in pos]) if len(pos) else np.zeros((0, self.dim_), np.float32)

    def recall_vs_exact(self, queries: Any | None = None, k: int = 10, n_queries: int = 1000) -> float:
        """Measured recall@k of this index against exact search.

        ``queries`` default to ``n_queries`` indexed vectors drawn with a seed different
        from the calibration sample, so the figure is not the one the index was tuned on.
        """
        import faiss

        self._check_fitted("index_")
        x = self.index_.reconstruct_n(0, self.n_) if self.kind_ != "ivf" else None
        if x is None:
            self.index_.make_direct_map()
            x = self.index_.reconstruct_n(0, self.n_)
        if queries is None:
            rng = np.random.default_rng(self.seed + 1)
            q = x[rng.choice(self.n_, min(n_queries, self.n_), replace=False)]
        else:
            q = as_float32(queries)
            q = normalize(q) if self.metric == "cosine" else q
        k = min(k, self.n_)
        exact = faiss.IndexFlatIP(self.dim_)
        exact.add(x)
        _, truth = exact.search(q, k)
        _, got = self.index_.search(q, k)
        return recall_of(got, truth)

    # ------------------------------------------------------------ persistence
    def __getstate__(self) -> dict[str, Any]:
        import faiss

        state = dict(self.__dict__)
        if "index_" in state:
            state["index_"] = faiss.serialize_index(state["index_"])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        import faiss

        if "index_" in state:
            state["index_"] = faiss.deserialize_index(state["index_"])
        self.__dict__.update(state)
        if getattr(self, "search_param_", None) is not None:
            self._set_param(self.search_param_)
