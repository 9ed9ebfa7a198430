"""Serving-area fixtures: a small real world built once per session (see benchmarks/_serving_world.py).

A data directory in the contract's shape and a real SQLite MLflow registry with
real LightGBM predictors and a real item-kNN recommender; no mocks.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

from benchmarks._serving_world import World, build_world


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Data directory + registry with real small models (built once per session)."""
    return build_world(tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="session")
def client(world: World) -> Iterator[object]:
    """BentoML's ASGI app under Starlette's TestClient (lifespan run: models loaded), API key ``test-key-123``.

    One per session: a second ``to_asgi()`` in the same process would register BentoML's
    Prometheus collectors twice.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    mp = pytest.MonkeyPatch()
    for k, v in {"PORTRAIT_DATA_DIR": str(world.data_dir), "PORTRAIT_MLFLOW_URI": world.uri,
                 "PORTRAIT_API_KEY": "test-key-123", "PORTRAIT_POLL_SECONDS": "0",
                 "PORTRAIT_FEAST_PUSH": "false"}.items():
        mp.setenv(k, v)
    from serving.service import Portrait

    with TestClient(Portrait.to_asgi(), raise_server_exceptions=False) as c:
        yield c
    mp.undo()
