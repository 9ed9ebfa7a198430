"""``portrait score``: batch-score every customer with the champion models (``--write-back`` pushes predicted tags).

The same code path as ``POST /tags/writeback``: the champions are loaded from the
MLflow registry by alias, every customer of the latest feature snapshot is scored
in one batch, and with ``--write-back`` the predicted tags are appended to
``<data>/tags/history.parquet`` and pushed to Feast (online + offline). Idempotent
per model version and date (``--force`` rewrites a batch); atomic.
"""

from __future__ import annotations

import datetime as dt

import typer

from portrait.commands._common import console, emit_json, fail, settings

MODELS = ("churn", "ltv", "propensity")


def score(
    write_back: bool = typer.Option(False, "--write-back", help="Write predicted tags to the history and Feast."),
    models: list[str] = typer.Option(list(MODELS), "--model", "-m", help="Models to score (repeatable)."),
    date: str = typer.Option(None, help="Scoring date YYYY-MM-DD (default: today, UTC); one batch per version and date."),
    force: bool = typer.Option(False, help="Rewrite a batch already written for this model version and date."),
    push: bool = typer.Option(True, help="Push to Feast besides writing the tag history."),
    alias: str = typer.Option("champion", help="Registry alias of the models to use."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Score all customers with the champion churn / LTV / propensity models."""
    models = list(dict.fromkeys(models))  # a model named twice is scored once
    bad = [m for m in models if m not in MODELS]
    if bad:
        fail(f"unknown model(s) {bad}: choose from {list(MODELS)}")
    try:
        day = dt.date.fromisoformat(date) if date else None
    except ValueError:
        fail(f"--date must be YYYY-MM-DD, got {date!r}")
    from serving import logic
    from serving.config import ServeConfig
    from serving.errors import ServingError
    from serving.loader import Loader
    from serving.writeback import score_all, write_back as do_write_back

    s = settings()
    cfg = ServeConfig(data_dir=s.data_dir, mlflow_uri=s.mlflow_uri, hmac_key=s.hmac_key, alias=alias,
                      model_names={m: m for m in models}, poll_seconds=0)
    with console.status("loading champion models and features"):
        loader = Loader(cfg, load_model=logic.load_model, load_resources=logic.load_resources, prepare=logic.prepare)
        loader.refresh()
    try:
        if write_back:
            with console.status("scoring and writing predicted tags"):
                batches = do_write_back(loader.bundle, s.data_dir, models, day, force, push)
            result = [b.model_dump(mode="json") for b in batches]
        else:
            now = dt.datetime.now(dt.timezone.utc)
            result = []
            for m in models:
                df = score_all(loader.bundle, m, now, day or now.date())
                result.append({"model": m, "version": loader.bundle.model(m).version, "rows": len(df),
                               "tags": df["value"].value_counts(dropna=False).astype(int).to_dict()})
    except ServingError as exc:
        fail(exc.message)
    if as_json:
        emit_json(result)
        return
    for r in result:
        console.print(r)


def register(root: typer.Typer) -> None:
    """Add ``portrait score`` to the root app."""
    root.command("score")(score)
