"""Level 3: ``portrait serve`` as a subprocess, a real HTTP client, a full flow and a promotion."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient

pytestmark = pytest.mark.slow  # covered by benchmarks/serving.py (real server, promotion under load)
KEY = "subprocess-key-1"
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(world) -> Iterator[tuple[str, subprocess.Popen, list[str]]]:  # noqa: ANN001
    port = _free_port()
    env = {**os.environ, "PORTRAIT_DATA_DIR": str(world.data_dir), "PORTRAIT_MLFLOW_URI": world.uri,
           "PORTRAIT_FEAST_PUSH": "false"}
    cmd = [sys.executable, "-m", "portrait.cli", "serve", "--port", str(port), "--api-key", KEY,
           "--poll-seconds", "1", "--ready-timeout", "120"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    base, lines = f"http://127.0.0.1:{port}", []
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:  # `portrait serve` prints the curl examples once the server answers
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        lines.append(line)
        if "/admin/reload" in line:
            break
    try:
        yield base, proc, lines
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_full_flow_over_real_http(server, world) -> None:  # noqa: ANN001
    base, proc, lines = server
    out = "".join(lines)
    assert proc.poll() is None, out
    assert f"curl -s -X POST {base}/recommend" in out and KEY in out  # ready-to-paste examples
    with httpx.Client(base_url=base, timeout=30) as c:
        assert c.get("/readyz").status_code == 200
        r = c.post("/recommend", json={"user_id": world.one_ids[3], "k": 4})
        assert r.status_code == 200 and len(r.json()["items"]) == 4
        r = c.post("/score", json={"ids": [world.one_ids[3]], "models": ["churn"]})
        assert r.status_code == 200 and r.json()["results"][0]["found"]
        assert c.post("/tags/writeback", json={"models": ["churn"]}).status_code == 401
        r = c.post("/tags/writeback", json={"models": ["churn", "ltv"], "date": "2024-09-04"},
                   headers={"X-API-Key": KEY})
        assert r.status_code == 200, r.text
        assert {b["status"] for b in r.json()["batches"]} == {"written"}
        tags = {t["name"]: t for t in c.get(f"/profile/{world.one_ids[3]}").json()["tags"]}
        assert tags["ltv_tier"]["source"] == "model" and tags["ltv_tier"]["version"] == "1"
        r = c.post("/lookalike", json={"ids": world.one_ids[:10], "reach": 10}, headers={"X-API-Key": KEY})
        assert r.status_code == 200, r.text
        csv = c.get(f"/audiences/{r.json()['audience_id']}/members.csv")
        assert csv.status_code == 200 and len(csv.text.splitlines()) == 11
        knobs = c.get("/status").json()["runtime"]  # the documented knobs, as the worker applied them
        assert knobs["otel_sdk_disabled"] == "true" and knobs["timeout_timers_fixed"] and knobs["gc_frozen"] > 0
        assert knobs["bentoml_overrides"]["services"]["portrait"]["metrics"] == {"enabled": False}
        assert c.get("/metrics").status_code == 404
        assert c.get("/").status_code == 200  # the OpenAPI page


def test_promotion_is_picked_up_without_errors(server, world) -> None:  # noqa: ANN001
    base, proc, _ = server
    registry = MlflowClient(world.uri, world.uri)
    body = {"ids": [world.one_ids[0]], "models": ["churn"]}
    with httpx.Client(base_url=base, timeout=30) as c:
        before = c.post("/score", json=body).json()
        assert before["models"]["churn"] == "1"
        registry.set_registered_model_alias("churn", "champion", "2")
        try:
            statuses, versions = [], set()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and "2" not in versions:  # the worker polls every second
                r = c.post("/score", json=body)
                statuses.append(r.status_code)
                versions.add(r.json()["models"]["churn"])
        finally:
            registry.set_registered_model_alias("churn", "champion", "1")
    assert set(statuses) == {200} and "2" in versions
