"""``/score`` with features read from Feast's online store per request (``score_features = "feast"``).

Each model names the FeatureService it was trained on (``churn_v1``, ``ltv_v1``,
``propensity_v1``; ``ServeConfig.feature_services``); a request reads its customers' rows
through ``features.store`` (``PortraitStore.online_dict``), once per distinct feature set
(the three services share their views today, so one read serves all three models), and
scores them with each model's own ``predict`` on that small frame. Columns get the dtypes
of the in-memory snapshot so text and numeric columns encode exactly as at training.

A customer is ``found`` when Feast holds at least one feature value for them (an id the
identity graph knows but that was never materialized is not found, as in snapshot mode).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def online_frames(store: Any, services: dict[str, str], kinds: list[str], one_ids: list[str],
                  snapshot: Any = None) -> dict[str, Any]:
    """kind -> DataFrame of ``one_ids``' online rows (request order), one Feast read per distinct feature set."""
    import pandas as pd

    by_columns: dict[tuple, Any] = {}
    out = {}
    for kind in kinds:
        service = services.get(kind)
        if service is None:
            raise KeyError(f"no FeatureService configured for model {kind!r}")
        cols = tuple(store.columns(service))
        if cols not in by_columns:
            by_columns[cols] = _typed(pd.DataFrame(store.online_dict(service, one_ids)), snapshot)
        out[kind] = by_columns[cols]
    return out


def _typed(df: Any, snapshot: Any) -> Any:
    """Online values (Python scalars, None) cast to the snapshot's column dtypes where they differ."""
    if snapshot is None:
        return df
    for c in df.columns:
        if c in snapshot.columns and df[c].dtype != snapshot[c].dtype:
            try:
                df[c] = df[c].astype(snapshot[c].dtype)
            except (TypeError, ValueError):  # e.g. a null in a bool column: keep Feast's values
                pass
    return df


def present(df: Any, feature_names: list[str]) -> np.ndarray:
    """Rows holding at least one of ``feature_names`` (a never-materialized customer has none)."""
    cols = [c for c in feature_names if c in df.columns]
    if not cols:
        return np.zeros(len(df), bool)
    return df[cols].notna().any(axis=1).to_numpy()
