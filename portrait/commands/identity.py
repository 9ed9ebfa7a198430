"""``portrait identity ...``: OneID: resolve source records into one person per one_id, explain a person."""

from __future__ import annotations

import typer

app = typer.Typer(help="OneID: resolve source records into one person per one_id, explain a person.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="identity")
