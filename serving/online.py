"""``/score`` with features read from Feast's online store per request (``score_features = "feast"``).

Each model names the FeatureService it was trained on (``churn_v1``, ``ltv_v1``,
``propensity_v1``; ``ServeConfig.feature_services``); a request reads its customers' rows
through ``features.store`` (``PortraitStore.online_dict``), once per distinct feature set
(the three services share their views today, so one read serves all three models).

Scoring a row read online: for the value area's LightGBM models the values are encoded
exactly as ``models.gbm.numeric_frame`` does (text columns -> the model's category codes,
booleans -> 0/1, missing -> NaN) straight into the adapter's scratch row and scored with
LightGBM's single-row C API (:class:`RowEncoder`, checked against the snapshot's encoded
rows before use). Any other model gets a small DataFrame with the snapshot's dtypes and
its own ``predict``.

A customer is ``found`` when Feast holds at least one feature value for them (an id the
identity graph knows but that was never materialized is not found, as in snapshot mode).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

NAN = float("nan")


class StoreUnavailable(Exception):
    """The online read cannot answer: no FeatureService for a model, repo not applied, store unreachable."""


def _unreachable() -> tuple[type[BaseException], ...]:
    """Connection errors of the online stores (redis-py's are not ``OSError``s)."""
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError
    except ImportError:
        return (OSError,)
    return (OSError, RedisConnectionError, RedisTimeoutError)


def online_rows(store: Any, services: dict[str, str], kinds: list[str], one_ids: list[str]) -> dict[str, dict]:
    """kind -> ``{column: [value per id]}`` of ``one_ids`` (request order), one Feast read per distinct feature set.

    Raises :class:`StoreUnavailable` when a model has no configured service, a service is not
    registered (``portrait features apply`` not run on this data folder) or the store is unreachable.
    """
    by_columns: dict[tuple, dict] = {}
    out = {}
    for kind in kinds:
        service = services.get(kind)
        if service is None:
            raise StoreUnavailable(f"no FeatureService configured for model {kind!r}")
        try:
            cols = tuple(store.columns(service))
            if cols not in by_columns:
                by_columns[cols] = store.online_dict(service, one_ids)
        except KeyError as exc:  # PortraitStore.service: not registered (its message names the known ones)
            raise StoreUnavailable(exc.args[0] if exc.args else str(exc)) from None
        except _unreachable() as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from None
        out[kind] = by_columns[cols]
    return out


def present(values: dict[str, list], feature_names: list[str], n: int) -> list[int]:
    """Rows holding at least one of ``feature_names`` (a never-materialized customer has none)."""
    cols = [values[c] for c in feature_names if c in values]
    return [r for r in range(n) if any(not _missing(col[r]) for col in cols)]


def _missing(v: Any) -> bool:
    """None, NaN or pandas' NA (without importing pandas here)."""
    return v is None or (isinstance(v, float) and math.isnan(v)) or type(v).__name__ == "NAType"


def typed_frame(values: dict[str, list], rows: list[int], snapshot: Any) -> Any:
    """The rows of an online read as a DataFrame with the snapshot's dtypes (text and numbers encode as in training)."""
    import pandas as pd

    df = pd.DataFrame({c: [v[r] for r in rows] for c, v in values.items()})
    for c in df.columns:
        if snapshot is not None and c in snapshot.columns and df[c].dtype != snapshot[c].dtype:
            try:
                df[c] = df[c].astype(snapshot[c].dtype)
            except (TypeError, ValueError):  # e.g. a null in a bool column: keep Feast's values
                pass
    return df


class RowEncoder:
    """One customer's values (Python scalars as Feast returns them) -> the model's float row.

    Mirrors ``models.gbm.numeric_frame``: a text column becomes the index of ``str(value)``
    in the model's learned categories (unseen: NaN), booleans 0/1, numbers as floats,
    missing values NaN.
    """

    def __init__(self, names: list[str], categories: dict[str, list[str]] | None) -> None:
        self.names = list(names)
        cats = categories or {}
        self.codes = [({v: float(i) for i, v in enumerate(cats[c])} if c in cats else None) for c in self.names]

    def encode(self, get: Any, out: np.ndarray) -> None:
        """Write the row into ``out``; ``get(column)`` returns the column's value."""
        for j, (c, codes) in enumerate(zip(self.names, self.codes)):
            v = get(c)
            if _missing(v):
                out[j] = NAN
            elif codes is not None:
                out[j] = codes.get(str(v), NAN)
            else:
                out[j] = float(v)

    @classmethod
    def for_adapter(cls, adapter: Any, snapshot: Any, check: int = 64) -> "RowEncoder | None":
        """An encoder for ``adapter``'s model when it reproduces the snapshot's encoded rows; else None."""
        gbm = _gbm_of(adapter.predictor)
        if gbm is None or adapter.scratch is None or adapter.X_ is None:
            return None
        if list(getattr(gbm, "feature_names_", [])) != list(adapter.feature_names):
            return None
        enc = cls(adapter.feature_names, getattr(gbm, "categories_", None))
        row = np.empty(len(enc.names))
        n = min(check, len(snapshot))
        cols = {c: snapshot[c].iloc[:n].tolist() for c in enc.names}  # only the checked rows: this runs in a request
        for i in range(n):
            enc.encode(lambda c: cols[c][i], row)
            if not np.array_equal(row, adapter.X_[i], equal_nan=True):
                return None
        return enc


def _gbm_of(p: Any) -> Any:
    """The ``models.gbm`` model whose encoding a (calibrated / several-output) predictor uses, or None."""
    if getattr(p, "booster_", None) is not None:
        return p
    if getattr(p, "base", None) is not None:
        return _gbm_of(p.base)
    outputs = getattr(p, "outputs", None)
    if isinstance(outputs, dict) and outputs:
        return _gbm_of(next(iter(outputs.values())))
    return None


def score_rows(adapter: Any, values: dict[str, list], rows: list[int], snapshot: Any) -> tuple[np.ndarray, Any]:
    """Scores and cohort keys (``PredictorAdapter.score_*``) of the online ``rows`` (one-row C API through the
    encoder when available, else the model's predict)."""
    enc = getattr(adapter, "_row_encoder", None)
    if getattr(adapter, "_row_encoder_for", None) is not adapter.X_:  # once per model version and snapshot
        enc = RowEncoder.for_adapter(adapter, snapshot)
        adapter._row_encoder, adapter._row_encoder_for = enc, adapter.X_
    if enc is None:
        return adapter.score_frame(typed_frame(values, rows, snapshot))
    out, keys = [], []
    for r in rows:
        enc.encode(lambda c: values[c][r], adapter.scratch)
        s, k = adapter.score_scratch()
        out.append(s)
        keys.append(k)
    return np.concatenate(out), None if keys[0] is None else np.concatenate(keys)
