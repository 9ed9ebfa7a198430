"""``portrait train lookalike``."""

from __future__ import annotations

import typer

from portrait.commands._common import console, emit_json, fail, settings


def train_lookalike_cmd(
    embedding: str = typer.Option("als", help="Customer embeddings: als (implicit ALS factors) or torch (two-tower)."),
    factors: int = typer.Option(64, help="Embedding size."),
    epochs: int = typer.Option(20, help="Two-tower epochs (--embedding torch)."),
    min_seeds: int = typer.Option(50, help="Smallest seed audience expansion accepts."),
    classifier_min_seeds: int = typer.Option(5000, help="auto method: similarity below, PU classifier from here."),
    index: str = typer.Option("auto", help="FAISS index: auto (exact below 1M customers, IVF above), flat, ivf, hnsw."),
    seed: int = typer.Option(0, min=0, max=2**32 - 1, help="Random seed."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON to stdout."),
) -> None:
    """Embed customers, build the FAISS index, fit the lookalike scorer; log and register `lookalike` in MLflow."""
    from training.lookalike import LookalikeConfig, train

    if embedding not in ("als", "torch"):
        fail(f"--embedding must be als or torch, got {embedding!r}")
    if index not in ("auto", "flat", "ivf", "hnsw"):
        fail(f"--index must be auto, flat, ivf or hnsw, got {index!r}")
    s = settings()
    try:
        config = LookalikeConfig(features_dir=str(s.features_dir), embedding=embedding, factors=factors,
                                 torch_epochs=epochs, min_seeds=min_seeds, classifier_min_seeds=classifier_min_seeds,
                                 index_kind=index, seed=seed)
    except ValueError as exc:
        fail(str(exc))
    with console.status("training the lookalike model"):
        try:
            run_id = train(config, s.mlflow_uri, s.mlflow_artifacts)
        except (FileNotFoundError, ValueError) as exc:
            fail(str(exc))
    import mlflow

    tags = mlflow.get_run(run_id).data.tags
    version = tags.get("model_version")
    result = {"run_id": run_id, "version": int(version) if str(version).isdigit() else None,
              "promoted": {"True": True, "False": False}.get(tags.get("gate.promoted") or ""),
              "gate": tags.get("gate.reason")}
    if as_json:
        emit_json(result)
        return
    console.print(f"lookalike trained: run {run_id}, version {result['version']} "
                  f"({'champion' if result['promoted'] else 'challenger'})")
    if result["gate"]:
        console.print(f"  {result['gate']}")


def register(app: typer.Typer) -> None:
    """Add this module's train command(s) to ``app`` (the ``train`` group)."""
    app.command("lookalike")(train_lookalike_cmd)
