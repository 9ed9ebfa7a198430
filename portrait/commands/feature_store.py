"""``portrait features apply|materialize|...``: the Feast side of the features group."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the Feast commands to ``app`` (the ``features`` group)."""
