"""``portrait data ...``: generate synthetic data, import files, validate tables."""

from __future__ import annotations

from dataclasses import replace as replace_spec
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from portrait.commands._common import console, fail, progress, settings

app = typer.Typer(help="Canonical customer data: generate, import, validate.", no_args_is_help=True)


def _report(title: str, rows: list[tuple[str, int, int, int, dict[str, int]]], merge: str | None = None) -> None:
    table = Table(title=title, caption=f"existing rows: {escape(merge)}" if merge else None, caption_justify="left")
    for col in ("table", "input", "accepted", "rejected", "reasons"):
        table.add_column(col, justify="right" if col in ("input", "accepted", "rejected") else "left")
    for name, n_in, n_ok, n_bad, reasons in rows:
        table.add_row(name, f"{n_in:,}", f"{n_ok:,}", f"{n_bad:,}", ", ".join(f"{k}: {v}" for k, v in reasons.items()))
    console.print(table)


@app.command("generate")
def generate(
    people: int = typer.Option(20_000, "--people", "-n", min=1, help="True persons to simulate."),
    seed: int = typer.Option(42, "--seed", "-s", help="Master seed: same seed and options give identical files."),
    now: str = typer.Option("2026-07-01", help="End of the raw history (UTC date); the truth simulates past it."),
    months: int = typer.Option(13, min=1, help="Months of history before --now."),
    workers: int = typer.Option(1, min=1, help="Processes generating blocks (the output does not depend on it)."),
    out: Path = typer.Option(None, help="Data directory (default: PORTRAIT_DATA_DIR); writes raw/ and raw/_truth/."),
) -> None:
    """Generate the synthetic multi-source customer data with its ground truth (the embedded default)."""
    from features.sources.synthetic import GeneratorConfig
    from features.sources.synthetic import generate as run

    try:
        config = GeneratorConfig(people=people, seed=seed, now=now, months=months, workers=workers)
    except ValueError as exc:
        fail(str(exc))
    data_dir = out or settings().data_dir
    try:  # before any work: an --out that cannot hold files fails in one line, not after the first block
        (data_dir / "raw" / "_truth").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"--out {data_dir}: cannot create {data_dir / 'raw' / '_truth'} ({exc.strerror or exc}); "
             "pass a writable folder")
    n_blocks = -(-people // config.block_size)
    try:
        with progress(f"generating {people:,} people", total=n_blocks) as advance:
            summary = run(config, data_dir, on_block=lambda done, total: advance(1))
    except OSError as exc:  # disk full, permissions changed mid-run: the generator removed its partial files
        fail(f"--out {data_dir}: cannot write the generated data ({exc.strerror or exc})")
    table = Table(title=f"generated {people:,} people (seed {seed}) in {summary['seconds']:.1f} s -> {summary['raw_dir']}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, n in summary["rows"].items():
        table.add_row(name, f"{n:,}")
    for name, n in summary["future"].items():
        table.add_row(f"future {name} (truth only)", f"{n:,}")
    console.print(table)
    console.print(f"now = {summary['now']}; ground truth in {summary['truth_dir']}")


@app.command("import")
def import_(
    path: Path = typer.Argument(..., help="CSV, TSV or Parquet file to import (suffix in any case)."),
    table: str = typer.Option(None, "--table", "-t", help="Canonical table (identity_records, events, orders, ...)."),
    mapping: Path = typer.Option(None, "--mapping", "-m", help="YAML mapping file (table, columns, constants, "
                                 "sep, dayfirst, tz, encoding)."),
    map_: list[str] = typer.Option([], "--map", help="canonical=input column, repeatable."),
    set_: list[str] = typer.Option([], "--set", help="canonical=constant value, repeatable (e.g. source=pos)."),
    replace: bool = typer.Option(False, "--replace", help="Replace the whole table instead of merging into it."),
    append: bool = typer.Option(False, "--append", help="The file is an increment (e.g. this month's events): keep "
                                "every earlier row, its own sources' too; a key it brings again takes its row; a row "
                                "identical to one already there is not added twice."),
    dayfirst: bool = typer.Option(None, "--dayfirst/--monthfirst", help="Read ambiguous text dates such as "
                                  "03/04/2026 day-first (3 April); the default is month-first (March 4)."),
    tz: str = typer.Option(None, "--tz", help="Time zone of times without one, e.g. Asia/Shanghai; stored as "
                           "UTC. Default UTC. Epochs and times with an offset are unaffected."),
    encoding: str = typer.Option(None, "--encoding", help="Text encoding of a CSV/TSV file, e.g. gbk, latin-1. "
                                 "Default utf-8 (a byte-order mark is fine)."),
    out: Path = typer.Option(None, help="Output folder for the table (default: <data>/raw)."),
) -> None:
    """Import a file as a canonical table, merged into the table already there.

    The file's rows replace the rows of the same source (its source column) and the rows of
    other sources are kept: a POS export after the CRM one keeps the CRM records. Tables without
    a source column (items, order_lines) keep their rows and take the file's rows by key. Use
    --append for increments (monthly event exports), --replace to replace the whole table. A file without data rows, or with no acceptable row,
    changes nothing. Bad rows go to <data>/rejects/<table>.csv with their data row and a reason;
    event times after tomorrow or before 1970-01-02 are rejected. Columns named like a canonical
    column up to case and punctuation (E-mail, Phone) are read as it. Refunds are order rows with a
    negative amount, optionally naming the refunded order (refund_of, original_order_id, 原订单号).
    Order lines without a line_no column (line, line_id, 行号) have one line per item and order:
    repeated lines are merged (quantities summed) and the summary says how many.
    """
    from features.schema import SchemaError
    from features.sources.generic import ImportSpec, import_file, load_spec

    def pairs(items: list[str], flag: str) -> dict[str, str]:
        bad = [i for i in items if "=" not in i]
        if bad:
            fail(f"{flag} expects canonical=value, got {bad}")
        return dict(i.split("=", 1) for i in items)

    s = settings()
    try:
        spec = load_spec(mapping) if mapping else ImportSpec(table=table or "")
        options = {k: v for k, v in {"dayfirst": dayfirst, "tz": tz, "encoding": encoding}.items() if v is not None}
        spec = replace_spec(spec, table=table or spec.table, columns={**spec.columns, **pairs(map_, "--map")},
                            constants={**spec.constants, **pairs(set_, "--set")}, **options)
        result = import_file(path, spec, out or s.raw_dir, s.rejects_dir, replace=replace,
                             append=append)
    except SchemaError as exc:
        fail(str(exc))
    for text in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(text)}", soft_wrap=True)
    for text in result.notes:
        console.print(f"note: {escape(text)}", soft_wrap=True)
    res = result.validated
    _report(f"import {path.name}", [(spec.table, res.n_input, len(res.accepted), len(res.rejects), res.reasons)],
            merge=result.merge)


@app.command("validate")
def validate_(
    folder: Path = typer.Argument(None, help="Folder of canonical tables (default: <data>/raw)."),
) -> None:
    """Check every canonical table in a folder against its schema (read-only). Exit 1 on rejects."""
    from features.io import read_frame
    from features.schema import TABLES, SchemaError, validate

    folder = folder or settings().raw_dir
    found = [name for name in TABLES if (folder / f"{name}.parquet").exists()]
    if not found:
        fail(f"{folder}: no canonical tables found (expected e.g. {sorted(TABLES)[0]}.parquet)")
    rows, bad = [], 0
    for name in found:
        path = folder / f"{name}.parquet"
        try:
            res = validate(read_frame(path), TABLES[name], str(path))
        except SchemaError as exc:
            fail(str(exc))
        rows.append((name, res.n_input, len(res.accepted), len(res.rejects), res.reasons))
        bad += len(res.rejects)
    _report(f"validate {folder}", rows)
    if bad:
        raise typer.Exit(1)


@app.command("load")
def load(
    dataset: str = typer.Argument(..., help="movielens or cdnow."),
    path: Path = typer.Option(None, help="Dataset folder (movielens) or file (cdnow); default ../shared/data/..."),
    out: Path = typer.Option(None, help="Output folder (default: <data>/raw)."),
) -> None:
    """Load a public dataset (MovieLens 100K, CDNOW) as canonical tables, validated.

    Each table the dataset has replaces the one in the output folder. A table it does not have (CDNOW has no
    events, MovieLens no orders) is left as it is: the load warns when such tables from an earlier load,
    import or generate are there, since the next steps would mix them with the dataset.
    """
    from features.io import load_validated
    from features.schema import TABLES, SchemaError
    from features.sources import cdnow, movielens

    defaults = {"movielens": Path("../shared/data/movielens-100k"), "cdnow": Path("../shared/data/cdnow/CDNOW_master.txt")}
    loaders = {"movielens": movielens.load_tables, "cdnow": cdnow.load_tables}
    if dataset not in loaders:
        fail(f"unknown dataset {dataset!r}; choose one of {sorted(loaders)}")
    s = settings()
    try:
        tables = loaders[dataset](path or defaults[dataset])
        rows = []
        for name, df in tables.items():
            res = load_validated(df, TABLES[name], out or s.raw_dir, s.rejects_dir, origin=f"{dataset}:{name}")
            rows.append((name, res.n_input, len(res.accepted), len(res.rejects), res.reasons))
    except SchemaError as exc:
        fail(str(exc))
    _report(f"load {dataset}", rows)
    folder = out or s.raw_dir
    left = [name for name in TABLES if name not in tables and (folder / f"{name}.parquet").exists()]
    if left:
        console.print(f"[yellow]warning:[/] {escape(str(folder))} still holds {', '.join(left)} from an earlier "
                      f"load, import or generate, which {dataset} does not replace: the next steps would mix "
                      f"{'it' if len(left) == 1 else 'them'} with {dataset}'s tables. Remove "
                      f"{'it' if len(left) == 1 else 'them'} (or load into an empty --out) to use {dataset} alone.",
                      soft_wrap=True)
