"""``portrait serve`` reads ``PORTRAIT_OPEN_READS`` and ``PORTRAIT_POLL_SECONDS`` as the worker's ServeConfig does.

The command exports its own option values to the BentoML workers, so an option that ignored its
variable overwrote it with the default: ``PORTRAIT_OPEN_READS=false portrait serve`` served reads
without a key. Checked on the command's real option parsing, then through the worker's config.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from portrait.cli import app
from portrait.commands.serve import server_env
from serving.config import ServeConfig


def parsed(args: list[str]) -> dict:
    """The ``serve`` command's option values for ``args`` and the current environment (nothing started)."""
    return typer.main.get_command(app).commands["serve"].make_context("serve", list(args)).params


def worker_config(params: dict, tmp_path: Path) -> ServeConfig:
    """The ServeConfig a worker builds from the environment ``portrait serve`` hands it."""
    env = server_env(tmp_path, "sqlite:///x.db", "k", open_reads=params["open_reads"],
                     poll_seconds=params["poll_seconds"], base={})
    return ServeConfig.from_env(env)


def test_serve_takes_open_reads_and_poll_seconds_from_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PORTRAIT_OPEN_READS", "false")
    monkeypatch.setenv("PORTRAIT_POLL_SECONDS", "5")
    params = parsed([])
    assert (params["open_reads"], params["poll_seconds"]) == (False, 5.0)
    config = worker_config(params, tmp_path)
    assert (config.open_reads, config.poll_seconds) == (False, 5.0)
    # as ServeConfig.from_env reads them directly
    assert ServeConfig.from_env({"PORTRAIT_OPEN_READS": "false", "PORTRAIT_POLL_SECONDS": "5"}).open_reads is False


def test_options_beat_the_environment_and_defaults_stay(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PORTRAIT_OPEN_READS", "false")
    monkeypatch.setenv("PORTRAIT_POLL_SECONDS", "5")
    params = parsed(["--open-reads", "--poll-seconds", "0"])
    assert (params["open_reads"], params["poll_seconds"]) == (True, 0.0)
    monkeypatch.delenv("PORTRAIT_OPEN_READS")
    monkeypatch.delenv("PORTRAIT_POLL_SECONDS")
    config = worker_config(parsed([]), tmp_path)
    assert (config.open_reads, config.poll_seconds) == (True, 30.0)


@pytest.mark.parametrize(("name", "value"), [("PORTRAIT_OPEN_READS", "maybe"), ("PORTRAIT_POLL_SECONDS", "often")])
def test_a_bad_value_is_an_error_naming_the_variable(monkeypatch, name: str, value: str) -> None:
    import socket

    monkeypatch.setenv(name, value)
    with socket.socket() as taken:  # should the value be accepted, serve stops at the busy port, starting nothing
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        res = CliRunner().invoke(app, ["serve", "--port", str(taken.getsockname()[1])])
    assert res.exit_code == 2
    assert name in " ".join(res.output.split())


def test_the_documented_runtime_off_switches_reach_the_worker(tmp_path: Path) -> None:
    """README: ``PORTRAIT_GC_FREEZE=false`` etc. turn a runtime knob off; ``portrait serve`` used to drop them."""
    switches = {"PORTRAIT_GC_FREEZE": "false", "PORTRAIT_GC_THRESHOLD0": "0", "PORTRAIT_OMP_PASSIVE": "false",
                "PORTRAIT_FIX_TIMEOUT_TIMERS": "false"}
    env = server_env(tmp_path, "sqlite:///x.db", "k", base={**switches, "OTEL_SDK_DISABLED": "false"})
    assert {k: env.get(k) for k in switches} == switches
    assert env["OTEL_SDK_DISABLED"] == "true"  # that one is --tracing's to decide
    config = ServeConfig.from_env(env)
    knobs = (config.gc_freeze, config.gc_threshold0, config.omp_passive, config.fix_timeout_timers)
    assert knobs == (False, 0, False, False)


def test_a_bad_redis_address_stops_serve_before_any_worker_starts(monkeypatch) -> None:
    """The workers read PORTRAIT_FEAST_REDIS (else PORTRAIT_REDIS) for the online store: a typo is named at once,
    not a worker that never comes up."""
    monkeypatch.setenv("PORTRAIT_REDIS", "no port here")
    res = CliRunner().invoke(app, ["serve", "--port", "1"])
    assert res.exit_code == 2 and "PORTRAIT_REDIS='no port here'" in " ".join(res.output.split())
