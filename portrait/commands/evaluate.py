"""``portrait evaluate ...``: measure portrait's default models on any data file.

Each command prints a JSON whose top level holds portrait's default configuration's
figures and whose ``baselines`` hold the peers, all measured in the same run.
"""

from __future__ import annotations

import typer

from portrait.commands import eval_lookalike, eval_recsys, eval_value

app = typer.Typer(help="Evaluate portrait's default models on your own data (JSON output with --json).", no_args_is_help=True)

for _module in (eval_value, eval_recsys, eval_lookalike):
    _module.register(app)
