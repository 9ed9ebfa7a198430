"""``portrait evaluate lookalike``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's evaluate command(s) to ``app`` (the ``evaluate`` group)."""
