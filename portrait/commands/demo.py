"""``portrait demo``: the whole pipeline on synthetic data, ending with the service up.

``make demo`` runs it. Each step is a plain function of the settings and the demo
options that returns a one-line summary; the steps run in order and stop at the
first failure with the step's name in the error. Re-running starts from scratch
in the same data directory (the generator overwrites the raw tables atomically).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import typer
from rich.table import Table

from portrait.commands._common import console, fail, settings
from portrait.settings import Settings


@dataclass(frozen=True)
class DemoOptions:
    people: int = 5_000  # synthetic people; 5k runs the whole demo in about 2 minutes on 2 cores
    seed: int = 42  # generator seed: same seed, same data
    serve: bool = True  # end with the service running in the foreground
    host: str = "127.0.0.1"
    port: int = 3000


Step = Callable[[Settings, DemoOptions], str]

# Training is purged (training.datasets.purged): validation and train label windows end by the holdout
# cutoff, so LTV (180 d) needs its holdout 180 days before the newest snapshot, validation 180 days before
# that, and train older still: 16 snapshots 30 days apart (450 days) give it 3 train cutoffs (churn 4,
# propensity 4, max_cutoffs' default), on 18 months of history (the oldest snapshot sees about 3 of them).
HISTORY_MONTHS = 18  # GeneratorConfig.months: raw history before `now`
SNAPSHOTS = 16  # monthly feature snapshots back from `now`


def generate(s: Settings, o: DemoOptions) -> str:
    from features.sources.synthetic import GeneratorConfig
    from features.sources.synthetic import generate as run

    summary = run(GeneratorConfig(people=o.people, seed=o.seed, months=HISTORY_MONTHS), s.data_dir)
    rows = summary["rows"]
    return f"{o.people:,} people: " + ", ".join(f"{k} {rows[k]:,}" for k in ("identity_records", "events", "orders") if k in rows)


def validate(s: Settings, o: DemoOptions) -> str:
    from features.io import validate_folder

    results = validate_folder(s.raw_dir)
    bad = {name: r.reasons for name, r in results.items() if len(r.rejects)}
    if bad:
        raise RuntimeError(f"generated tables have rejects: {bad}")
    return f"{len(results)} tables, {sum(r.n_input for r in results.values()):,} rows, 0 rejects"


def identity(s: Settings, o: DemoOptions) -> str:
    from features.identity.config import ResolveConfig
    from features.identity.resolve import resolve

    summary = resolve(ResolveConfig(identity_dir=s.identity_dir, raw_dir=s.raw_dir, hmac_key=s.hmac_key,
                                    demo_key=True, rules_path=None, incremental=False))
    return ", ".join(f"{k} {summary[k]:,}" for k in ("records", "people") if isinstance(summary.get(k), int)) or "resolved"


def demo_cutoffs(s: Settings, months: int = SNAPSHOTS) -> list:
    """Monthly snapshots back from the generator's ``now``: the latest for serving, older ones for training."""
    import json

    import pandas as pd

    now = pd.Timestamp(json.loads((s.truth_dir / "meta.json").read_text())["now"])
    now = (now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")).normalize()
    return sorted(now - pd.Timedelta(days=30 * i) for i in range(months))


def features(s: Settings, o: DemoOptions) -> str:
    from features.build import build

    result = build(s.raw_dir, s.identity_dir, s.features_dir, cutoffs=demo_cutoffs(s))
    return (f"{len(result.cutoffs)} snapshots, " + ", ".join(f"{k} {v:,}" for k, v in result.rows.items()))


def feature_store(s: Settings, o: DemoOptions) -> str:
    from features.store import open_store

    store = open_store(s)
    store.apply()
    out = store.materialize()
    return f"applied and materialized ({out})" if out is not None else "applied and materialized"


def _champion_after(name: str, run_id: str) -> str:
    """Make the version trained by ``run_id`` champion when the registry has none yet (first run of the demo)."""
    from training import registry

    if registry.champion_version(name) is None:
        mine = [v for v in registry.list_versions(name) if v.get("run_id") == run_id]
        if mine:
            registry.promote(name, mine[0]["version"], "demo: first model")
    return registry.champion_version(name) or "none"


def recommender(s: Settings, o: DemoOptions) -> str:
    from training.recommender import RecommenderConfig, train

    run_id = train(RecommenderConfig(data_dir=str(s.data_dir), mlflow_uri=s.mlflow_uri,
                                     mlflow_artifacts=s.mlflow_artifacts, seed=o.seed))
    return f"run {run_id[:8]}, champion v{_champion_after('recommender', run_id)}"


def _value_model(job: str) -> Step:
    def step(s: Settings, o: DemoOptions) -> str:
        from portrait.commands.train_value import run_job
        from training.churn import ChurnConfig
        from training.datasets import Paths
        from training.ltv import LTVConfig
        from training.propensity import PropensityConfig

        config = {"churn": ChurnConfig, "ltv": LTVConfig, "propensity": PropensityConfig}[job]
        summary = run_job(job, config(paths=Paths.from_settings(s)))
        metrics = ", ".join(f"{k} {v:.3f}" for k, v in list((summary.get("metrics") or {}).items())[:3])
        return f"v{summary['version']} ({'champion' if summary['promoted'] else 'challenger'}) {metrics}"

    return step


def lookalike(s: Settings, o: DemoOptions) -> str:
    from training.lookalike import LookalikeConfig, train

    run_id = train(LookalikeConfig(features_dir=str(s.features_dir)), s.mlflow_uri, s.mlflow_artifacts)
    return f"run {run_id[:8]}, champion v{_champion_after('lookalike', run_id)}"


def write_back(s: Settings, o: DemoOptions) -> str:
    from portrait.commands.score import MODELS, score

    # the same code path as `portrait score --write-back` and POST /tags/writeback
    score(write_back=True, models=list(MODELS), date=None, force=True, push=True, alias="champion", as_json=False)
    return "predicted tags written to the tag history and pushed to Feast (online + offline)"


STEPS: list[tuple[str, Step]] = [
    ("generate synthetic multi-source data", generate),
    ("validate canonical tables", validate),
    ("resolve identities (OneID)", identity),
    ("build features and rule tags", features),
    ("Feast apply and materialize", feature_store),
    ("train the recommender", recommender),
    ("train churn", _value_model("churn")),
    ("train lifetime value", _value_model("ltv")),
    ("train purchase propensity", _value_model("propensity")),
    ("train lookalike embeddings", lookalike),
    ("score everyone and write predicted tags back", write_back),
]


def run_demo(s: Settings, o: DemoOptions) -> list[tuple[str, str, float]]:
    """Run every step; returns (step, summary, seconds) rows. Raises with the step name on failure."""
    rows = []
    for name, step in STEPS:
        console.print(f"[bold]→ {name}[/]")
        t0 = time.perf_counter()
        try:
            summary = step(s, o)
        except Exception as exc:  # noqa: BLE001 - re-raised with the step's name
            raise RuntimeError(f"demo step '{name}' failed: {exc}") from exc
        rows.append((name, summary, time.perf_counter() - t0))
        console.print(f"  {summary} [dim]({rows[-1][2]:.1f} s)[/]")
    return rows


def demo(
    people: int = typer.Option(DemoOptions.people, help="Synthetic people to generate."),
    seed: int = typer.Option(DemoOptions.seed, help="Generator seed."),
    serve: bool = typer.Option(DemoOptions.serve, help="End with the service running (Ctrl-C stops it)."),
    port: int = typer.Option(DemoOptions.port, help="Port for the service."),
) -> None:
    """Run the whole pipeline on synthetic data (generate, validate, ...) and print a summary."""
    import os

    from features.identity.hashing import DEMO_HMAC_KEY

    # the demo runs without secrets to set up: a fixed, public demo HMAC key (never use it for real data)
    os.environ.setdefault("PORTRAIT_HMAC_KEY", DEMO_HMAC_KEY)
    s = settings()
    opts = DemoOptions(people=people, seed=seed, serve=serve, port=port)
    console.print(f"portrait demo: data in [bold]{s.data_dir}[/], MLflow at [bold]{s.mlflow_uri}[/]")
    try:
        rows = run_demo(s, opts)
    except RuntimeError as exc:
        fail(str(exc), code=1)
    table = Table(title="portrait demo")
    for col in ("step", "result", "seconds"):
        table.add_column(col)
    for name, summary, secs in rows:
        table.add_row(name, summary, f"{secs:.1f}")
    console.print(table)
    if opts.serve:
        from portrait.commands.serve import serve as run_server

        run_server(host=opts.host, port=opts.port, workers=1, api_key=None, open_reads=True, poll_seconds=30.0,
                   tracing=False, metrics=False, access_log=False, ready_timeout=300.0)


def register(root: typer.Typer) -> None:
    """Add ``portrait demo`` to the root app."""
    root.command("demo")(demo)
