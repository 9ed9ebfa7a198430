"""Project-wide fixtures: where the shared real data lives, and an isolated data directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from portrait.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


@pytest.fixture(autouse=True)
def _no_inherited_mlflow_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts without ``MLFLOW_TRACKING_URI`` / ``MLFLOW_REGISTRY_URI``.

    ``mlflow.set_tracking_uri`` also exports that variable, and portrait's settings honour it (a user
    who sets it means it), so a store set up by one test would otherwise leak into the next test's
    CLI run in the same process and make the outcome depend on test order.
    """
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)


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
        "PORTRAIT_HMAC_KEY": "test-key-0123456789abcdef",
    })
