"""``portrait train churn|ltv|propensity``: train on Feast features, track in MLflow, gate the champion.

Each command builds the job's frozen config (defaults documented in ``training/<job>.py``),
optionally overridden by ``--config FILE`` (YAML or JSON, same field names, nested for
``dataset``/``gbm``) and ``--as-of DATE`` (labels may use data up to that date only), runs
``train(config)`` and prints the MLflow run id, the registered version and the gate's verdict.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import typer

from portrait.commands._common import console, emit_json, fail, progress, settings

JOBS = {"churn": ("training.churn", "ChurnConfig"), "ltv": ("training.ltv", "LTVConfig"),
        "propensity": ("training.propensity", "PropensityConfig")}


def _type_error(value: Any, hint: Any, where: str) -> str | None:
    """Why ``value`` (from YAML/JSON) does not fit the annotation ``hint``, or None when it does."""
    import types
    import typing

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        reasons = [_type_error(value, a, where) for a in args if a is not type(None)]
        return None if any(r is None for r in reasons) else reasons[0]
    want = getattr(hint, "__name__", str(hint))
    if hint is Any:
        return None
    if hint is bool:  # YAML 'yes'/'no' are already bools; 0/1 are not accepted as flags
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif hint is str:
        ok = isinstance(value, str)
    elif origin is tuple:
        if not isinstance(value, (list, tuple)):
            return f"{where}: expected a list, got {value!r}"
        items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        if len(items) != len(value):
            return f"{where}: expected a list of {len(items)} values, got {value!r}"
        for i, (v, a) in enumerate(zip(value, items)):
            why = _type_error(v, a, f"{where}[{i}]")
            if why:
                return why
        return None
    elif origin is dict or hint is dict:
        ok = isinstance(value, dict)
    else:
        return None  # a type we do not know how to check: the dataclass's own checks decide
    return None if ok else f"{where}: expected {want}, got {value!r} ({type(value).__name__})"


def _override(obj: Any, values: dict[str, Any], where: str, prefix: str = "") -> Any:
    """A copy of dataclass ``obj`` with ``values`` applied (nested dicts into nested dataclasses).

    ValueError naming the file, the field and the expected type on an unknown key or a value of the
    wrong type: ``num_leaves: abc`` must stop here, not deep inside LightGBM with a traceback.
    """
    import typing

    fields = {f.name: f for f in dataclasses.fields(obj)}
    hints = typing.get_type_hints(type(obj))
    changes = {}
    for key, value in values.items():
        if key not in fields or key == "paths":
            raise ValueError(f"{where}: unknown config field {prefix + key!r}; "
                             f"choose from {[prefix + f for f in sorted(set(fields) - {'paths'})]}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ValueError(f"{where}: field {prefix + key!r}: expected a mapping of "
                                 f"{type(current).__name__} fields, got {value!r}")
            changes[key] = _override(current, value, where, f"{prefix}{key}.")
            continue
        why = _type_error(value, hints.get(key, Any), f"{where}: field {prefix + key!r}")
        if why:
            raise ValueError(why)
        if isinstance(value, list):
            changes[key] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        elif hints.get(key) is float and isinstance(value, int):
            changes[key] = float(value)
        else:
            changes[key] = value
    try:
        return dataclasses.replace(obj, **changes)
    except (TypeError, ValueError) as exc:  # the config's own __post_init__ checks (ranges)
        raise ValueError(f"{where}: {prefix}{exc}") from exc


def make_config(job: str, config_file: Path | None = None, as_of: str | None = None) -> Any:
    """The job's config with file and ``--as-of`` overrides and the paths from Settings."""
    import importlib

    import yaml

    from training.datasets import Paths

    module, cls = JOBS[job]
    cfg = getattr(importlib.import_module(module), cls)(paths=Paths.from_settings(settings()))
    if config_file is not None:
        try:
            # UTF-8 whatever the locale (a category named 母婴 under LC_ALL=C); a BOM (Notepad) is not a key
            values = yaml.safe_load(Path(config_file).read_text(encoding="utf-8-sig")) or {}
        except UnicodeDecodeError as exc:
            raise ValueError(f"{config_file}: the config is not UTF-8 text (byte {exc.object[exc.start]:#x} at "
                             f"position {exc.start}); save it as UTF-8") from exc
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"{config_file}: cannot read the config ({exc})") from exc
        if not isinstance(values, dict):
            raise ValueError(f"{config_file}: the config must be a mapping of field names to values")
        cfg = _override(cfg, values, str(config_file))
    if as_of is not None:
        from features.build import parse_iso

        parse_iso(as_of, "--as-of")  # ISO 8601 only: 01/06/2026 is refused, not read month-first
        cfg = dataclasses.replace(cfg, dataset=dataclasses.replace(cfg.dataset, as_of=as_of))
    return cfg


def _int(text: str | None) -> int | None:
    """An MLflow tag (always text) holding a version number, as a number for --json."""
    return int(text) if text is not None and str(text).isdigit() else None


def _flag(text: str | None) -> bool | None:
    """The gate's "True"/"False" tag as a bool (the string "False" is truthy)."""
    return {"True": True, "False": False}.get(str(text)) if text is not None else None


def run_job(job: str, config: Any) -> dict[str, Any]:
    """Train ``job`` with ``config``; returns run id, version, gate verdict and the main metrics."""
    import importlib

    import mlflow

    run_id = importlib.import_module(JOBS[job][0]).train(config)
    run = mlflow.get_run(run_id)
    keep = ("auc", "gini", "spearman", "truth_auc", "truth_spearman", "baseline_recency_auc", "baseline_recency_gini",
            "truth_baseline_recency_auc", "truth_baseline_recency_spearman")
    tags = run.data.tags
    return {"model": config.model_name, "run_id": run_id, "version": _int(tags.get("model_version")),
            "promoted": _flag(tags.get("gate.promoted")), "gate": tags.get("gate.reason"),
            "metrics": {k: v for k, v in run.data.metrics.items() if k in keep}}


def register(app: typer.Typer) -> None:
    """Add ``churn``, ``ltv`` and ``propensity`` to ``app`` (the ``train`` group)."""

    def command(job: str, doc: str) -> None:
        def cmd(
            config: Path = typer.Option(None, "--config", help="YAML/JSON overrides of the job's config fields."),
            as_of: str = typer.Option(None, "--as-of", help="Train as of DATE: labels use data before it only."),
            json_out: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
        ) -> None:
            from features.schema import SchemaError

            try:
                cfg = make_config(job, config, as_of)
                with progress(f"training {job}", total=None):
                    result = run_job(job, cfg)
            except (ValueError, KeyError, FileNotFoundError, SchemaError) as exc:
                fail(f"train {job}: {exc}")
            if json_out:
                emit_json(result)
                return
            console.print(f"[bold]{job}[/]: run {result['run_id']}, version {result['version']} "
                          f"({'champion' if result['promoted'] else 'challenger'})")
            console.print(f"  gate: {result['gate']}")
            console.print("  " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(result["metrics"].items())))

        cmd.__doc__ = doc
        app.command(job)(cmd)

    command("churn", "Churn risk: P(no purchase in the next 90 days) for customers active in the last 180 days.")
    command("ltv", "Lifetime value: spend in the next 180 days (LightGBM tweedie vs PyTorch ZILN, chosen by validation).")
    command("propensity", "Purchase propensity in the next 30 days, overall and per top category.")
