"""``portrait lookalike ...``: Lookalike expansion of a seed audience."""

from __future__ import annotations

import typer

app = typer.Typer(help="Lookalike expansion of a seed audience.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="lookalike")
