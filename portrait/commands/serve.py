"""``portrait serve``: start the BentoML service with the project's settings and print curl examples.

The service runs in ``bentoml serve serving.service:Portrait`` worker processes;
this command hands them the data directory, the MLflow URI, the API key and the
runtime knobs through the environment (see README, section Serving), waits until
the server answers, prints ready-to-paste curl examples, and stays in the
foreground until interrupted.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import typer

from portrait.commands._common import console, fail, settings

SERVICE = "serving.service:Portrait"


def server_env(data_dir: Path, mlflow_uri: str, api_key: str, *, open_reads: bool = True,
               poll_seconds: float = 30.0, tracing: bool = False, metrics: bool = False,
               access_log: bool = False, workers: int = 1, stock: bool = False,
               base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment ``bentoml serve`` runs with (settings + runtime knobs)."""
    from serving.runtime import server_env as knobs_env

    env = dict(os.environ if base is None else base)
    env.update({
        "PORTRAIT_DATA_DIR": str(data_dir),
        "PORTRAIT_MLFLOW_URI": mlflow_uri,
        "PORTRAIT_API_KEY": api_key,
        "PORTRAIT_OPEN_READS": "true" if open_reads else "false",
        "PORTRAIT_POLL_SECONDS": str(poll_seconds),
    })
    for k in ("OTEL_SDK_DISABLED", "BENTOML_CONFIG_OVERRIDES"):
        env.pop(k, None)  # --tracing / --metrics / --access-log decide these, not a leftover shell variable
    # PORTRAIT_GC_FREEZE, PORTRAIT_GC_THRESHOLD0, PORTRAIT_OMP_PASSIVE and PORTRAIT_FIX_TIMEOUT_TIMERS pass
    # through: they are the README's documented off-switches (only stock=True, for benchmarks, overrides them)
    env.update(knobs_env(tracing=tracing, metrics=metrics, access_log=access_log, workers=workers, stock=stock))
    return env


def server_command(host: str, port: int) -> list[str]:
    """``bentoml serve`` for the portrait service, run by this Python."""
    import serving

    return [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", host, "--port", str(port),
            "--working-dir", str(Path(serving.__file__).resolve().parents[1])]


def wait_until_up(url: str, proc: subprocess.Popen[Any] | None, timeout: float) -> bool:
    """Poll ``url`` until it answers 200; False on timeout or when ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


def example_ids(data_dir: Path) -> tuple[str, str]:
    """A real customer id and item id from the data directory, for the examples (placeholders if none)."""
    import pandas as pd

    user, item = "ONE_ID", "ITEM_ID"
    golden = data_dir / "identity" / "golden.parquet"
    items = data_dir / "raw" / "items.parquet"
    try:
        if golden.exists():
            user = str(pd.read_parquet(golden, columns=["one_id"])["one_id"].iloc[0])
        if items.exists():
            item = str(pd.read_parquet(items, columns=["item_id"])["item_id"].iloc[0])
    except Exception:  # examples are a convenience; never fail the server over them
        pass
    return user, item


def curl_examples(base: str, api_key: str, user: str, item: str) -> str:
    """Ready-to-paste curl commands for the main endpoints."""
    j = "-H 'Content-Type: application/json'"
    k = f"-H 'X-API-Key: {api_key}'"
    return "\n".join([
        f"curl -s {base}/readyz",
        f"curl -s -X POST {base}/recommend {j} -d '{{\"user_id\": \"{user}\", \"k\": 5}}'",
        f"curl -s -X POST {base}/similar_items {j} -d '{{\"item_id\": \"{item}\", \"k\": 5}}'",
        f"curl -s -X POST {base}/score {j} -d '{{\"ids\": [\"{user}\"], \"models\": [\"churn\", \"ltv\", \"propensity\"]}}'",
        f"curl -s {base}/profile/{user}",
        f"curl -s -X POST {base}/lookalike {j} {k} -d '{{\"rule\": \"tag_lifecycle_stage == \\\"active\\\"\", \"reach\": \"5%\"}}'",
        f"curl -s -X POST {base}/tags/writeback {j} {k} -d '{{}}'",
        f"curl -s -X POST {base}/admin/reload {j} {k} -d '{{}}'",
        f"# API reference (OpenAPI): {base}/",
    ])


def port_in_use(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be bound (e.g. "Address already in use"), or None when it is free."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is not "in use"
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0 exposes it to the network)."),
    port: int = typer.Option(3000, min=1, max=65535, help="HTTP port."),
    workers: int = typer.Option(1, min=1, help="Worker processes (each loads the models once)."),
    api_key: str = typer.Option(None, envvar="PORTRAIT_API_KEY", show_default=False,
                                help="Key for write/admin endpoints; a random one is generated and printed if unset."),
    # the same variables the worker's ServeConfig reads: the command exports its values to the worker,
    # so without envvar= they were always the defaults and PORTRAIT_OPEN_READS=false served reads openly
    open_reads: bool = typer.Option(True, envvar="PORTRAIT_OPEN_READS",
                                    help="Let read endpoints answer without the API key."),
    poll_seconds: float = typer.Option(30.0, min=0, envvar="PORTRAIT_POLL_SECONDS",
                                       help="How often to check the registry for new champions (0: never)."),
    tracing: bool = typer.Option(False, help="Keep BentoML's OpenTelemetry tracing on (costs latency; see README)."),
    metrics: bool = typer.Option(False, help="Keep BentoML's Prometheus /metrics on (costs latency; see README)."),
    access_log: bool = typer.Option(False, help="Log every request (paths may contain customer ids)."),
    ready_timeout: float = typer.Option(180.0, help="Seconds to wait for the server to come up."),
) -> None:
    """Serve recommendations, lookalike, scores, profiles and tag write-back over HTTP (BentoML)."""
    s = settings()
    from features.store import check_redis_address

    for name in ("PORTRAIT_FEAST_REDIS", "PORTRAIT_REDIS"):  # the workers read them (Feast online store): check now
        try:
            check_redis_address(os.environ.get(name) or None, name)
        except ValueError as exc:
            fail(str(exc))
    taken = port_in_use(host, port)
    if taken:  # else the banner below would greet whatever already answers there, then BentoML's traceback
        fail(f"{host}:{port} cannot be listened on ({taken}); stop the server using it or pass --port")
    generated = api_key is None
    api_key = api_key or secrets.token_urlsafe(24)
    env = server_env(s.data_dir, s.mlflow_uri, api_key, open_reads=open_reads, poll_seconds=poll_seconds,
                     tracing=tracing, metrics=metrics, access_log=access_log, workers=workers)
    proc = subprocess.Popen(server_command(host, port), env=env)
    stop = lambda *_: proc.send_signal(signal.SIGTERM)  # noqa: E731 - forward Ctrl-C/TERM to the server
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    if not wait_until_up(f"{base}/healthz", proc, ready_timeout):
        proc.terminate()
        fail(f"the server did not come up on {base} within {ready_timeout:.0f}s (see the log above)", code=1)
    user, item = example_ids(s.data_dir)
    console.rule("portrait is serving")
    if generated:
        console.print(f"API key for write/admin endpoints (generated for this run): [bold]{api_key}[/]")
    console.print(f"data: {s.data_dir}   models: {s.mlflow_uri}")
    console.print(curl_examples(base, api_key, user, item), markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(proc.wait())


def register(root: typer.Typer) -> None:
    """Add ``portrait serve`` to the root app."""
    root.command("serve")(serve)
