"""Shared builders for the lookalike tests: a small population with three interest groups."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def build_world(root: Path):
    """600 customers in 3 interest groups over 60 items; features with a group tag; (root, ids, group)."""
    rng = np.random.default_rng(0)
    n = 600
    group = np.repeat([0, 1, 2], n // 3)
    ids = [f"OID{i:010d}" for i in range(n)]
    rows = []
    for i in range(n):
        own = rng.choice(np.arange(group[i] * 20, group[i] * 20 + 20), 8, replace=False)
        other = rng.choice(60, 2, replace=False)
        rows += [(ids[i], f"I{j:03d}") for j in np.r_[own, other]]
    (root / "features").mkdir()
    pd.DataFrame(rows, columns=["one_id", "item_id"]).assign(event_type="view", weight=1.0).to_parquet(
        root / "features" / "interactions.parquet")
    pd.DataFrame({
        "one_id": ids, "event_timestamp": pd.Timestamp("2026-07-01", tz="UTC"),
        "age": rng.integers(16, 60, n).astype(float), "gender": rng.choice(["F", "M"], n),
        "spend": rng.exponential(100, n), "tag_group": np.array(["a", "b", "c"])[group],
    }).to_parquet(root / "features" / "customer_features.parquet")
    return root, np.array(ids), group


@pytest.fixture(scope="session")
def lal_builder():
    """:func:`build_world` for modules that build their own world (no import of conftest needed)."""
    return build_world
