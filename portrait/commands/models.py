"""``portrait models ...``: The MLflow model registry: list versions, promote a challenger, roll back."""

from __future__ import annotations

import typer

app = typer.Typer(help="The MLflow model registry: list versions, promote a challenger, roll back.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="models")
