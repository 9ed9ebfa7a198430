"""Customer embeddings learned with PyTorch: a two-tower model over interactions and profile features.

The **customer tower** mean-pools the embeddings of the items a customer interacted with
(``EmbeddingBag``), concatenates standardized profile features when given, and passes
that through a small MLP. The **item tower** is an embedding table. Training is
self-supervised: for each customer in a batch one item of their history is held out,
the tower sees the rest, and an in-batch sampled softmax (temperature ``temperature``,
with the log-popularity correction of Yi et al. 2019 so popular items are not simply
pushed away) asks the customer vector to pick that item among the batch's items.
Customers who would choose the same items end up close, which is what lookalike needs.

The output is one L2-normalized vector per customer (the tower over the full history),
ready for cosine similarity, :class:`models.ann.AnnIndex` and :class:`models.lookalike.Lookalike`.

Example::

    vectors = train_embeddings(user_items_csr, EmbeddingConfig(dim=64, epochs=20), features=profile_matrix)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class EmbeddingConfig:
    dim: int = 64  # embedding size (customer and item)
    hidden: int = 128  # width of the customer tower's hidden layer
    epochs: int = 30  # passes over the customers
    batch_size: int = 512  # customers per step (also the number of in-batch negatives)
    lr: float = 0.005  # Adam learning rate
    weight_decay: float = 1e-6  # L2 on all weights
    temperature: float = 0.1  # softmax temperature on cosine logits
    max_history: int = 200  # most recent/first items kept per customer in a bag (bounds memory)
    seed: int = 0  # torch and numpy seeds: same data + config -> same vectors
    threads: int = 1  # torch intra-op threads (2 shared cores)


def _bags(X: Any, rows: np.ndarray, rng: np.random.Generator, max_history: int, hold_out: bool):
    """Flat item indices + offsets for ``rows``; optionally one held-out item per row (-1 if none)."""
    indptr, indices = X.indptr, X.indices
    starts, ends = indptr[rows], indptr[rows + 1]
    lengths = np.minimum(ends - starts, max_history)
    held = np.full(len(rows), -1, dtype=np.int64)
    pick = np.full(len(rows), -1, dtype=np.int64)
    if hold_out:
        has = lengths > 1
        pick[has] = (rng.random(int(has.sum())) * lengths[has]).astype(np.int64)
        held[has] = indices[starts[has] + pick[has]]
    keep_len = lengths - (pick >= 0)
    offsets = np.concatenate([[0], np.cumsum(keep_len)[:-1]]).astype(np.int64)
    total = int(keep_len.sum())
    flat = np.empty(total, dtype=np.int64)
    # position j of row r maps to indices[start_r + j + (j >= pick_r)]
    row_of = np.repeat(np.arange(len(rows)), keep_len)
    j = np.arange(total) - offsets[row_of]
    shift = (pick[row_of] >= 0) & (j >= pick[row_of])
    flat[:] = indices[starts[row_of] + j + shift]
    return flat, offsets, held


def train_embeddings(interactions: Any, config: EmbeddingConfig = EmbeddingConfig(), features: Any | None = None,
                     on_epoch: Callable[[int, float], None] | None = None) -> np.ndarray:
    """Learn customer vectors from a customers x items matrix (CSR) and optional features.

    Parameters
    ----------
    interactions : scipy.sparse matrix (n_customers, n_items); non-zeros are interactions
    config : EmbeddingConfig
    features : array (n_customers, n_features), optional; NaN allowed (set to the mean)
    on_epoch : callable(epoch, mean_loss), optional

    Returns
    -------
    ndarray (n_customers, dim), float32, rows L2-normalized
    """
    import scipy.sparse as sp
    import torch
    from torch import nn

    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    rng = np.random.default_rng(config.seed)
    X = sp.csr_matrix(interactions)
    X.sum_duplicates()
    n, n_items = X.shape
    F = None
    if features is not None:
        F = np.asarray(features, dtype=np.float32)
        if F.shape[0] != n:
            raise ValueError(f"features have {F.shape[0]} rows, interactions {n}")
        mean = np.nanmean(F, axis=0)
        F = np.where(np.isnan(F), np.nan_to_num(mean), F)
        std = F.std(axis=0)
        F = (F - F.mean(axis=0)) / np.where(std > 0, std, 1.0)
        F_t = torch.from_numpy(F.astype(np.float32))
    n_feat = 0 if F is None else F.shape[1]
    popularity = np.asarray((X > 0).sum(axis=0)).ravel() + 1.0
    log_q = torch.from_numpy(np.log(popularity / popularity.sum()).astype(np.float32))

    class Towers(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bag = nn.EmbeddingBag(n_items, config.dim, mode="mean")
            self.items = nn.Embedding(n_items, config.dim)
            self.mlp = nn.Sequential(nn.Linear(config.dim + n_feat, config.hidden), nn.ReLU(),
                                     nn.Linear(config.hidden, config.dim))
            nn.init.normal_(self.bag.weight, std=0.1)
            nn.init.normal_(self.items.weight, std=0.1)

        def customers(self, flat, offsets, rows):
            h = self.bag(flat, offsets)
            if n_feat:
                h = torch.cat([h, F_t[rows]], dim=1)
            return nn.functional.normalize(self.mlp(h), dim=1)

    model = Towers()
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    active = np.flatnonzero(np.diff(X.indptr) > 1)  # customers with something to hold out
    for epoch in range(config.epochs):
        order = rng.permutation(active)
        losses = []
        for start in range(0, len(order), config.batch_size):
            rows = order[start:start + config.batch_size]
            flat, offsets, held = _bags(X, rows, rng, config.max_history, hold_out=True)
            rows_t = torch.from_numpy(rows)
            u = model.customers(torch.from_numpy(flat), torch.from_numpy(offsets), rows_t)
            held_t = torch.from_numpy(held)
            v = nn.functional.normalize(model.items(held_t), dim=1)
            logits = u @ v.T / config.temperature - log_q[held_t][None, :]
            same = held_t[:, None] == held_t[None, :]
            logits = logits.masked_fill(same & ~torch.eye(len(rows), dtype=torch.bool), float("-inf"))
            loss = nn.functional.cross_entropy(logits, torch.arange(len(rows)))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        if on_epoch:
            on_epoch(epoch, float(np.mean(losses)) if losses else float("nan"))
    return embed(model, X, config)


def embed(model: Any, X: Any, config: EmbeddingConfig, chunk: int = 65_536) -> np.ndarray:
    """Customer vectors over each full history, in chunks."""
    import torch

    out = np.zeros((X.shape[0], config.dim), dtype=np.float32)
    rng = np.random.default_rng(config.seed)
    model.eval()
    with torch.no_grad():
        for start in range(0, X.shape[0], chunk):
            rows = np.arange(start, min(start + chunk, X.shape[0]))
            flat, offsets, _ = _bags(X, rows, rng, config.max_history, hold_out=False)
            out[rows] = model.customers(torch.from_numpy(flat), torch.from_numpy(offsets),
                                        torch.from_numpy(rows)).numpy()
    return out
