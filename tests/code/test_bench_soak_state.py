"""The soak benchmark's saved server handle: a stale ``soak_state.json`` is discarded and never ``killpg``'d.

No server is started: a ``sleep`` in its own session stands in for the soak server's
process group, and ``os.killpg`` is replaced by a recorder, so nothing is signalled.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks import _soak_state
from benchmarks.serving_soak import forget_parts

linux = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


@pytest.fixture()
def kills(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every ``os.killpg`` call, recorded instead of sent."""
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "killpg", lambda pgid, sig: calls.append((pgid, sig)))
    return calls


@pytest.fixture()
def group() -> Iterator[subprocess.Popen]:
    """A live process group leader, like the soak server (``start_new_session=True``)."""
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield proc
    proc.kill()  # our own child, by its pid
    proc.wait()


def _save(path: Path, pgid: int, ident: dict | None) -> Path:
    state = {"done": 1, "errors": 0, "p99s": [], "samples": [[0, 1.0]], "seconds": 1.0, "invocations": 1}
    saved = {"base": "http://127.0.0.1:9", "pgid": pgid, "state": state, "when": "then"}
    if ident is not None:
        saved["ident"] = ident
    path.write_text(json.dumps(saved))
    return path


@linux
def test_dead_pid_is_discarded_and_never_signalled(tmp_path: Path, kills: list, capsys) -> None:  # noqa: ANN001
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    ident = _soak_state.proc_identity(proc.pid)
    assert ident is not None and ident["pgid"] == proc.pid
    proc.kill()
    proc.wait()  # reaped: the pid names nothing now
    path = _save(tmp_path / "soak_state.json", proc.pid, ident)
    assert _soak_state.load(path) is None
    assert not path.exists()
    assert "stale" in capsys.readouterr().out
    _soak_state.Attached("http://127.0.0.1:9", proc.pid, ident).stop()
    assert kills == []


@linux
@pytest.mark.parametrize("stale", [
    {"starttime": -1},  # the same pgid now led by another process: a reused number, another start time
    {"boot_id": "another-boot"},  # the machine rebooted since
    None,  # written before identities were saved: nothing to prove it by
], ids=["start-time", "boot", "no-identity"])
def test_mismatched_identity_is_discarded(tmp_path: Path, kills: list, group: subprocess.Popen,
                                          stale: dict | None) -> None:
    ident = _soak_state.proc_identity(group.pid)
    assert ident is not None
    path = _save(tmp_path / "soak_state.json", group.pid, None if stale is None else {**ident, **stale})
    assert _soak_state.load(path) is None
    assert not path.exists()
    assert kills == []


def test_unreadable_state_is_discarded(tmp_path: Path, kills: list) -> None:
    path = tmp_path / "soak_state.json"
    path.write_text("{not json")
    assert _soak_state.load(path) is None
    assert not path.exists()
    assert kills == []


@linux
def test_matching_state_is_accepted_and_stopped(tmp_path: Path, kills: list, group: subprocess.Popen) -> None:
    ident = _soak_state.proc_identity(group.pid)
    path = _save(tmp_path / "soak_state.json", group.pid, ident)
    loaded = _soak_state.load(path)
    assert loaded is not None
    server, saved = loaded
    assert (server.base, server.pgid, server.ident) == ("http://127.0.0.1:9", group.pid, ident)
    assert saved["state"]["done"] == 1 and path.exists()
    server.stop()
    assert kills == [(group.pid, signal.SIGTERM)]


@linux
def test_fresh_stops_a_live_server_but_not_a_stale_one(tmp_path: Path, kills: list, group: subprocess.Popen) -> None:
    ident = _soak_state.proc_identity(group.pid)
    _save(tmp_path / "soak_state.json", group.pid, {**ident, "starttime": ident["starttime"] + 7})
    (tmp_path / "noop.json").write_text("{}")
    forget_parts(tmp_path)
    assert kills == [] and list(tmp_path.glob("*.json")) == []
    _save(tmp_path / "soak_state.json", group.pid, ident)
    forget_parts(tmp_path)
    assert kills == [(group.pid, signal.SIGTERM)]


def test_without_proc_nothing_is_ours(tmp_path: Path, kills: list, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_soak_state, "BOOT_ID", tmp_path / "no-such-file")  # as on a platform without /proc
    assert _soak_state.proc_identity(os.getpid()) is None
    server = _soak_state.Attached("http://127.0.0.1:9", os.getpid(), None)
    assert not server.ours()
    server.stop()
    assert kills == []


@linux
def test_started_child_is_ours(kills: list, group: subprocess.Popen) -> None:
    server = _soak_state.Attached.started("http://127.0.0.1:9", group)
    assert server.ours() and server.to_json()["ident"] == _soak_state.proc_identity(group.pid)


def test_starttime_is_field_22_even_with_odd_command_names() -> None:
    tail = "R 1 1 1 0 -1 4194304 98 0 0 0 0 0 0 0 20 0 1 0 3140439 3133440 357"
    assert _soak_state.starttime(f"17690 (cat) {tail}") == 3140439
    assert _soak_state.starttime(f"17690 (a) b (c)) {tail}") == 3140439
    assert _soak_state.starttime("17690 (cut") is None


@linux
def test_fresh_really_stops_a_verified_server(tmp_path: Path, group: subprocess.Popen) -> None:
    _save(tmp_path / "soak_state.json", group.pid, _soak_state.proc_identity(group.pid))
    forget_parts(tmp_path)  # os.killpg not replaced: the SIGTERM reaches our own stand-in group
    assert group.wait(timeout=10) == -signal.SIGTERM
