"""The one model interface every portrait model implements.

Models follow scikit-learn manners: ``__init__`` only stores hyperparameters,
``fit`` validates its input and returns ``self``, learned state ends in ``_``.
Models work on integer indices and arrays; mapping customer and item ids to
indices is the training layer's job. This package imports nothing else of portrait.
"""

from __future__ import annotations

import pickle
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np


class NotFittedError(RuntimeError):
    """Raised when a model is used before ``fit``."""


class Model(ABC):
    """Common base: persistence and fitted-state checks."""

    def _check_fitted(self, attr: str) -> None:
        if not hasattr(self, attr):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() first")

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters (the public attributes set in ``__init__``)."""
        return {k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")}

    def save(self, path: str | Path) -> Path:
        """Save the fitted model to ``path`` (a single file; written atomically)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "wb") as fh:
            pickle.dump(self, fh, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Model":
        """Load a model saved by :meth:`save`; checks it is an instance of ``cls``."""
        with open(path, "rb") as fh:
            obj = pickle.load(fh)
        if not isinstance(obj, cls):
            raise TypeError(f"{path} holds a {type(obj).__name__}, not a {cls.__name__}")
        return obj


class Recommender(Model):
    """Implicit-feedback recommender over a user x item matrix (CSR, non-negative weights)."""

    @abstractmethod
    def fit(self, user_items: Any) -> "Recommender":
        """Learn from a ``scipy.sparse.csr_matrix`` of shape (n_users, n_items); returns self."""

    @abstractmethod
    def recommend(
        self, user_items: Any, k: int = 10, exclude_seen: bool = True, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for each row of ``user_items`` (the users' histories).

        Parameters
        ----------
        user_items : csr_matrix of shape (n_rows, n_items)
            History of each user to recommend for (may include events newer than the fit).
        k : int
            Number of items per user.
        exclude_seen : bool
            Drop items present in the row.
        allowed : ndarray of bool, shape (n_items,), optional
            Items that may be returned (business filters); others are never returned.

        Returns
        -------
        ids, scores : ndarray of shape (n_rows, k)
            Item indices and scores, best first; ids are -1 where fewer than k items qualify.
        """

    @abstractmethod
    def similar_items(self, items: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` most similar items to each item index (the item itself excluded)."""


class Predictor(Model):
    """Supervised model over a feature matrix (churn, LTV, propensity)."""

    @abstractmethod
    def fit(self, X: Any, y: Any, **kwargs: Any) -> "Predictor":
        """Learn from features ``X`` (DataFrame or array) and targets ``y``; returns self."""

    @abstractmethod
    def predict(self, X: Any) -> np.ndarray:
        """Predictions for the rows of ``X`` (a probability or a value)."""
