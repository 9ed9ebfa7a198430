"""``portrait features apply|materialize|online``: the Feast side of the features group.

The repo is ``feature_repo/`` with its paths rewritten to ``<data>/feast`` (``features/store.py``);
``--redis host:port`` (or ``PORTRAIT_REDIS``) uses the Redis online store instead of SQLite.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone

import typer

from portrait.commands._common import console, emit_json, fail, settings

REDIS_HELP = "Redis online store 'host:port' instead of SQLite (env PORTRAIT_REDIS)."


def _open(redis: str | None):
    from features.store import check_redis_address, open_store

    source = "--redis" if redis else "PORTRAIT_REDIS"
    try:
        address = check_redis_address(redis or os.environ.get("PORTRAIT_REDIS"), source)
    except ValueError as exc:
        fail(str(exc))
    return open_store(settings(), redis=address)


def _date(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    from features.build import parse_iso
    from features.schema import SchemaError

    try:
        return parse_iso(value, option).to_pydatetime()
    except SchemaError as exc:
        fail(str(exc))


def apply(redis: str = typer.Option(None, "--redis", help=REDIS_HELP)) -> None:
    """Register entities, sources, feature views and the versioned FeatureServices in the Feast registry."""
    try:
        names = _open(redis).apply()
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    console.print(f"applied {len(names)} Feast objects: {', '.join(names)}")


def materialize(
    end: str = typer.Option(None, "--end", help="Load feature rows up to this date/time (UTC; default now)."),
    full: bool = typer.Option(False, "--full", help="Reload every snapshot, not only rows after the last run."),
    view: list[str] = typer.Option(None, "--view", help="Only this feature view (repeatable)."),
    redis: str = typer.Option(None, "--redis", help=REDIS_HELP),
) -> None:
    """Load the latest feature row per customer and item into the online store (bulk writer)."""
    store = _open(redis)
    end_ts = _date(end, "--end") or datetime.now(timezone.utc)
    started = time.perf_counter()
    try:
        views = store.materialize(end_ts, views=view or None, start=datetime(1970, 1, 1, tzinfo=timezone.utc) if full else None)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    console.print(f"materialized {', '.join(views)} up to {end_ts:%Y-%m-%d %H:%M} UTC in {time.perf_counter() - started:.1f} s")


def online(
    one_ids: list[str] = typer.Argument(..., help="OneIDs to read."),
    service: str = typer.Option("churn_v1", "--service", "-s", help="FeatureService (churn_v1, ltv_v1, ...)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON ({column: [values]}) instead of a table."),
    redis: str = typer.Option(None, "--redis", help=REDIS_HELP),
) -> None:
    """Read the online features of customers through a FeatureService, as serving does."""
    from rich.table import Table

    try:
        got = _open(redis).online_dict(service, one_ids)
    except KeyError as exc:
        fail(str(exc.args[0]))
    values = [v for name, col in got.items() if name != "one_id" for v in col]
    if values and all(v is None for v in values):  # a table of "—" alone does not say why
        console.print(f"[yellow]no online feature values for {'this customer' if len(one_ids) == 1 else 'these customers'}:"
                      "[/] unknown one_id, or nothing materialized yet (run `portrait features materialize`)",
                      soft_wrap=True)
    if as_json:
        emit_json(got)
        return
    table = Table(title=f"{service}: online features")
    table.add_column("feature")
    for one_id in got["one_id"]:
        table.add_column(str(one_id), justify="right")
    for name, values in got.items():
        if name != "one_id":
            table.add_row(name, *("—" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v) for v in values))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the Feast commands to ``app`` (the ``features`` group)."""
    app.command("apply")(apply)
    app.command("materialize")(materialize)
    app.command("online")(online)
