"""Process-level knobs for a steady tail latency and flat memory (issue 10).

Measured on this machine (see README "Serving" and benchmarks/RESULTS.md): under
stock BentoML 1.4 a no-op endpoint's p99 is tens to hundreds of milliseconds
and the worker grows by kilobytes per request. The causes and what portrait does:

* OpenTelemetry: BentoML always wraps the app in OTel's ASGI middleware, which
  builds spans, attribute dicts and context tokens per request even without an
  exporter. Unless tracing is asked for, portrait sets ``OTEL_SDK_DISABLED=true``
  (no-op tracer) and BentoML's ``tracing.excluded_urls`` to every path, so the
  middleware passes requests straight through.
* Prometheus metrics and the access log: per-request label lookups, histogram
  updates and log records; off unless asked for (``--metrics``, ``--access-log``).
* OpenMP: LightGBM's threads spin between predictions (``OMP_WAIT_POLICY=passive``
  is set before the models load; a one-row predict went from 6-29 ms to 0.1 ms).
* The cyclic garbage collector: after the models load, ``gc.freeze()`` moves
  every object alive at that point (models, id maps, feature matrices, imported
  modules) to the permanent generation, so a full collection no longer walks
  them; the young-generation threshold is raised so collections run less often.

Each knob is an environment variable read in the worker (``ServeConfig``);
``server_env`` builds the environment ``portrait serve`` starts BentoML with,
and ``stock=True`` gives BentoML's defaults for comparison.
"""

from __future__ import annotations

import gc
import json
import os
from typing import Any

from serving.config import ServeConfig

SERVICE_CONFIG: dict[str, Any] = {
    "workers": 1,
    "traffic": {"timeout": 60},
}
CATCH_ALL = ".*"  # tracing.excluded_urls pattern that matches every path


def configure_process(config: ServeConfig) -> None:
    """Knobs that must be set before models load (before LightGBM's OpenMP runtime starts)."""
    # OpenMP threads that spin while waiting steal the CPU of a shared 2-core box: a one-row LightGBM
    # predict measured 6-29 ms spinning, 0.1 ms passive (see README)
    if config.omp_passive:
        os.environ.setdefault("OMP_WAIT_POLICY", "passive")


def tune_worker(config: ServeConfig) -> dict[str, Any]:
    """Apply the collector knobs once the models are in memory; returns what was applied."""
    applied: dict[str, Any] = {}
    if config.gc_threshold0 > 0:
        _, g1, g2 = gc.get_threshold()
        gc.set_threshold(config.gc_threshold0, g1, g2)
        applied["gc_threshold"] = gc.get_threshold()
    if config.gc_freeze:
        gc.collect()  # free what loading left behind before freezing the survivors
        gc.freeze()
        applied["gc_frozen"] = gc.get_freeze_count()
    return applied


def refreeze(config: ServeConfig) -> None:
    """After a hot swap: freeze the new models too (the old ones stay frozen until the process ends)."""
    if config.gc_freeze:
        gc.freeze()


def knobs() -> dict[str, Any]:
    """What this process runs with (for /status and the tests)."""
    return {"pid": os.getpid(), "gc_threshold": list(gc.get_threshold()), "gc_frozen": gc.get_freeze_count(),
            "gc_counts": [s["collections"] for s in gc.get_stats()],
            "otel_sdk_disabled": os.environ.get("OTEL_SDK_DISABLED", "false"),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "bentoml_overrides": json.loads(os.environ.get("BENTOML_CONFIG_OVERRIDES", "{}") or "{}")}


def server_env(tracing: bool = False, metrics: bool = False, access_log: bool = False, workers: int = 1,
               stock: bool = False) -> dict[str, str]:
    """Environment for ``bentoml serve`` (set by ``portrait serve``); ``stock`` keeps BentoML's defaults."""
    service: dict[str, Any] = {"workers": workers}
    env = {"BENTOML_DO_NOT_TRACK": "true"}
    if stock:
        env.update({"PORTRAIT_GC_FREEZE": "false", "PORTRAIT_GC_THRESHOLD0": "0", "PORTRAIT_OMP_PASSIVE": "false"})
    else:
        service["metrics"] = {"enabled": metrics}
        service["logging"] = {"access": {"enabled": access_log}}
        if not tracing:
            service["tracing"] = {"excluded_urls": CATCH_ALL}
            env["OTEL_SDK_DISABLED"] = "true"
    env["BENTOML_CONFIG_OVERRIDES"] = json.dumps({"services": {"portrait": service}})
    return env
