"""``portrait audience ...``: Audiences: create by rule or id list, list, show (TGI profile), export, overlap, sync-tags."""

from __future__ import annotations

from pathlib import Path

import typer

from portrait.commands._common import console, emit_json, fail, settings
from portrait.commands._lookalike_tags import sync_lookalike_tag

app = typer.Typer(help="Audiences: create by rule or id list, list, show (TGI profile), export, overlap.", no_args_is_help=True)


def _store():
    from features.audience import AudienceStore

    return AudienceStore(settings().audiences_dir)


def _features(required: bool = True):
    from features.audience import AudienceError, latest_features

    try:
        return latest_features(settings().features_dir)
    except AudienceError as exc:
        if required:
            fail(str(exc))
        return None


def _resolver():
    """IdentityIndex.resolve_many when identity resolution has run, else None (ids taken as one_ids)."""
    s = settings()
    if not (s.identity_dir / "record_map.parquet").exists():
        return None
    try:
        from features.identity.index import IdentityIndex

        return IdentityIndex.load(s.identity_dir, s.hmac_key).resolve_many
    except Exception as exc:  # noqa: BLE001 - fall back to one_ids, but say why
        console.print(f"[yellow]identity index unavailable ({exc}); ids are taken as one_ids[/]")
        return None


def _read_ids(path: Path, encoding: str) -> list[str]:
    """The first column of an --ids file (CSV quoting and a ;/tab delimiter understood), header dropped.

    A GBK export was a traceback, a quoted phone kept its quotes (matching no one), and a Chinese
    header (手机号) was reported as an id that matches no customer.
    """
    import csv

    if not path.exists():
        fail(f"{path}: no such file")
    if path.is_dir():
        fail(f"{path}: is a folder, not a file")
    from features.io import encoding_advice

    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding)
    except UnicodeDecodeError as exc:
        fail(f"{path}: not valid {encoding} text at byte offset {exc.start}; {encoding_advice(data, encoding)}")
    except LookupError:
        fail(f"--encoding: unknown encoding {encoding!r} (e.g. utf-8, gbk)")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    first = lines[0] if lines else ""
    sep = "\t" if "\t" in first else ";" if ";" in first and "," not in first else ","
    values = [row[0].strip() if row else "" for row in csv.reader(lines, delimiter=sep)]
    values = [v for v in values if v]
    # a header in another script (手机号, 会员编号): no digit, no '@'; ASCII headers are the store's to judge
    if values and not any(ch.isdigit() or ch == "@" for ch in values[0]) and not values[0].isascii():
        values = values[1:]
    return values


def _masked(text: str) -> str:
    """An id for a warning, a phone or email shown only in part (the terminal may be shared or logged)."""
    import re

    from features.identity.explain import shown_in_part

    if "@" in text:
        return shown_in_part(text, "email")
    digits = re.sub(r"\D", "", text)
    return shown_in_part(digits, "phone") if len(digits) >= 11 and not re.search(r"[A-Za-z]", text) else text


