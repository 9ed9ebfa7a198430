"""The ``portrait`` command line: one typer app, one module per area.

Commands are thin: they parse options, build a config object and call a plain
function from ``features``, ``training`` or ``serving``. Heavy libraries are
imported inside the commands so ``portrait --help`` answers at once.
Each module in ``portrait/commands`` exposes ``register(root)``.
"""

from __future__ import annotations

import typer

from portrait.commands import audience, data, demo, evaluate, features, identity, lookalike, models, score, serve, train
from portrait.commands._help import plain_help

app = typer.Typer(
    name="portrait",
    help="Customer profiles (用户画像): OneID, features and tags, models, audiences and serving.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(data.app, name="data")
app.add_typer(evaluate.app, name="evaluate")
for _module in (identity, features, train, models, audience, lookalike, score, serve, demo):
    _module.register(app)
plain_help(app)  # help texts are plain prose: [brackets] shown, paragraphs rewrapped at the terminal's width


if __name__ == "__main__":
    app()
