"""``portrait features ...``: build features and tags as of a date; Feast apply and materialize."""

from __future__ import annotations

import typer

app = typer.Typer(help="Features and tags: build as of a date, Feast apply and materialize, tag catalog.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    from portrait.commands import feature_store  # the Feast commands (apply, materialize, ...) live there

    feature_store.register(app)
    root.add_typer(app, name="features")
