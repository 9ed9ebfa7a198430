"""Helpers for the identity tests: hand-built identity records and a resolve runner."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from features.identity.config import ResolveConfig
from features.identity.resolve import resolve
from features.schema import IDENTIFIER_TYPES
from features.identity.tables import read_identity_table

KEY = "test-key-not-secret"


def records(rows: list[dict]) -> pa.Table:
    """An identity_records table from dicts (source, record_id, identifiers, observed_at optional)."""
    df = pd.DataFrame(rows)
    for t in IDENTIFIER_TYPES:
        if t not in df.columns:
            df[t] = None
        df[t] = df[t].astype(object).where(df[t].notna(), None)
    if "observed_at" not in df.columns:
        df["observed_at"] = "2026-01-01"
    df["observed_at"] = pd.to_datetime(df["observed_at"], utc=True)
    return pa.Table.from_pandas(df[["source", "record_id", *IDENTIFIER_TYPES, "observed_at"]], preserve_index=False)


class Runner:
    def __init__(self, root: Path):
        self.root = root
        self.identity_dir = root / "identity"

    def __call__(self, rows, incremental: bool = False, profiles: pd.DataFrame | None = None, **kw) -> dict:
        cfg = ResolveConfig(identity_dir=self.identity_dir, raw_dir=self.root / "raw", hmac_key=kw.pop("key", KEY),
                            incremental=incremental, **kw)
        table = rows if isinstance(rows, pa.Table) else records(rows)
        return resolve(cfg, records=table, profiles=profiles if profiles is not None else pd.DataFrame())

    def record_map(self) -> dict[str, str]:
        m = read_identity_table(self.identity_dir, "record_map").to_pandas()
        return dict(zip(m["source"] + ":" + m["record_id"], m["one_id"]))


@pytest.fixture()
def run(tmp_path: Path) -> Runner:
    return Runner(tmp_path / "main")


@pytest.fixture()
def make_runner(tmp_path: Path):
    """A factory of runners with their own identity directories."""
    return lambda name: Runner(tmp_path / name)


@pytest.fixture(name="records")
def records_fixture():
    return records


@pytest.fixture(name="key")
def key_fixture() -> str:
    return KEY
