"""``portrait demo``: the whole pipeline on synthetic data, ending with the service up."""

from __future__ import annotations

import typer


def register(root: typer.Typer) -> None:
    """Add ``portrait demo`` to the root app."""
