"""``portrait evaluate lookalike``: portrait's default lookalike and its peers on any interactions file."""

from __future__ import annotations

from pathlib import Path

import typer

from portrait.commands._common import console, emit_json, fail, progress


def _rank(text: str) -> tuple[int, int]:
    try:
        lo, hi = (int(x) for x in text.split("-", 1))
    except ValueError:
        fail(f"--items-rank must look like 51-80, got {text!r}")
    if lo < 1 or hi < lo:
        fail(f"--items-rank must be LOW-HIGH with 1 <= LOW <= HIGH, got {text!r}")
    return lo, hi


def evaluate_lookalike_cmd(
    interactions: Path = typer.Option(..., "--interactions", "-i", help="CSV/TSV/Parquet with user and item columns "
                                      "(header optional; MovieLens u.data works)."),
    items_rank: str = typer.Option("51-80", help="Items (by number of users, 1-based, inclusive) used as targets."),
    seed_fraction: float = typer.Option(0.3, help="Share of each target item's users given as seeds."),
    seed: int = typer.Option(42, min=0, max=2**32 - 1, help="Seed of the seed draws and of the models."),
    method: str = typer.Option("auto", help="portrait's method on the interactions: auto or items. The methods "
                               "over user embeddings (centroid, knn, pu) are measured as the *_als/centroid_torch peers."),
    peers: str = typer.Option("activity,logreg,knn_als,centroid_als", help="Comma-separated peers measured in the "
                              "same run: activity, logreg, knn_als, centroid_als, centroid_torch, pu_als."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON to stdout."),
) -> None:
    """Hide each target item, give a share of its users as seeds, rank everyone else: AUC and R-precision."""
    from training.lookalike_eval import PEERS, EvalConfig, evaluate_frame
    from training.recommender import read_interactions

    names = tuple(p.strip() for p in peers.split(",") if p.strip())
    unknown = [p for p in names if p not in PEERS]
    if unknown:
        fail(f"--peers: unknown peer(s) {unknown}; choose from {', '.join(PEERS)}")
    if method in ("centroid", "knn", "pu"):
        fail(f"--method {method} scores user embeddings, which this protocol builds per peer: ask for the peer "
             f"{'centroid_als or centroid_torch' if method == 'centroid' else method + '_als'} instead")
    if method not in ("auto", "items"):
        fail(f"--method must be auto or items, got {method!r}")
    if not 0 < seed_fraction < 1:
        fail(f"--seed-fraction must be in (0, 1), got {seed_fraction}")
    rank = _rank(items_rank)
    try:
        df = read_interactions(interactions)
    except (OSError, ValueError) as exc:
        fail(str(exc))
    config = EvalConfig(items_rank=rank, seed_fraction=seed_fraction, seed=seed, peers=names, method=method)
    with progress("scoring target items", total=rank[1] - rank[0] + 1) as advance:
        try:
            out = evaluate_frame(df, config, progress=lambda _: advance(1))
        except ValueError as exc:
            fail(str(exc))
    if as_json:
        emit_json(out)
        return
    from rich.table import Table

    table = Table(title=f"{interactions.name}: items ranked {items_rank}, seeds {seed_fraction:.0%} (seed {seed})")
    for col in ("method", "AUC", "R-precision", "seconds"):
        table.add_column(col)
    table.add_row(f"{out['method']} (default)", f"{out['auc']:.4f}", f"{out['r_precision']:.4f}", f"{out['seconds']:.1f}")
    for name, r in out["baselines"].items():
        table.add_row(name, f"{r['auc']:.4f}", f"{r['r_precision']:.4f}", f"{r['seconds']:.1f}")
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``lookalike`` to ``app`` (the ``evaluate`` group)."""
    app.command("lookalike")(evaluate_lookalike_cmd)
