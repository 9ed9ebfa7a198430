"""Process-level knobs for a steady tail latency and flat memory (issue 10).

Placeholder until measured; see serving/README.md.
"""

from __future__ import annotations

import gc
from typing import Any

from serving.config import ServeConfig

SERVICE_CONFIG: dict[str, Any] = {
    "workers": 1,
    "traffic": {"timeout": 60},
}


def configure_process(config: ServeConfig) -> None:
    """Knobs that must be set before models load."""


def tune_worker(config: ServeConfig) -> dict[str, Any]:
    """Knobs applied once the models are in memory; returns what was applied."""
    applied: dict[str, Any] = {}
    return applied


def knobs() -> dict[str, Any]:
    """What this process runs with (for /status and the tests)."""
    return {"gc_threshold": gc.get_threshold(), "gc_frozen": gc.get_freeze_count()}


def server_env(tracing: bool = False, metrics: bool = False, access_log: bool = False, workers: int = 1,
               env: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for ``bentoml serve`` (set by ``portrait serve``)."""
    import json

    overrides = {"services": {"portrait": {"workers": workers}}}
    return {"BENTOML_DO_NOT_TRACK": "true", "BENTOML_CONFIG_OVERRIDES": json.dumps(overrides)}
