"""``portrait train churn, ltv, propensity``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's train command(s) to ``app`` (the ``train`` group)."""
