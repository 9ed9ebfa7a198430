"""Project-wide fixtures: where the shared real data lives, and an isolated data directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from portrait.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real data folder; skips the test when it is absent."""
    if not SHARED_DATA.exists():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture()
def tmp_settings(tmp_path: Path) -> Settings:
    """Settings whose data directory and MLflow store live under a temporary folder."""
    return load_settings({
        "PORTRAIT_DATA_DIR": str(tmp_path / "data"),
        "PORTRAIT_MLRUNS_DIR": str(tmp_path / "mlruns"),
        "PORTRAIT_HMAC_KEY": "test-key",
    })
