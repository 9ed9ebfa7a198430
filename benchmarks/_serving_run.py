"""Shared plumbing of the serving benchmarks: a world, a real server, wrk runs, worker RSS.

The load tool is ``wrk`` (Debian package): a C event loop whose one thread per
connection group costs a fraction of a core, so one connection leaves the
server's CPU alone. Request bodies come from a Lua script that picks a random
known customer per request and prints a JSON line with latency percentiles and
error counts in ``done()``. Every target is 127.0.0.1; every run is bounded in
time (``-d``) and stops by itself.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

LUA = r"""
wrk.method = "%(method)s"
wrk.headers["Content-Type"] = "application/json"
local ids = {%(ids)s}
local template = %(template)s
request = function()
  if template == "" then return wrk.format(nil, nil, nil, nil) end
  local body = string.gsub(template, "@ID@", ids[math.random(#ids)])
  return wrk.format(nil, nil, nil, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON{"requests":%%d,"duration_us":%%d,"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d,' ..
    '"p50":%%d,"p90":%%d,"p99":%%d,"p999":%%d,"max":%%d,"mean":%%f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
"""

ENDPOINTS = {  # name -> (method, path, body template with @ID@ for a customer id)
    "noop": ("POST", "/noop", "{}"),
    "recommend": ("POST", "/recommend", '{"user_id": "@ID@", "k": 10}'),
    "score": ("POST", "/score", '{"ids": ["@ID@"], "models": ["churn", "ltv", "propensity"]}'),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_world(n_users: int, n_items: int, root: Path | None = None) -> Any:
    """A benchmark world (data dir + registry): built in ``root`` (default a temporary folder), or reused
    from ``root`` when an earlier run built it there with the same sizes (split runs share one world)."""
    from benchmarks._serving_world import World, build_world

    if root is not None and (root / "world.json").exists():
        meta = json.loads((root / "world.json").read_text())
        if (meta["n_users"], meta["n_items"]) == (n_users, n_items):
            return World(Path(meta["data_dir"]), meta["uri"], meta["one_ids"], meta["item_ids"], meta["versions"])
        raise SystemExit(f"{root} holds a world of {meta['n_users']} users / {meta['n_items']} items; use another --world")
    root = root or Path(tempfile.mkdtemp(prefix="portrait-serving-bench-"))
    w = build_world(root, n_users=n_users, n_items=n_items, cold_users=max(1, n_users // 50))
    (root / "world.json").write_text(json.dumps({
        "n_users": n_users, "n_items": n_items, "data_dir": str(w.data_dir), "uri": w.uri, "one_ids": w.one_ids,
        "item_ids": w.item_ids, "versions": w.versions}))
    return w


class Server:
    """``bentoml serve serving.service:Portrait`` on 127.0.0.1 with portrait's knobs or stock settings."""

    def __init__(self, data_dir: Path, mlflow_uri: str, *, stock: bool = False, tracing: bool = False,
                 metrics: bool = False, poll_seconds: float = 2.0, api_key: str = "bench-key",
                 extra_env: dict[str, str] | None = None) -> None:
        from portrait.commands.serve import server_command, server_env

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = server_env(data_dir, mlflow_uri, api_key, poll_seconds=poll_seconds, tracing=tracing, metrics=metrics,
                         stock=stock)
        env["PORTRAIT_FEAST_PUSH"] = "false"
        env.update(extra_env or {})
        self.log = tempfile.NamedTemporaryFile("w+", prefix="portrait-serve-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(server_command("127.0.0.1", self.port), env=env, cwd=REPO, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited; log: {self.log.name}")
            try:
                with urllib.request.urlopen(f"{self.base}/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"server not ready after {timeout}s; log: {self.log.name}")

    def status(self) -> dict:
        with urllib.request.urlopen(f"{self.base}/status", timeout=10) as r:
            return json.loads(r.read())

    def worker_pid(self) -> int:
        """The BentoML worker serving requests (it reports its own pid in /status)."""
        return int(self.status()["runtime"]["pid"])

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def wrk(base: str, endpoint: str, ids: list[str], seconds: float, connections: int = 1,
        threads: int | None = None) -> dict:
    """One bounded wrk run; returns requests, rps, latency percentiles (ms) and error counts."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk; `make services` does it)")
    method, path, template = ENDPOINTS[endpoint]
    lua = LUA % {"method": method, "ids": ",".join(json.dumps(i) for i in ids[:5000]),
                 "template": json.dumps(template)}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(lua)
    threads = threads or min(connections, 2)
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{int(seconds)}s", "--timeout", "5s",
           "-s", fh.name, base + path]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    os.unlink(fh.name)
    line = next((x for x in out.splitlines() if x.startswith("WRKJSON")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    r = json.loads(line[len("WRKJSON"):])
    errors = r["connect"] + r["read"] + r["write"] + r["timeout"] + r["status"]  # status: non-2xx/3xx answers
    return {"endpoint": endpoint, "connections": connections, "requests": r["requests"],
            "rps": r["requests"] / (r["duration_us"] / 1e6), "p50": r["p50"] / 1e3, "p90": r["p90"] / 1e3,
            "p99": r["p99"] / 1e3, "p999": r["p999"] / 1e3, "max": r["max"] / 1e3, "errors": errors,
            "command": " ".join(cmd[:-3] + ["<script>", cmd[-1]])}


def row(r: dict) -> str:
    return (f"| {r['endpoint']} | {r['connections']} | {r['requests']:,} | {r['rps']:,.0f} | {r['p50']:.2f} | "
            f"{r['p90']:.2f} | {r['p99']:.2f} | {r['p999']:.2f} | {r['max']:.1f} | {r['errors']} |")


HEADER = ("| endpoint | conns | requests | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")


def python() -> str:
    return sys.executable
