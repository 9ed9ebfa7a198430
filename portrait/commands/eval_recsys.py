"""``portrait evaluate recommender``: portrait's default recommender and its peers on your interactions."""

from __future__ import annotations

from pathlib import Path

import typer

from portrait.commands._common import console, emit_json, fail, progress


def evaluate_recommender_cmd(
    interactions: Path = typer.Option(..., "--interactions", "-i", help="CSV/TSV/Parquet with user, item, "
                                      "optional weight, optional timestamp (header optional; MovieLens u.data works)."),
    protocol: str = typer.Option("random-75-25", help="random-75-25 (per-user random 75/25: 'what else'; with "
                                 "timestamps the default then leaves out items first seen after a user's last event, "
                                 "unless its inner split vetoes it), temporal (each user's last 25% by time) or "
                                 "global-temporal (one cut-off for everyone): 'what next'."),
    seed: int = typer.Option(42, min=0, max=2**32 - 1, help="Split seed (also seeds the default model's inner validation)."),
    k: int = typer.Option(10, help="Cut-off for the metrics."),
    peers: str = typer.Option("popularity,als,bpr,item_knn,ease", help="Comma-separated peers measured in the same run."),
    use_weights: bool = typer.Option(False, "--use-weights", help="Feed the weight column to the peers too (default: peers binary; portrait's default always reads weights)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON to stdout."),
) -> None:
    """Split, fit (default model tunes itself on the training part only), rank with seen items removed, score at k."""
    from training.evaluation.splits import PROTOCOLS
    from training.recommender import evaluate_frame, read_interactions

    if protocol not in PROTOCOLS:
        fail(f"--protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    if k < 1:
        fail(f"--k must be >= 1, got {k}")
    names = tuple(p.strip() for p in peers.split(",") if p.strip())
    from models.recommenders import NAMES

    unknown = [p for p in names if p not in NAMES]
    if unknown:
        fail(f"--peers: unknown model(s) {unknown}; choose from {', '.join(NAMES)}")
    try:
        df = read_interactions(interactions)
    except (OSError, ValueError) as exc:
        fail(str(exc))
    if protocol != "random-75-25" and "timestamp" not in df.columns:
        fail(f"{interactions}: --protocol {protocol} needs a timestamp column")
    with progress("fitting portrait's default and peers", total=len(names) + 1) as advance:
        try:
            out = evaluate_frame(df, protocol, seed, k, names, use_weights,
                                 progress=lambda name: advance(1, f"peer {name}"))
        except ValueError as exc:  # the split cannot be made (e.g. one timestamp for everything)
            fail(f"{interactions}: {exc}")
        advance(1)
    if as_json:
        emit_json(out)
        return
    from rich.table import Table

    table = Table(title=f"{interactions.name}: {protocol}, seed {seed}, k={k}")
    for col in ("model", "precision", "recall", "ndcg", "map", "hit_rate", "coverage", "fit_seconds"):
        table.add_column(col)
    rows = [("window_ease (default)", out)] + list(out["baselines"].items())
    for name, r in rows:
        table.add_row(name, *(f"{r[m]:.4f}" for m in ("precision", "recall", "ndcg", "map", "hit_rate", "coverage")),
                      f"{r['fit_seconds']:.2f}")
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``recommender`` to ``app`` (the ``evaluate`` group)."""
    app.command("recommender")(evaluate_recommender_cmd)
