"""``portrait lookalike ...``: Lookalike expansion of a seed audience."""

from __future__ import annotations

import typer

from portrait.commands._common import console, emit_json, fail, settings

app = typer.Typer(help="Lookalike expansion of a seed audience.", no_args_is_help=True)


def load_champion(alias: str = "champion"):
    """The registered lookalike population (trained by `portrait train lookalike`) and its version."""
    from training import registry
    from training.lookalike import load_population_model

    s = settings()
    registry.setup(s.mlflow_uri, s.mlflow_artifacts)
    version = registry.champion_version("lookalike") if alias == "champion" else None
    try:
        return load_population_model(f"models:/lookalike@{alias}"), version
    except Exception as exc:  # noqa: BLE001 - MLflow raises several types for "not there"
        fail(f"no lookalike model @{alias} in {s.mlflow_uri} ({type(exc).__name__}); run `portrait train lookalike` first")


@app.command("expand")
def expand_cmd(
    seed: str = typer.Option(..., "--seed", "-s", help="Seed audience name (see `portrait audience list`)."),
    reach: str = typer.Option("5%", "--reach", "-r", help="A count (5000) or 1-10% of the eligible population."),
    filter_rule: str = typer.Option(None, "--filter", "-f", help="Eligibility rule, e.g. 'age >= 18 and tag_value_tier != \"none\"'."),
    method: str = typer.Option(None, help="auto (default: by seed size), items, centroid, knn or pu."),
    name: str = typer.Option(None, "--name", help="Name of the saved result (default <seed>_lookalike)."),
    replace: bool = typer.Option(False, "--replace", help="Overwrite an existing audience of that name."),
    explain_columns: str = typer.Option(None, "--explain", help="Columns for the TGI explanation (default: the tag_* columns)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON to stdout."),
) -> None:
    """Expand a seed audience to similar customers; saves a static audience with lineage and explains it."""
    from dataclasses import asdict

    from rich.markup import escape

    from features.audience import AudienceError, AudienceExists, AudienceStore, RuleError, latest_features
    from features.audience_lookalike import expand_audience, explain
    from models.lookalike import SeedTooSmall

    if method not in (None, "auto", "items", "centroid", "knn", "pu"):
        fail(f"--method must be auto, items, centroid, knn or pu, got {method!r}")
    s = settings()
    store = AudienceStore(s.audiences_dir)
    try:
        feats = latest_features(s.features_dir)
        store.get(seed)
    except AudienceError as exc:
        fail(str(exc))
    cols = [c.strip() for c in explain_columns.split(",") if c.strip()] if explain_columns else \
        [c for c in feats.columns if c.startswith("tag_")] or None
    unknown = [c for c in cols or () if c not in feats.columns]
    if unknown:  # checked before anything is computed or saved
        import difflib

        near = sorted({m for c in unknown for m in difflib.get_close_matches(c, list(map(str, feats.columns)), 3)})
        fail(f"--explain: unknown column(s) {', '.join(unknown)}"
             + (f"; did you mean {', '.join(near)}?" if near else f"; columns: {', '.join(map(str, feats.columns[:20]))}"))
    population, version = load_champion()
    explained = {}

    def _explain(result) -> None:  # runs before the audience is saved: a failure here saves nothing
        explained["why"] = explain(store.members(seed, feats), result.members["one_id"], feats, columns=cols)

    try:
        meta, result = expand_audience(store, population, seed, reach, feats, filter_rule, name=name, method=method,
                                       model_version=version, overwrite=replace, check=_explain)
    except SeedTooSmall as exc:
        # the minimum is the trained model's: expand has no option for it
        fail(f"{exc}; to accept smaller seeds retrain with `portrait train lookalike --min-seeds N` "
             "(then `portrait models promote lookalike VERSION`)")
    except AudienceExists as exc:  # the store's message names its Python argument, overwrite=True
        fail(f"audience {exc.name!r} already exists; pass --replace to overwrite it, or --name for another name")
    except (AudienceError, RuleError) as exc:
        fail(str(exc))
    why = explained["why"]
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}", soft_wrap=True)
    from portrait.commands._lookalike_tags import sync_lookalike_tag

    tags = sync_lookalike_tag()  # the members' lookalike_audiences predicted tag (Feast)
    if as_json:
        emit_json({"audience": asdict(meta), "method": result.method, "seeds": result.n_seeds,
                   "seeds_unknown": result.n_seeds_unknown, "eligible": result.eligible, "reach": result.reach,
                   "seconds": result.seconds, "warnings": list(result.warnings), "lookalike_tags": tags,
                   "explanation": why.to_dict(orient="records")})
        return
    from rich.table import Table

    console.print(f"[bold]{meta.name}[/]: {meta.size:,} customers like [bold]{seed}[/] ({result.n_seeds:,} seeds, "
                  f"method {result.method}, eligible {result.eligible:,}, {result.seconds * 1000:.0f} ms)")
    table = Table(title="why: seed vs expansion TGI")
    for col in ("column", "value", "seed share", "seed TGI", "expansion share", "expansion TGI"):
        table.add_column(col)
    for r in why.itertuples():
        table.add_row(r.column, str(r.value), f"{r.seed_share:.1%}", f"{r.seed_tgi:.0f}",
                      f"{r.expansion_share:.1%}", f"{r.expansion_tgi:.0f}")
    console.print(table)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="lookalike")
