"""The handle on a paused soak's server (``soak_state.json``), and the check that it is still ours.

``benchmarks.serving_soak --part soak`` may stop before its request target and leave
its server idling; the next ``--part soak`` re-attaches to it through the saved base
URL and process-group id, and the last one stops it with ``killpg``. A saved pgid
outlives what it named: the server may have died, the machine rebooted, the number
been handed to an unrelated process group. So the leader's identity is saved beside
it (start time in clock ticks since boot, ``/proc/<pid>/stat`` field 22, plus the boot
id) and compared before the state is trusted or the group signalled. Without
``/proc`` (not Linux) nothing can be proved and a saved group counts as not ours.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def proc_identity(pid: int) -> dict | None:
    """What tells process ``pid`` apart from a later process given the same number: its start time, the
    boot it belongs to, and its process group. None when it is gone or there is no ``/proc``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = BOOT_ID.read_text().strip()
        pgid = os.getpgid(pid)
    except (OSError, AttributeError):  # gone, no /proc, or no getpgid (Windows)
        return None
    start = starttime(stat)
    return None if start is None else {"starttime": start, "boot_id": boot, "pgid": pgid}


def starttime(stat: str) -> int | None:
    """Field 22 of a ``/proc/<pid>/stat`` line: when the process started, in clock ticks since boot."""
    # the command name (field 2) is parenthesised and may hold spaces or ")": count fields after the last ")"
    fields = stat.rpartition(")")[2].split()
    try:
        return int(fields[19])  # fields[0] is field 3
    except (IndexError, ValueError):
        return None


class Attached:
    """A soak server by base URL and process group; ``ident`` is the leader's :func:`proc_identity` when it was
    started, ``proc`` its ``Popen`` when this invocation started it (an unreaped child keeps its pid)."""

    def __init__(self, base: str, pgid: int, ident: dict | None, proc: subprocess.Popen[Any] | None = None) -> None:
        self.base, self.pgid, self.ident, self.proc = base, pgid, ident, proc

    @classmethod
    def started(cls, base: str, proc: subprocess.Popen[Any]) -> Attached:
        """The server this invocation just started (its own session, so its pid is its pgid)."""
        return cls(base, proc.pid, proc_identity(proc.pid), proc)

    def ours(self) -> bool:
        """Whether the group is still the server that was started: only then may it be signalled."""
        if self.proc is not None and self.proc.poll() is None:
            return True
        return self.ident is not None and proc_identity(self.pgid) == self.ident

    def worker_pid(self) -> int:
        with urllib.request.urlopen(f"{self.base}/status", timeout=10) as r:
            return int(json.loads(r.read())["runtime"]["pid"])

    def stop(self) -> None:
        """SIGTERM to the group, but only after :meth:`ours` says it is still the server that was started."""
        if not self.ours():
            print(f"soak server (process group {self.pgid}) is gone or no longer ours; not signalling it", flush=True)
            return
        try:
            os.killpg(self.pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        if self.proc is not None:  # reap our own child so its pid is not left a zombie
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass

    def to_json(self) -> dict:
        return {"base": self.base, "pgid": self.pgid, "ident": self.ident}


def load(state_path: Path) -> tuple[Attached, dict] | None:
    """The saved server and the rest of the saved state, if that server is still the one that wrote it.
    Otherwise (unreadable, older format without an identity, dead or reused pgid) the file is removed with a
    message and None is returned: the caller starts afresh, and nothing was signalled."""
    try:
        saved = json.loads(state_path.read_text())
        server = Attached(str(saved["base"]), int(saved["pgid"]), saved.get("ident"))
    except (OSError, ValueError, KeyError, TypeError) as e:
        why = f"is unreadable ({e})"
    else:
        if server.ours():
            return server, saved
        why = (f"is stale: process group {server.pgid} is not the server that wrote it (it exited, the machine "
               f"rebooted, its id was reused, or the file predates identity checks)")
    print(f"{state_path} {why}; discarding it and starting a fresh soak (no process was signalled; "
          f"if an old soak server still runs, stop it by hand)", flush=True)
    state_path.unlink(missing_ok=True)
    return None