@app.command("create")
def create_cmd(
    name: str = typer.Argument(..., help="Audience name (letters, digits, '_', '-', '.')."),
    rule: str = typer.Option(None, "--rule", "-r", help='Rule over tags/features, e.g. \'age < 30 and gender == "F"\'.'),
    ids: Path = typer.Option(None, "--ids", help="File with one identifier per line (one_id, source:record_id, phone, "
                             "email or member id) or a CSV whose first column holds them."),
    dynamic: bool = typer.Option(False, "--dynamic", help="Re-evaluate the rule on the latest features when read."),
    description: str = typer.Option("", help="Free text shown by list/show."),
    replace: bool = typer.Option(False, "--replace", help="Overwrite an existing audience of that name."),
    encoding: str = typer.Option("utf-8", "--encoding", help="Text encoding of the --ids file, e.g. gbk "
                                 "(a UTF-8 byte-order mark is fine)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON to stdout."),
) -> None:
    """Create a static or dynamic audience from a rule, or a static one from an id list."""
    from dataclasses import asdict

    from features.audience import AudienceError, AudienceExists, RuleError

    if (rule is None) == (ids is None):
        fail("give exactly one of --rule or --ids")
    if ids is not None and dynamic:
        fail("--dynamic needs --rule (an id list is static)")
    warnings: list[str] = []
    from features.audience_tags import is_lookalike

    replaced_lookalike = replace and is_lookalike(_store(), name)  # its members lose the name below
    try:
        if rule is not None:
            from features.audience import latest_snapshot
            from features.audience_rules import unknown_values

            feats = _features()
            meta = _store().create_rule(name, rule, feats, dynamic=dynamic, description=description,
                                        overwrite=replace)
            warnings = unknown_values(rule, latest_snapshot(feats))
        else:
            lines = _read_ids(ids, encoding)
            feats = _features(required=False)
            resolve = _resolver()
            known = feats["one_id"].astype(str) if resolve is None and feats is not None else None
            missing: list[str] = []
            meta = _store().create_ids(name, lines, resolve=resolve, known=known, description=description,
                                       overwrite=replace, unresolved_out=missing)
            if missing:
                shown = ", ".join(_masked(m) for m in missing[:5]) + (f" and {len(missing) - 5:,} more" if len(missing) > 5 else "")
                warnings = [f"{len(missing):,} id(s) in {ids} match no customer: {shown}"]
    except AudienceExists as exc:  # the store's message names its Python argument, overwrite=True
        fail(f"audience {exc.name!r} already exists; pass --replace to overwrite it, or choose another name")
    except (RuleError, AudienceError) as exc:
        fail(str(exc))
    from rich.markup import escape

    from features.audience import empty_warning

    warnings = [w for w in (empty_warning(meta),) if w] + warnings  # the unknown values say why, if that is why
    for w in warnings:  # valid input that silently matches nobody is almost always a typo
        console.print(f"[yellow]warning:[/] {escape(w)}", soft_wrap=True)
    tags = sync_lookalike_tag() if replaced_lookalike else None
    if as_json:
        emit_json({**asdict(meta), "warnings": warnings, **({"lookalike_tags": tags} if tags else {})})
        return
    extra = f", {meta.unresolved} id(s) not found" if meta.unresolved else ""
    console.print(f"audience [bold]{meta.name}[/] ({meta.kind}): {meta.size:,} customers{extra}")


@app.command("list")
def list_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON to stdout.")) -> None:
    """List saved audiences."""
    from dataclasses import asdict

    from rich.table import Table

    audiences = _store().list()
    if as_json:
        emit_json([asdict(a) for a in audiences])
        return
    table = Table(title=f"audiences in {settings().audiences_dir}")
    for col in ("name", "kind", "source", "size", "created", "rule / lineage"):
        table.add_column(col)
    for a in audiences:
        what = a.rule or (f"lookalike of {a.lineage.get('seed_audience')}" if a.lineage else "")
        table.add_row(a.name, a.kind, a.source, f"{a.size:,}", a.created_at, what)
    console.print(table)


@app.command("show")
def show_cmd(
    name: str = typer.Argument(..., help="Audience name."),
    columns: str = typer.Option(None, help="Comma-separated columns to profile (default: every tag and feature)."),
    top: int = typer.Option(15, help="Traits shown, highest TGI first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON to stdout."),
) -> None:
    """Metadata and TGI profile (audience share / population share x 100 per tag value)."""
    from dataclasses import asdict

    from features.audience import AudienceError
    from features.audience_profile import profile, top_traits

    store = _store()
    feats = _features()
    try:
        meta = store.get(name)
        cols = [c.strip() for c in columns.split(",")] if columns else None
        table = top_traits(profile(store.members(name, feats), feats, columns=cols), n=top)
    except AudienceError as exc:
        fail(str(exc))
    if as_json:
        emit_json({**asdict(meta), "traits": table.to_dict(orient="records")})
        return
    from rich.table import Table

    console.print(f"[bold]{meta.name}[/] ({meta.kind}, {meta.source}) {meta.size:,} customers, created {meta.created_at}")
    if meta.rule:
        console.print(f"rule: {meta.rule}")
    if meta.lineage:
        console.print(f"lineage: {meta.lineage}")
    out = Table(title="most over-represented traits (TGI)")
    for col in ("column", "value", "audience share", "population share", "TGI"):
        out.add_column(col)
    for r in table.itertuples():
        out.add_row(r.column, str(r.value), f"{r.audience_share:.1%}", f"{r.population_share:.1%}", f"{r.tgi:.0f}")
    console.print(out)


