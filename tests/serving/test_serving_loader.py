"""The loader serves champions from a real MLflow registry and swaps them atomically."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from serving.config import ServeConfig
from serving.errors import NotLoaded
from serving.loader import Loader

X = np.zeros((3, 2))


def _config(uri: str, tmp_path: Path, poll: float = 0.0) -> ServeConfig:
    return ServeConfig(data_dir=tmp_path, mlflow_uri=uri, model_names={"churn": "churn", "ltv": "ltv-missing"},
                       poll_seconds=poll)


def _promote(uri: str, version: str) -> None:
    MlflowClient(uri, uri).set_registered_model_alias("churn", "champion", version)


def test_serves_champion_and_reports_missing(registry: str, tmp_path: Path) -> None:
    _promote(registry, "1")
    loader = Loader(_config(registry, tmp_path))
    assert loader.refresh() == ["churn"]
    b = loader.bundle
    assert b.versions() == {"churn": "1"}
    assert b.model("churn").run_id
    assert (b.model("churn").model.predict(X) == 0).all()
    with pytest.raises(NotLoaded, match="ltv"):
        b.model("ltv")
    assert loader.refresh() == []  # nothing changed: nothing reloaded, same snapshot
    assert loader.bundle is b


def test_promotion_swaps_without_failed_reads(registry: str, tmp_path: Path) -> None:
    _promote(registry, "1")
    loader = Loader(_config(registry, tmp_path))
    loader.refresh()
    expected = {"1": 0, "2": 1}
    seen: set[str] = set()
    failures: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                served = loader.bundle.model("churn")  # one snapshot per "request"
                pred = served.model.predict(X)
                assert (pred == expected[served.version]).all(), "a snapshot mixed two versions"
                seen.add(served.version)
                time.sleep(0.001)  # leave the GIL to the refreshing thread, as a server's I/O waits do
            except BaseException as exc:  # noqa: BLE001 - every failure counts
                failures.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for version in ("2", "1", "2"):
        _promote(registry, version)
        assert loader.refresh() == ["churn"]
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join()
    assert not failures
    assert seen == {"1", "2"}
    assert loader.bundle.versions() == {"churn": "2"}


def test_broken_version_keeps_the_old_one(registry: str, tmp_path: Path) -> None:
    _promote(registry, "1")
    calls: list[str] = []

    def flaky(kind: str, uri: str):  # noqa: ANN202
        calls.append(uri)
        if uri.endswith("/2"):
            raise OSError("artifact store unreachable")
        from serving.loader import load_pyfunc

        return load_pyfunc(kind, uri)

    loader = Loader(_config(registry, tmp_path), load_model=flaky)
    loader.refresh()
    _promote(registry, "2")
    assert loader.refresh() == []
    assert loader.bundle.versions() == {"churn": "1"}
    assert "v2 failed" in loader.bundle.errors["churn"]


def test_reload_marker_reaches_a_polling_worker(registry: str, tmp_path: Path) -> None:
    _promote(registry, "1")
    cfg = _config(registry, tmp_path)  # poll_seconds=0: only the marker triggers a refresh
    worker, operator = Loader(cfg), Loader(cfg)
    worker.refresh()
    worker.start()
    try:
        _promote(registry, "2")
        time.sleep(1.1)  # marker mtimes have a fine resolution, but make the change unambiguous
        operator.touch_marker()
        deadline = time.monotonic() + 10
        while worker.bundle.versions().get("churn") != "2" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert worker.bundle.versions() == {"churn": "2"}
    finally:
        worker.stop()
