"""The ``portrait`` command line: one typer app, one sub-app per area.

Commands are thin: they parse options, build a config object and call a plain
function from ``features``, ``training`` or ``serving``. Heavy libraries are
imported inside the commands so ``portrait --help`` answers at once.
"""

from __future__ import annotations

import typer

from portrait.commands import data, evaluate

app = typer.Typer(
    name="portrait",
    help="Customer profiles (用户画像): OneID, features and tags, models, audiences and serving.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(data.app, name="data")
app.add_typer(evaluate.app, name="evaluate")


if __name__ == "__main__":
    app()
