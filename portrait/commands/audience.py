"""``portrait audience ...``: Audiences: create by rule or id list, list, show (TGI profile), export, overlap."""

from __future__ import annotations

import typer

app = typer.Typer(help="Audiences: create by rule or id list, list, show (TGI profile), export, overlap.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="audience")
