"""``portrait identity ...``: OneID: resolve source records into one person per one_id, explain a person."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from portrait.commands._common import console, emit_json, fail, progress, settings

app = typer.Typer(help="OneID: resolve source records into one person per one_id, explain a person.", no_args_is_help=True)

DEMO_HELP = "Use the public demo HMAC key when PORTRAIT_HMAC_KEY is unset (throw-away demo data only)."


@app.command("resolve")
def resolve_cmd(
    incremental: bool = typer.Option(False, "--incremental", help="Only records not seen before (or seen again "
                                     "with a newer observed_at); untouched persons keep everything."),
    demo_key: bool = typer.Option(False, "--demo-key", help=DEMO_HELP),
    rules: Path = typer.Option(None, "--rules", help="Rules YAML (default: the shipped features/identity/rules.yaml)."),
    raw: Path = typer.Option(None, help="Folder with identity_records.parquet and profiles.parquet (default: <data>/raw)."),
    as_json: bool = typer.Option(False, "--json", help="Print the run summary as JSON on stdout."),
) -> None:
    """Link source records into persons (one_id), write record_map, golden, identifiers, aliases, changelog.

    Identifiers are normalized, placeholders dropped, links made in priority order under per-type
    limits (rules.yaml); raw phones and emails are replaced by HMAC-SHA256 hashes keyed with
    PORTRAIT_HMAC_KEY. Outputs go to <data>/identity/ (an incremental run adds delta parts and a new
    manifest.json; read the tables with features.identity.tables.read_identity_table).
    """
    from features.identity.config import ResolveConfig, RulesError
    from features.identity.hashing import MissingKeyError
    from features.identity.resolve import resolve
    from features.identity.store import StateError
    from features.schema import SchemaError

    s = settings()
    cfg = ResolveConfig(identity_dir=s.identity_dir, raw_dir=raw or s.raw_dir, hmac_key=s.hmac_key,
                        demo_key=demo_key, rules_path=rules, incremental=incremental)
    try:
        with progress("OneID " + ("incremental" if incremental else "full") + " run", total=None) as advance:
            summary = resolve(cfg, step=lambda msg: advance(0, description=msg))
    except (MissingKeyError, StateError, SchemaError, RulesError) as exc:
        fail(str(exc))
    if as_json:
        emit_json(summary)
        return
    table = Table(title=f"OneID {summary['mode']} run {summary['run_id']} -> {s.identity_dir}")
    table.add_column("what")
    table.add_column("count", justify="right")
    for label, value in (("input records", summary["input_records"]), ("records", summary["records"]),
                         ("persons (one_id)", summary["people"]), *((f"change: {k}", v) for k, v in summary["changes"].items()),
                         ("values refused by a limit", summary["refused_values"])):
        table.add_row(label, f"{value:,}")
    for t, reasons in summary["dropped_identifiers"].items():
        for reason, n in reasons.items():
            table.add_row(f"dropped {t}: {reason}", f"{n:,}")
    console.print(table)
    console.print("seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in summary["seconds"].items()))


@app.command("explain")
def explain_cmd(
    identifier: str = typer.Argument(..., help="one_id, source:record_id, or a raw phone/email/member id (any format)."),
    demo_key: bool = typer.Option(False, "--demo-key", help=DEMO_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the explanation as JSON on stdout."),
) -> None:
    """Show which records and shared identifiers make this person, and which links a limit refused.

    An identifier blocked from linking is said in one line: a placeholder on the rules' blocked list
    (which value, which rule) names nobody; a value several persons share (which id_hash, which limit)
    is explained through its most recent holder.
    """
    from features.identity.explain import blocked, explain
    from features.identity.hashing import MissingKeyError
    from features.identity.index import IdentityIndex
    from features.identity.store import StateError

    s = settings()
    try:
        index = IdentityIndex.load(s.identity_dir, s.hmac_key, demo_key)
        out = explain(index, s.identity_dir, identifier)
    except (MissingKeyError, StateError) as exc:
        fail(str(exc))
    if out is None:
        hit = blocked(index, identifier)
        fail("no person found for that identifier: " + hit["line"] if hit else
             "no person found for that identifier (identifiers are matched after normalization; "
             "placeholders like 'null' never match)", code=1)
    if as_json:
        emit_json(out)
        return
    if out["blocked"]:
        console.print(f"[yellow]blocked:[/] {out['blocked']['line']}", soft_wrap=True)
    console.print(f"[bold]{out['one_id']}[/]" + (f"  aliases: {', '.join(out['aliases'])}" if out["aliases"] else ""))
    console.print("golden: " + ", ".join(f"{k}={v}" for k, v in out["golden"].items()))
    rec = Table(title=f"{len(out['records'])} records")
    for col in ("source", "record_id", "observed_at", "identifiers (id_type: id_hash)"):
        rec.add_column(col)
    for r in out["records"]:
        rec.add_row(r["source"], r["record_id"], r["observed_at"], ", ".join(f"{t}: {h}" for t, h in r["identifiers"].items()))
    console.print(rec)
    if out["links"]:  # a one-record person has none: an empty table would look like a failure
        links = Table(title="links (identifiers shared by this person's records)")
        for col in ("id_type", "id_hash", "records"):
            links.add_column(col)
        for link in out["links"]:
            links.add_row(link["id_type"], link["id_hash"], ", ".join(link["record_ids"]))
        console.print(links)
    else:
        console.print("no links (no identifier is shared by two of these records)")
    if not out["refused_links"]:
        console.print("no links refused")
        return
    refused = Table(title="links refused by a limit (the value is shared with other persons)")
    for col in ("id_type", "id_hash", "reason", "holders", "also held by"):
        refused.add_column(col)
    for r in out["refused_links"]:
        refused.add_row(r["id_type"], r["id_hash"], r["reason"], str(r["holders"]), ", ".join(r["also_held_by"][:5]))
    console.print(refused)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="identity")
