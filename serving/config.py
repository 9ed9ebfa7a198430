"""The serving layer's configuration: one frozen dataclass, read from the environment.

``portrait serve`` resolves the project settings and exports them as the
``PORTRAIT_*`` variables below before it starts ``bentoml serve``; the BentoML
worker builds a :class:`ServeConfig` from its environment in the service's
``__init__`` (the worker is a separate process, so the environment is the
hand-off). Nothing here runs at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

MODEL_KINDS = ("recommender", "churn", "ltv", "propensity", "lookalike")
SCORE_FEATURES = ("snapshot", "feast")  # where /score reads features (ServeConfig.score_features)


def _redis_address(env: Mapping[str, str]) -> str | None:
    """``PORTRAIT_FEAST_REDIS`` (else ``PORTRAIT_REDIS``, the name every other command reads) checked at
    startup (Feast parses it only when it first connects, so a typo would otherwise surface as an error
    on every ``/score`` request)."""
    from features.store import check_redis_address

    name = "PORTRAIT_FEAST_REDIS" if env.get("PORTRAIT_FEAST_REDIS") else "PORTRAIT_REDIS"
    return check_redis_address(env.get(name) or None, name)


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class ServeConfig:
    data_dir: Path  # portrait's data directory (identity/, features/, feast/, audiences/, tags/)
    mlflow_uri: str  # MLflow tracking/registry URI the champion models are read from
    api_key: str | None = None  # key for write/admin endpoints; None = those endpoints refuse (403)
    hmac_key: str | None = None  # identity hashing key, for resolving raw identifiers (phone, email, ...)
    open_reads: bool = True  # read endpoints answer without a key; False = they need the key too
    alias: str = "champion"  # registry alias served for every model
    # registered model name for each kind; a kind whose name is absent from the registry is "not loaded"
    model_names: dict[str, str] = field(default_factory=lambda: {k: k for k in MODEL_KINDS})
    poll_seconds: float = 30.0  # how often a worker asks the registry for a new champion; 0 = never
    feast_push: bool = True  # write-back pushes predicted tags to Feast (online + offline) besides the history
    # where /score reads a customer's features: "snapshot" = the latest snapshot of
    # features/customer_features.parquet held in memory (reloaded when it or the Feast registry changes);
    # "feast" = Feast's online store per request, through each model's FeatureService (see README "Serving")
    score_features: str = "snapshot"
    feature_services: dict[str, str] = field(default_factory=lambda: {
        "churn": "churn_v1", "ltv": "ltv_v1", "propensity": "propensity_v1"})  # model -> FeatureService
    feast_redis: str | None = None  # "host:port": Feast's Redis online store instead of <data>/feast/online.db
    # issue 10 knobs: applied inside the worker by serving.runtime.tune_worker()
    omp_passive: bool = True  # OMP_WAIT_POLICY=passive before models load: OpenMP threads sleep, not spin
    fix_timeout_timers: bool = True  # cancel BentoML's per-request 60 s timeout timer when the request ends
    gc_freeze: bool = True  # gc.freeze() once models are loaded: the collector stops re-walking them
    gc_threshold0: int = 50_000  # young-generation threshold (CPython default 700)

    @property
    def reload_marker(self) -> Path:
        """Touched by the reload endpoint so every worker (not only the one hit) reloads."""
        return self.data_dir / "serving" / "reload"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "ServeConfig":
        """Build the config from ``env`` (default: the process environment)."""
        env = dict(os.environ if env is None else env)
        data_dir = Path(env.get("PORTRAIT_DATA_DIR", "data")).resolve()
        mlruns = Path(env.get("PORTRAIT_MLRUNS_DIR", "mlruns")).resolve()
        uri = env.get("PORTRAIT_MLFLOW_URI") or env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{mlruns / 'mlflow.db'}"
        names = {k: env.get(f"PORTRAIT_MODEL_{k.upper()}", k) for k in MODEL_KINDS}
        mode = env.get("PORTRAIT_SCORE_FEATURES", "snapshot").strip().lower() or "snapshot"
        if mode not in SCORE_FEATURES:
            raise ValueError(f"PORTRAIT_SCORE_FEATURES={mode!r}: expected one of {', '.join(SCORE_FEATURES)}")
        return cls(
            data_dir=data_dir,
            mlflow_uri=uri,
            api_key=env.get("PORTRAIT_API_KEY") or None,
            hmac_key=env.get("PORTRAIT_HMAC_KEY") or None,
            open_reads=_flag(env.get("PORTRAIT_OPEN_READS"), True),
            alias=env.get("PORTRAIT_MODEL_ALIAS", "champion"),
            model_names=names,
            poll_seconds=float(env.get("PORTRAIT_POLL_SECONDS", "30")),
            feast_push=_flag(env.get("PORTRAIT_FEAST_PUSH"), True),
            score_features=mode,
            feast_redis=_redis_address(env),
            omp_passive=_flag(env.get("PORTRAIT_OMP_PASSIVE"), True),
            fix_timeout_timers=_flag(env.get("PORTRAIT_FIX_TIMEOUT_TIMERS"), True),
            gc_freeze=_flag(env.get("PORTRAIT_GC_FREEZE"), True),
            gc_threshold0=int(env.get("PORTRAIT_GC_THRESHOLD0", "50000")),
        )
