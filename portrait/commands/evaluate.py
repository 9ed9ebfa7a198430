"""``portrait evaluate ...``: measure portrait's default models on any data file.

Each command prints a JSON whose top level holds portrait's default configuration's
figures and whose ``baselines`` hold the peers, all measured in the same run.
"""

from __future__ import annotations

import typer

app = typer.Typer(help="Evaluate portrait's default models on your own data (JSON output with --json).", no_args_is_help=True)

# Commands live in their own modules and are registered here, one line each.
