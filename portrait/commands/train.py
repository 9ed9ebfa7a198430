"""``portrait train ...``: train a model, track it in MLflow, register it as a challenger."""

from __future__ import annotations

import typer

app = typer.Typer(help="Train churn, ltv, propensity, recommender and lookalike models (tracked in MLflow).", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    from portrait.commands import train_lookalike, train_recsys, train_value

    for module in (train_value, train_recsys, train_lookalike):
        module.register(app)
    root.add_typer(app, name="train")
