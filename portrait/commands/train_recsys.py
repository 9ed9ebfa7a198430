"""``portrait train recommender``: fit portrait's recommender on the features' interactions, register it in MLflow."""

from __future__ import annotations

import typer

from portrait.commands._common import console, emit_json, fail, progress, settings


def train_recommender_cmd(
    model: str = typer.Option("window_ease", help="Model name (window_ease, ease, dlae, als, bpr, item_knn, ...)."),
    half_life_days: float = typer.Option(90.0, help="Recency decay of interaction weights, in days (0 = off)."),
    holdout_days: float = typer.Option(14.0, help="Last days held out to measure the model before the final fit."),
    trials: int = typer.Option(0, help="Optuna trials on an inner temporal split of the training part (0 = none)."),
    exclude: str = typer.Option("purchase", help="Comma-separated event types never re-recommended."),
    promote: bool = typer.Option(True, "--promote/--no-promote",
                                 help="Gate: make the new version champion only if its holdout nDCG beats the champion's."),
    as_json: bool = typer.Option(False, "--json", help="Print the run id and metrics as JSON."),
) -> None:
    """Reads <data>/features/interactions.parquet; registers the model `recommender` (alias challenger).

    The new version becomes champion only when its holdout nDCG beats the current champion's
    configuration refitted on the same events (--no-promote skips the gate).
    """
    from models.recommenders import NAMES
    from training.recommender import RecommenderConfig, train

    if model not in NAMES:
        fail(f"--model must be one of {', '.join(NAMES)}, got {model!r}")
    s = settings()
    artifacts = None if s.mlflow_artifacts is None else str(s.mlflow_artifacts)  # None: the server's own root
    try:
        config = RecommenderConfig(
            data_dir=str(s.data_dir), mlflow_uri=s.mlflow_uri, mlflow_artifacts=artifacts, model=model,
            half_life_days=half_life_days or None, holdout_days=holdout_days, optuna_trials=trials,
            exclude_event_types=tuple(e.strip() for e in exclude.split(",") if e.strip()), promote=promote,
        )
    except ValueError as exc:
        fail(str(exc))
    steps = ["load interactions", "holdout metrics", "fit on all events", "register"] + (["promotion gate"] if promote else [])
    with progress("training recommender", total=len(steps) + (1 if trials else 0)) as advance:
        try:
            run_id = train(config, progress=lambda name: advance(1, name))
        except (FileNotFoundError, ValueError) as exc:
            fail(str(exc))
    import mlflow

    run = mlflow.get_run(run_id)
    metrics, tags = run.data.metrics, run.data.tags
    version = tags.get("model_version")
    version = int(version) if str(version).isdigit() else None
    promoted = {"True": True, "False": False}.get(tags.get("gate.promoted") or "")  # tags are text; None: no gate
    gate = {"promoted": promoted, "reason": tags.get("gate.reason"), "version": version}
    if as_json:
        emit_json({"model": "recommender", "run_id": run_id, "version": version, "promoted": promoted,
                   "metrics": metrics, "gate": gate})
        return
    # as `train churn|ltv|propensity|lookalike` say it: which version, and whether it is now the champion
    role = "champion" if promoted else "challenger" if promote else "challenger; --no-promote: not gated"
    console.print(f"[bold]recommender[/]: run {run_id}, version {version} ({role})")
    console.print(f"  holdout nDCG@{config.k} {metrics.get('holdout_ndcg', float('nan')):.4f} "
                  f"(popularity {metrics.get('holdout_popularity_ndcg', float('nan')):.4f})")
    if gate["reason"]:
        console.print(f"  gate: {gate['reason']}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``recommender`` to ``app`` (the ``train`` group)."""
    app.command("recommender")(train_recommender_cmd)
