"""``portrait score``: batch-score every customer with the champion models (``--write-back`` pushes predicted tags)."""

from __future__ import annotations

import typer


def register(root: typer.Typer) -> None:
    """Add ``portrait score`` to the root app (registered by the serving area once it exists)."""
