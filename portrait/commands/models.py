"""``portrait models list|promote|rollback``: the MLflow model registry, for people.

Every trained model is registered with alias ``challenger``; training promotes it to
``champion`` only when it beats the champion on the same holdout. These commands show
the versions and let a person promote a version by hand or roll back to the previous champion.
"""

from __future__ import annotations

import typer

from portrait.commands._common import console, emit_json, fail, settings

app = typer.Typer(help="The MLflow model registry: list versions, promote a challenger, roll back.", no_args_is_help=True)


def _setup() -> None:
    from training import registry

    s = settings()
    try:
        registry.setup(s.mlflow_uri, s.mlflow_artifacts)
    except ValueError as exc:  # an unknown scheme in PORTRAIT_MLFLOW_URI / MLFLOW_TRACKING_URI
        fail(f"PORTRAIT_MLFLOW_URI (or MLFLOW_TRACKING_URI): {exc}")


@app.command("list")
def list_cmd(
    name: str = typer.Argument(None, help="Registered model (churn, ltv, propensity, recommender, lookalike); all if omitted."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List registered versions with their aliases (champion / challenger) and metrics."""
    from mlflow.exceptions import MlflowException

    from training import registry

    _setup()
    try:
        rows = registry.list_versions(name)
    except MlflowException as exc:
        fail(f"model {name!r}: {exc.message}")
    if json_out:  # versions as numbers in JSON (MLflow hands them out as text)
        emit_json([{**r, "version": int(r["version"]) if str(r["version"]).isdigit() else r["version"]} for r in rows])
        return
    from rich.table import Table

    table = Table("model", "version", "aliases", "run", "metrics")
    for col in table.columns:  # wrap, never cut: an alias or a run id shown as "champ…" is useless
        col.overflow = "fold"
    table.columns[2].min_width = max([len(a) for r in rows for a in r["aliases"]] + [7])  # one alias never splits
    for r in rows:
        metrics = "\n".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(r["metrics"].items()))
        table.add_row(r["name"], r["version"], "\n".join(r["aliases"]), r["run_id"] or "", metrics)
    console.print(table if rows else "no registered models: train one first (`portrait train churn`, "
                  "`portrait train recommender`, ... or `portrait demo`)")


@app.command()
def promote(
    name: str = typer.Argument(..., help="Registered model name."),
    version: str = typer.Argument(..., help="Version to make champion."),
    reason: str = typer.Option("manual", help="Why (stored on the version)."),
) -> None:
    """Make VERSION the champion of NAME by hand (bypasses the gate; recorded for rollback)."""
    from mlflow.exceptions import MlflowException

    from training import registry

    _setup()
    try:
        registry.promote(name, version, reason)
    except MlflowException as exc:
        fail(f"model {name!r} version {version!r}: {exc.message}")
    console.print(f"{name}: champion is now version {version}")


@app.command()
def rollback(name: str = typer.Argument(..., help="Registered model name.")) -> None:
    """Restore the previous champion of NAME."""
    from mlflow.exceptions import MlflowException

    from training import registry

    _setup()
    try:
        version = registry.rollback(name)
    except ValueError as exc:
        fail(str(exc))
    except MlflowException as exc:  # e.g. a model never registered
        fail(f"model {name!r}: {exc.message}; the registered models and versions: `portrait models list`")
    console.print(f"{name}: champion rolled back to version {version}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="models")
