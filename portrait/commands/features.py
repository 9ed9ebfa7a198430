"""``portrait features ...``: build features and tags as of a date; Feast apply and materialize."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from portrait.commands._common import console, emit_json, fail, progress, settings

app = typer.Typer(help="Features and tags: build as of a date, Feast apply and materialize, tag catalog.", no_args_is_help=True)


@app.command("build")
def build_(
    as_of: str = typer.Option(None, "--as-of", help="Cutoff date(s), comma-separated (2026-06-01,2026-07-01). "
                              "Only facts strictly before a cutoff count. Default: midnight after the data's last event."),
    raw: Path = typer.Option(None, help="Canonical tables folder (default: <data>/raw)."),
    identity: Path = typer.Option(None, help="OneID folder with record_map.parquet, golden.parquet (default: <data>/identity)."),
    out: Path = typer.Option(None, help="Output folder (default: <data>/features)."),
    n_categories: int = typer.Option(20, help="Affinity columns for this many top categories (0: none)."),
    threads: int = typer.Option(None, help="DuckDB threads (default: all cores)."),
    memory_limit: str = typer.Option(None, help="DuckDB memory limit: a number and KB/MB/GB/TB, e.g. 8GB (default: DuckDB's)."),
    tag_config: Path = typer.Option(None, "--tag-config", help="YAML of rule-tag thresholds (TagConfig fields), "
                                    "e.g. 'dormant_days: 120'."),
    tz: str = typer.Option("UTC", "--tz", help="Time zone of the hour-of-day and weekend features (e.g. "
                           "Asia/Shanghai: night_share counts 21-24 h Shanghai time). Cutoffs stay UTC."),
    append: bool = typer.Option(False, "--append", help="Keep the snapshots of other cutoffs already built "
                                "(replace only these cutoffs); interactions are always rebuilt."),
    json_: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Compute customer features + rule tags, item features and interactions as of each cutoff.

    Writes <data>/features/{customer_features,item_features,interactions}.parquet and meta.json, atomically.
    """
    from features.build import FeatureConfig, build, parse_cutoffs
    from features.schema import SchemaError
    from features.tags import load_tag_config

    s = settings()
    try:
        config = FeatureConfig(n_categories=n_categories, threads=threads, memory_limit=memory_limit,
                               hmac_key=s.hmac_key, tz=tz)
        cutoffs = parse_cutoffs(as_of) if as_of else None
        tags = load_tag_config(tag_config) if tag_config else None
        with progress("features", total=5) as advance:
            result = build(raw or s.raw_dir, identity or s.identity_dir, out or s.features_dir, cutoffs, config,
                           on_step=lambda msg: advance(1, description=msg), tag_config=tags, append=append)
            advance(1, description="features written")
    except (SchemaError, ValueError, OSError) as exc:
        fail(str(exc))
    summary = {
        "cutoffs": [c.isoformat() for c in result.cutoffs], "rows": result.rows,
        "seconds": {k: round(v, 2) for k, v in result.seconds.items()}, "unmapped": result.unmapped,
        "unmapped_sources": {t: {src: {"rows": n, "unmapped": lost} for src, (lost, n) in per.items()}
                             for t, per in result.unmapped_sources.items()},
        "paths": {k: str(v) for k, v in result.paths.items()}, "categories": result.categories,
    }
    if json_:
        emit_json(summary)
        return
    for name, n in result.rows.items():
        console.print(f"{name}: {n:,} rows -> {result.paths[name]} ({result.seconds[name]:.1f} s)")
    if any(result.unmapped.values()):
        console.print(f"[yellow]rows not mapped (no one_id: dropped; item not in catalog: customer features only):[/] "
                      f"{result.unmapped}")
    for table, per_source in result.unmapped_sources.items():
        for source, (lost, total) in per_source.items():
            why = ("no identity record has this source" if source not in result.known_sources
                   else "their record ids are not in identity_records")
            console.print(f"[yellow]warning:[/] {table} of source {escape(repr(source))}: {lost:,} of {total:,} rows "
                          f"belong to no customer and count in no feature ({why}; OneID knows sources "
                          f"{escape(', '.join(result.known_sources))}). Import the identity records of that source "
                          "(same --set source=...) and rerun `portrait identity resolve`", soft_wrap=True)


@app.command("tags")
def tags_(
    json_: bool = typer.Option(False, "--json", help="Print the catalog as JSON."),
    definitions: bool = typer.Option(False, "--definitions", "-d", help="Show each tag's definition."),
) -> None:
    """List the tag catalog (features/tag_catalog.yaml): rule tags and the predicted tags models write back."""
    from rich.table import Table

    from features.tags import load_catalog

    try:
        catalog = load_catalog()
    except ValueError as exc:
        fail(str(exc))
    if json_:
        emit_json(catalog)
        return
    table = Table(title="tag catalog")
    cols = ("name", "type", "source", "owner", "version", *(("definition",) if definitions else ()))
    for col in cols:
        table.add_column(col, overflow="fold")
    for e in catalog:
        table.add_row(*(str(e[c]) for c in cols))
    console.print(table)


def register(root: typer.Typer) -> None:
    from portrait.commands import feature_store  # the Feast commands (apply, materialize, ...) live there

    feature_store.register(app)
    root.add_typer(app, name="features")