@app.command("export")
def export_cmd(
    name: str = typer.Argument(..., help="Audience name."),
    out: Path = typer.Option(..., "--out", "-o", help="CSV file to write."),
    columns: str = typer.Option("", help="Comma-separated feature columns to add (e.g. city,tag_value_tier)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the --out file when it exists."),
    encoding: str = typer.Option("utf-8", "--encoding", help="utf-8 for tools and channel uploads; utf-8-sig adds "
                                 "the byte-order mark Excel needs to show Chinese (城市); gbk for older Excel."),
) -> None:
    """Export members (one_id[, score, percentile] + chosen columns) to CSV for a channel."""
    from features.audience import AudienceError, check_export_path

    cols = [c.strip() for c in columns.split(",") if c.strip()]
    store = _store()
    try:
        dynamic = store.get(name).kind == "dynamic"
        check_export_path(out, overwrite)  # before reading the features: a bad --out fails at once
        feats = _features() if cols or dynamic else None
        path = store.export_csv(name, out, feats, cols, overwrite=overwrite, encoding=encoding)
    except AudienceError as exc:
        fail(str(exc))
    console.print(f"wrote {path}")
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8") and not path.read_bytes().isascii():
        console.print("opening it in Excel? non-ASCII text (e.g. Chinese) shows garbled there without a byte-order "
                      "mark: export with --encoding utf-8-sig")


@app.command("overlap")
def overlap_cmd(
    names: list[str] = typer.Argument(..., help="Two or more audience names."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON to stdout."),
) -> None:
    """Pairwise intersection, shares and Jaccard index."""
    from features.audience import AudienceError, overlap

    if len(names) < 2:
        fail("give at least two audiences")
    store = _store()
    feats = None
    try:
        if any(store.get(n).kind == "dynamic" for n in names):
            feats = _features()
        table = overlap([(n, store.members(n, feats)) for n in names])  # pairs: "A A" compares A with itself
    except AudienceError as exc:
        fail(str(exc))
    if as_json:
        emit_json(table.to_dict(orient="records"))
        return
    from rich.table import Table

    out = Table(title="audience overlap")
    for col in table.columns:
        out.add_column(col)
    for row in table.itertuples(index=False):
        out.add_row(*(f"{v:.3f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v) for v in row))
    console.print(out)


@app.command("refresh")
def refresh_cmd(name: str = typer.Argument(..., help="Dynamic audience name.")) -> None:
    """Re-evaluate a dynamic audience on the latest features and rewrite its member file."""
    from rich.markup import escape

    from features.audience import AudienceError, RuleError, empty_warning, latest_snapshot
    from features.audience_rules import unknown_values

    try:
        feats = _features()
        meta = _store().refresh(name, feats)
    except AudienceError as exc:
        fail(str(exc))
    except RuleError as exc:  # the features were rebuilt without a column the rule reads: a traceback before
        fail(f"audience {name!r}: its rule no longer evaluates on the latest features: {exc}; nothing rewritten")
    warning = empty_warning(meta)
    for w in [warning, *unknown_values(meta.rule, latest_snapshot(feats))] if warning else ():
        console.print(f"[yellow]warning:[/] {escape(w)}", soft_wrap=True)
    console.print(f"audience [bold]{meta.name}[/]: {meta.size:,} customers as of {meta.features_as_of}")


@app.command("delete")
def delete_cmd(name: str = typer.Argument(..., help="Audience name.")) -> None:
    """Delete a saved audience (a lookalike one's name is taken off its members' lookalike_audiences tag)."""
    from features.audience import AudienceError
    from features.audience_tags import is_lookalike

    try:
        lookalike = is_lookalike(_store(), name)
        _store().delete(name)
    except AudienceError as exc:
        fail(str(exc))
    console.print(f"deleted {name}")
    if lookalike:
        sync_lookalike_tag()


@app.command("sync-tags")
def sync_tags_cmd() -> None:
    """Rewrite the lookalike_audiences predicted tag (Feast) from the saved lookalike audiences.

    Runs by itself after `lookalike expand` and `audience delete`; run it after `portrait features
    apply` on a new store, after a failed write, or after audience files were copied in by hand.
    Only customers whose tag changes are written; their churn/LTV/propensity scores are kept.
    """
    sync_lookalike_tag(required=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="audience")
