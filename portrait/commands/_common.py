"""Helpers shared by the CLI commands: settings, errors, progress bars, JSON output."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from portrait.settings import Settings, load_settings

console = Console(stderr=True)  # human output goes to stderr so --json stdout stays parseable


def settings() -> Settings:
    return load_settings()


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a clear error and exit non-zero (2 = bad input)."""
    from rich.markup import escape

    # one line, never wrapped (scripts grep it), and brackets in it are text, not rich markup
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def _plain(obj: Any) -> Any:
    """``obj`` with numpy scalars as Python numbers and NaN/inf as ``null`` (not valid JSON otherwise)."""
    import math

    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def emit_json(obj: Any) -> None:
    """Write ``obj`` as strict JSON to stdout (numbers as plain numbers, NaN as null)."""
    sys.stdout.write(json.dumps(_plain(obj), indent=2, default=float, allow_nan=False) + "\n")


@contextmanager
def progress(description: str, total: float | None = None) -> Iterator[Any]:
    """A rich progress bar; yields ``advance(n=1, description=None)``."""
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f}" if total else ""), TimeElapsedColumn(),
        console=console, transient=False,
    ) as bar:
        task = bar.add_task(description, total=total)

        def advance(n: float = 1, description: str | None = None) -> None:
            bar.update(task, advance=n, **({"description": description} if description else {}))

        yield advance
