"""``portrait score``: batch-score every customer with the champion models (``--write-back`` pushes predicted tags).

The same code path as ``POST /tags/writeback``: the champions are loaded from the
MLflow registry by alias, every customer of the latest feature snapshot is scored
in one batch, and with ``--write-back`` the predicted tags are appended to
``<data>/tags/history.parquet`` and pushed to Feast (online + offline). Idempotent
per model version and date (``--force`` rewrites a batch); atomic.

Without ``--model`` every model that has a champion is scored and the others are named
in one "skipped" line (a project with only a propensity model scores propensity); a
model named with ``--model`` must have a champion, else the error lists the champions
that exist and the ``--model`` options that would score them.
"""

from __future__ import annotations

import datetime as dt
import os

import typer

from portrait.commands._common import console, emit_json, fail, settings

MODELS = ("churn", "ltv", "propensity")


def score(
    write_back: bool = typer.Option(False, "--write-back", help="Write predicted tags to the history and Feast."),
    models: list[str] = typer.Option(None, "--model", "-m", show_default=False, help=(
        "Models to score (repeatable: churn, ltv, propensity). Default: every model that has a champion "
        "(with --alias: that alias); the others are skipped with a note. A model named here must have one.")),
    date: str = typer.Option(None, help="Scoring date YYYY-MM-DD (default: today, UTC); one batch per version and date."),
    force: bool = typer.Option(False, help="Rewrite a batch already written for this model version and date "
                               "(re-scoring after a feature rebuild); an empty snapshot is refused even so."),
    push: bool = typer.Option(True, help="Push to Feast besides writing the tag history."),
    alias: str = typer.Option("champion", help="Registry alias of the models to use."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Score all customers with the champion churn / LTV / propensity models."""
    chosen = models is not None and len(models) > 0  # an explicit --model must exist; the default takes what does
    models = list(dict.fromkeys(models)) if chosen else list(MODELS)  # a model named twice is scored once
    bad = [m for m in models if m not in MODELS]
    if bad:
        fail(f"unknown model(s) {bad}: choose from {list(MODELS)}")
    from features.build import parse_iso
    from features.schema import SchemaError

    try:
        day = parse_iso(date, "--date", date_only=True).date() if date else None
    except SchemaError as exc:
        fail(str(exc))
    from serving import logic
    from serving.config import ServeConfig
    from serving.errors import ServingError
    from serving.loader import Loader
    from serving.writeback import score_all, write_back as do_write_back
    from training.tags import cohort_shares

    s = settings()
    redis = None
    if write_back and push:  # the online store the tags go to: Redis when PORTRAIT_REDIS says so, as for `features`
        from features.store import check_redis_address

        try:
            redis = check_redis_address(os.environ.get("PORTRAIT_REDIS") or None, "PORTRAIT_REDIS")
        except ValueError as exc:
            fail(str(exc))
    cfg = ServeConfig(data_dir=s.data_dir, mlflow_uri=s.mlflow_uri, hmac_key=s.hmac_key, alias=alias,
                      model_names={m: m for m in models}, poll_seconds=0)
    import logging

    quiet = logging.getLogger("portrait.serving")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # the loader's own error log would repeat what _check_loaded says in one line
    try:
        with console.status("loading champion models and features"):
            loader = Loader(cfg, load_model=logic.load_model, load_resources=logic.load_resources, prepare=_prepare)
            loader.refresh()
    finally:
        quiet.setLevel(level)
    if not chosen:
        models = _with_champions(loader.bundle, alias)
    _check_loaded(loader.bundle, models, s.features_dir / "customer_features.parquet", alias, s.mlflow_uri)
    try:
        if write_back:
            with console.status("scoring and writing predicted tags"):
                batches = do_write_back(loader.bundle, s.data_dir, models, day, force, push,
                                        how_to_force="`--force` rewrites it (after a feature rebuild, say)", redis=redis)
            result = [b.model_dump(mode="json") for b in batches]
        else:
            now = dt.datetime.now(dt.timezone.utc)
            result = []
            for m in models:
                df = score_all(loader.bundle, m, now, day or now.date())
                counts = df["value"].value_counts(dropna=False).astype(int).to_dict()
                order = [v for v in cohort_shares(m) if v in counts]  # highest cohort first, as the catalog lists them
                counts = {**{v: counts.pop(v) for v in order}, **{str(k): n for k, n in counts.items()}}
                result.append({"model": m, "version": loader.bundle.model(m).version, "rows": len(df), "tags": counts})
    except ServingError as exc:
        fail(exc.message)
    if as_json:  # versions as numbers, as `train --json` and `models list --json` print them
        emit_json([{**r, "version": int(r["version"]) if str(r["version"]).isdigit() else r["version"]} for r in result])
        return
    _print_table(result, write_back)


def _prepare(models: dict, resources) -> None:
    """serving.logic.prepare one model at a time, so a failure names the model (the loader keeps only the text)."""
    from serving import logic

    for kind, served in models.items():
        try:
            logic.prepare({kind: served}, resources)
        except Exception as exc:  # noqa: BLE001 - re-raised with the model's name for the one-line error
            raise RuntimeError(f"{served.name} v{served.version}: {type(exc).__name__}: {exc}") from exc


def _with_champions(bundle, alias: str) -> list[str]:
    """The models that have a champion (``alias``), with one note naming the ones skipped; fails when none has."""
    models, missing = bundle.with_champions(MODELS)
    have = [m for m in models if m in bundle.models]
    if not have and missing:
        fail(f"no model has a '{alias}' in the registry ({', '.join(missing)}): train one first "
             f"(`portrait train {missing[0]}`, then promote it or pass --alias challenger)")
    if missing:
        console.print(f"skipped {', '.join(missing)}: no '{alias}' in the registry (scoring {', '.join(have)}; "
                      f"`portrait train {missing[0]}` adds one)", soft_wrap=True)
    return models  # a model that has a champion but failed to load stays: _check_loaded names its error


def _aliased(uri: str, alias: str) -> list[str]:
    """The models of :data:`MODELS` that have ``alias`` in the registry at ``uri`` (for the error's hint)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    out = []
    for m in MODELS:
        try:
            client.get_model_version_by_alias(m, alias)
        except Exception:  # noqa: BLE001 - absent or unreadable: not offered
            continue
        out.append(m)
    return out


def _check_loaded(bundle, models: list[str], features_path, alias: str = "champion", uri: str | None = None) -> None:
    """Fail (one line, naming the model and the cause, and what to run) unless every model and the data loaded.

    The loader is built for a server that keeps serving what it has; a batch command must not
    report success on models it could not prepare. A model without the alias names the models that
    have one and the ``--model`` options that score them.
    """
    from serving.loader import LOAD_FAILED

    errors = dict(bundle.errors)
    for kind in models:
        if kind not in bundle.models:
            why = errors.get(kind, "not loaded")
            # the loader's own prefix tells a champion that failed to load from a missing one (its exception's
            # text may well say "registry": a missing plugin, a registry-hosted artifact store)
            hint = ""
            if why.startswith(LOAD_FAILED):
                hint = (f"; {kind} has a '{alias}' but it does not load here: fix what the error names, or give "
                        f"'{alias}' to a version that loads (`portrait models list`; `portrait models rollback "
                        f"{kind}` restores the previous champion)")
            elif kind in errors:  # the loader's only other error for a kind it has not: no version has the alias
                have = [m for m in MODELS if m in bundle.models] if uri is None else _aliased(uri, alias)
                hint = (f"; {alias}s exist for {', '.join(have)} only: pass "
                        f"`{' '.join(f'--model {m}' for m in have)}` (or no --model: every model that has one)"
                        if have else f"; no model has a '{alias}' yet")
                hint += f", or train {kind} first (`portrait train {kind}`, then promote it or pass --alias challenger)"
            fail(f"model {kind}: {why}{hint}")
    if "resources" in errors:
        fail(f"loading the customer features failed: {errors['resources']}")
    feats = getattr(bundle.resources, "features", None)
    if feats is None:
        fail(f"{features_path}: no customer features; run `portrait features build` first")
    if not len(feats.row):  # scoring nobody is no result; with --write-back (even --force) it would erase tags
        fail(f"{features_path}: the latest feature snapshot has no customers; nothing scored, the tag history is "
             "left as it is; rebuild it with `portrait features build` (a cutoff inside the data)")
    if "prepare" in errors:
        fail(f"preparing model {errors['prepare'].removeprefix('RuntimeError: ')} (nothing scored or written)")


def _print_table(result: list[dict], write_back: bool) -> None:
    from rich.table import Table

    table = Table(title="predicted tags written" if write_back else "scores (not written; --write-back writes them)")
    cols = ("model", "version", "date", "rows", "status", "feast") if write_back else ("model", "version", "rows", "tags")
    for col in cols:
        table.add_column(col, overflow="fold", justify="right" if col == "rows" else "left")
    for r in result:
        cells = []
        for col in cols:
            v = r.get(col)
            cells.append(", ".join(f"{k}: {n:,}" for k, n in v.items()) if isinstance(v, dict)
                         else f"{v:,}" if isinstance(v, int) else str(v))
        table.add_row(*cells)
    console.print(table)
    for r in result:  # a skipped batch says why and how to force it, not only "skipped" in a cell
        if r.get("note"):
            console.print(f"{r['model']} v{r['version']} skipped: {r['note']}", soft_wrap=True)


def register(root: typer.Typer) -> None:
    """Add ``portrait score`` to the root app."""
    root.command("score")(score)
