"""Write one benchmark's section of ``benchmarks/RESULTS.md`` without touching the others."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = "# Benchmark results\n\nEach section is written by its benchmark; the command and date are in it.\n"


def machine() -> str:
    return f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}"


def _pattern(name: str) -> re.Pattern:
    return re.compile(rf"<!-- section:{re.escape(name)} -->.*?<!-- /section:{re.escape(name)} -->\n", re.S)


def read_section(name: str, text: str | None = None) -> str | None:
    """The section ``name`` of ``text`` (default: RESULTS.md) as written, markers included; None if absent."""
    if text is None:
        text = RESULTS.read_text() if RESULTS.exists() else ""
    m = _pattern(name).search(text)
    return m.group(0) if m else None


def write_section(name: str, markdown: str, command: str) -> None:
    """Replace the section ``name`` in RESULTS.md with ``markdown`` (adds command, date, machine)."""
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = (
        f"<!-- section:{name} -->\n## {name}\n\n`{command}` — {stamp}, {machine()}\n\n"
        f"{markdown.strip()}\n<!-- /section:{name} -->\n"
    )
    pattern = _pattern(name)
    text = pattern.sub(lambda _: body, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + body
    tmp = RESULTS.with_suffix(".md.tmp")
    tmp.write_text(text)
    os.replace(tmp, RESULTS)
