"""``portrait features apply|materialize|online``: the Feast side of the features group.

The repo is ``feature_repo/`` with its paths rewritten to ``<data>/feast`` (``features/store.py``);
``--redis host:port`` (or ``PORTRAIT_REDIS``) uses the Redis online store instead of SQLite.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from pathlib import Path

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


def _rebuilt_views(store, views: list[str] | None) -> list[str]:
    """Views whose snapshot file changed after their last materialization.

    A snapshot's rows are stamped with its cutoff, a past date: an incremental run (rows stamped
    after the previous run) never loads a snapshot built after that run, so the online store kept
    serving the old values while materialize reported success.
    """
    rebuilt = []
    for name in store.batch_views():
        if views and name not in views:
            continue
        fv = store.fs.get_feature_view(name)
        path = Path(getattr(fv.batch_source, "path", "") or "")
        if not fv.materialization_intervals or not path.is_file():
            continue  # never materialized: the incremental run loads everything (Feast starts at now - ttl)
        last = max(end for _, end in fv.materialization_intervals)
        if datetime.fromtimestamp(path.stat().st_mtime, timezone.utc) > last:
            rebuilt.append(name)
    return rebuilt


def materialize(
    end: str = typer.Option(None, "--end", help="Load feature rows up to this date/time (UTC; default now)."),
    full: bool = typer.Option(False, "--full", help="Reload every snapshot, not only rows after the last run "
                              "(automatic for views whose snapshot file was rebuilt since)."),
    view: list[str] = typer.Option(None, "--view", help="Only this feature view (repeatable)."),
    redis: str = typer.Option(None, "--redis", help=REDIS_HELP),
) -> None:
    """Load the latest feature row per customer and item into the online store (bulk writer).

    Incremental: only rows after the last run, except views whose snapshot file was rebuilt since
    (`portrait features build`): those reload every snapshot, since a new snapshot is stamped with
    its cutoff, a past date.
    """
    store = _open(redis)
    end_ts = _date(end, "--end") or datetime.now(timezone.utc)
    started = time.perf_counter()
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    try:
        rebuilt = [] if full else _rebuilt_views(store, view)
        rest = [v for v in (view or store.batch_views()) if v not in rebuilt]
        views = store.materialize(end_ts, views=rebuilt, start=epoch) if rebuilt else []
        if rest or not views:  # also the first run, an unknown --view or an empty registry (their errors)
            views += store.materialize(end_ts, views=rest or view or None, start=epoch if full else None)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    if rebuilt:
        console.print(f"note: {', '.join(rebuilt)}: snapshot rebuilt since the last materialize; reloaded every "
                      "snapshot", soft_wrap=True)
    console.print(f"materialized {', '.join(views)} up to {end_ts:%Y-%m-%d %H:%M} UTC in {time.perf_counter() - started:.1f} s")


def _one_ids(keys: list[str]) -> list[str]:
    """``keys`` as one_ids: a one_id as given, a ``source:record_id`` resolved as ``/score`` resolves it.

    The resolver is serving's (``serving.resources.Identity``): record_map, then the identity state's
    index, which hashes phone/email record ids as the resolve run stored them and folds full-width
    characters and a source name's case. An unknown or shared key is a one-line error (exit 2).
    """
    if not any(":" in k for k in keys):  # one_ids only: no identity needed (a Feast-only setup)
        return keys
    import logging

    from features.identity.index import SharedIdentifier
    from serving.config import ServeConfig
    from serving.resources import load_identity

    s = settings()
    quiet = logging.getLogger("portrait.serving")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # "index unavailable" is said below, once, if it matters
    try:
        identity = load_identity(ServeConfig(data_dir=s.data_dir, mlflow_uri=s.mlflow_uri, hmac_key=s.hmac_key))
    finally:
        quiet.setLevel(level)
    if identity is None:
        fail(f"{s.identity_dir / 'golden.parquet'}: no identity tables to resolve source:record_id keys; "
             "run `portrait identity resolve` first, or give one_ids")
    out = []
    for n, key in enumerate(keys, 1):
        if ":" not in key:
            out.append(key)
            continue
        try:
            one_id = identity.resolve(key.strip(), personal=True)
        except SharedIdentifier as exc:
            fail(f"key {n} ({_shown(key, identity)}): {exc}: it names no one person; give a one_id")
        if one_id is None:
            sources = sorted(identity.index.sources) if identity.index is not None else []
            fail(f"key {n} ({_shown(key, identity)}): no customer has this source:record_id"
                 + (f" (sources: {', '.join(sources)})" if sources else "")
                 + "; keys are one_ids or source:record_id")
        out.append(one_id)
    return out


def _shown(key: str, identity) -> str:
    """``key`` for an error line: a phone/email record id as the keyed hash the identity stores, never raw."""
    import re

    from features.identity.record_ids import CANDIDATE, protect_one

    index = identity.index
    source, _, rid = key.strip().partition(":")
    if index is not None:
        return f"{source}:{protect_one(rid, index.rid_rules or index.rules, index.key)}"
    return f"{source}:<a phone/email, not shown>" if re.search(CANDIDATE, rid) else key.strip()


def online(
    one_ids: list[str] = typer.Argument(..., help="OneIDs or source:record_id keys (e.g. crm:C0918680385090; "
                                        "resolved as /score resolves them: phone/email record ids, full-width "
                                        "digits, any case of the source name)."),
    service: str = typer.Option("churn_v1", "--service", "-s", help="FeatureService (churn_v1, ltv_v1, ...)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON ({column: [values]}) instead of a table."),
    redis: str = typer.Option(None, "--redis", help=REDIS_HELP),
) -> None:
    """Read the online features of customers (one_ids or source:record_id keys) through a FeatureService, as serving does."""
    from rich.table import Table

    keys, one_ids = one_ids, _one_ids(one_ids)
    try:
        got = _open(redis).online_dict(service, one_ids)
    except KeyError as exc:
        fail(str(exc.args[0]))
    unknown, unmaterialized, checked = _without_row(keys, got, settings().features_dir)
    if unknown:  # a table of "—" alone said neither which id nor why
        line = (f"unknown one_id {', '.join(unknown)}: no row in {service}'s online store"
                + (" nor in the feature snapshot" if checked else ""))
        if len(unknown) == len(keys):
            fail(line, code=1)
        console.print(f"[yellow]{line}[/] (shown as —)", soft_wrap=True)
    if unmaterialized:
        console.print(f"[yellow]no online feature values for {', '.join(unmaterialized)}:[/] not materialized yet "
                      "(run `portrait features materialize`)", soft_wrap=True)
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


def _without_row(keys: list[str], got: dict[str, list], features_dir: Path) -> tuple[list[str], list[str], bool]:
    """The requested ids without a single online value: (unknown one_ids, customers not materialized yet,
    whether the feature snapshot was there to tell them apart).

    A one_id is a customer when the feature snapshot Feast materializes from holds it (without the
    snapshot, on a host that only reaches the online store, an id without a row there is unknown); a
    ``source:record_id`` key resolved to a person, so it is one. Keys are named by position and one_id
    (a record id may be a phone).
    """
    rows = [n for n in range(len(keys)) if all(col[n] is None for name, col in got.items() if name != "one_id")]
    asked = [n for n in rows if ":" not in keys[n]]
    known = _in_snapshot([got["one_id"][n] for n in asked], features_dir / "customer_features.parquet")
    customer = {n for n, k in zip(asked, known or []) if k} | {n for n in rows if ":" in keys[n]}
    unknown = [str(got["one_id"][n]) for n in rows if n not in customer]
    later = [f"key {n + 1} (one_id {got['one_id'][n]})" if ":" in keys[n] else str(got["one_id"][n])
             for n in rows if n in customer]
    return unknown, later, known is not None


def _in_snapshot(one_ids: list[str], path: Path) -> list[bool] | None:
    """Whether each of ``one_ids`` is in the feature snapshot file ``path``; None without a readable one."""
    if not one_ids:
        return []
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        column = pq.read_table(path, columns=["one_id"]).column("one_id")
    except (OSError, KeyError, pa.ArrowException):
        return None
    values = pc.unique(column.cast(pa.string()))
    return pc.is_in(pa.array([str(i) for i in one_ids], pa.string()), value_set=values).to_pylist()


def register(app: typer.Typer) -> None:
    """Add the Feast commands to ``app`` (the ``features`` group)."""
    app.command("apply")(apply)
    app.command("materialize")(materialize)
    app.command("online")(online)
