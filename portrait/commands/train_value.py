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


def _override(obj: Any, values: dict[str, Any], where: str) -> Any:
    """A copy of dataclass ``obj`` with ``values`` applied (nested dicts into nested dataclasses)."""
    fields = {f.name: f for f in dataclasses.fields(obj)}
    changes = {}
    for key, value in values.items():
        if key not in fields or key == "paths":
            raise ValueError(f"{where}: unknown config field {key!r}; choose from {sorted(set(fields) - {'paths'})}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            changes[key] = _override(current, value, f"{where}.{key}")
        elif isinstance(current, tuple) and isinstance(value, list):
            changes[key] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        else:
            changes[key] = value
    return dataclasses.replace(obj, **changes)


def make_config(job: str, config_file: Path | None = None, as_of: str | None = None) -> Any:
    """The job's config with file and ``--as-of`` overrides and the paths from Settings."""
    import importlib

    import yaml

    from training.datasets import Paths

    module, cls = JOBS[job]
    cfg = getattr(importlib.import_module(module), cls)(paths=Paths.from_settings(settings()))
    if config_file is not None:
        try:
            values = yaml.safe_load(Path(config_file).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"{config_file}: cannot read the config ({exc})") from exc
        if not isinstance(values, dict):
            raise ValueError(f"{config_file}: the config must be a mapping of field names to values")
        cfg = _override(cfg, values, str(config_file))
    if as_of is not None:
        import pandas as pd

        pd.Timestamp(as_of)  # raises ValueError on a bad date
        cfg = dataclasses.replace(cfg, dataset=dataclasses.replace(cfg.dataset, as_of=as_of))
    return cfg


def run_job(job: str, config: Any) -> dict[str, Any]:
    """Train ``job`` with ``config``; returns run id, version, gate verdict and the main metrics."""
    import importlib

    import mlflow

    run_id = importlib.import_module(JOBS[job][0]).train(config)
    run = mlflow.get_run(run_id)
    keep = ("auc", "gini", "spearman", "truth_auc", "truth_spearman", "baseline_recency_auc", "baseline_recency_gini",
            "truth_baseline_recency_auc", "truth_baseline_recency_spearman")
    return {"model": config.model_name, "run_id": run_id, "version": run.data.tags.get("model_version"),
            "promoted": run.data.tags.get("gate.promoted"), "gate": run.data.tags.get("gate.reason"),
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
                          f"({'champion' if result['promoted'] == 'True' else 'challenger'})")
            console.print(f"  gate: {result['gate']}")
            console.print("  " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(result["metrics"].items())))

        cmd.__doc__ = doc
        app.command(job)(cmd)

    command("churn", "Churn risk: P(no purchase in the next 90 days) for customers active in the last 180 days.")
    command("ltv", "Lifetime value: spend in the next 180 days (LightGBM tweedie vs PyTorch ZILN, chosen by validation).")
    command("propensity", "Purchase propensity in the next 30 days, overall and per top category.")
