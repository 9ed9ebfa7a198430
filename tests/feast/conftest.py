"""Fixtures for the Feast tests: a small feature table in a temporary data folder, a Redis server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from types import SimpleNamespace
from datetime import datetime, timezone
from pathlib import Path

import pytest

CUTOFFS = [datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 4, 1, tzinfo=timezone.utc)]
END = datetime(2026, 5, 1, tzinfo=timezone.utc)
N_CUSTOMERS = 300


@pytest.fixture(scope="session")
def snap() -> SimpleNamespace:
    """The dates of the test table: two cutoffs, and the materialization end after both."""
    return SimpleNamespace(cutoffs=CUTOFFS, end=END, n=N_CUSTOMERS)


@pytest.fixture(scope="module")
def feast_data(tmp_path_factory) -> Path:
    """A data folder with two customer snapshots and two item snapshots (one per test module)."""
    from features.feast_ext.sample import customer_table, item_table
    from features.io import write_parquet

    data = tmp_path_factory.mktemp("feast") / "data"
    write_parquet(customer_table(N_CUSTOMERS, CUTOFFS, seed=3), data / "features" / "customer_features.parquet")
    write_parquet(item_table(20, CUTOFFS), data / "features" / "item_features.parquet")
    return data


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> str:
    """A private redis-server on a free loopback port (no persistence); skips without the binary."""
    binary = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
    if not binary:
        pytest.skip("redis-server not installed (make services)")
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"redis-server exited with code {proc.returncode}")
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("redis-server did not start within 10 s")
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)
