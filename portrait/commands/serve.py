"""``portrait serve``: start the BentoML service and print curl examples."""

from __future__ import annotations

import typer


def register(root: typer.Typer) -> None:
    """Add ``portrait serve`` to the root app (registered by the serving area once it exists)."""
