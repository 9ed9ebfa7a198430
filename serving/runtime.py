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
* BentoML's request timeout: its middleware leaves a 60 s timer (with a future and
  a closure) alive per request; portrait cancels it when the request ends
  (:func:`patch_timeout_middleware`).
* Non-model return types: BentoML rebuilds a JSON schema per response for an
  endpoint returning e.g. ``dict``; every portrait endpoint returns a pydantic model.
* The cyclic garbage collector: after the models load, ``gc.freeze()`` moves
  every object alive at that point (models, id maps, feature matrices, imported
  modules) to the permanent generation, so a full collection no longer walks
  them; the young-generation threshold is raised so collections run less often.

Each knob is an environment variable read in the worker (``ServeConfig``);
``server_env`` builds the environment ``portrait serve`` starts BentoML with,
and ``stock=True`` gives BentoML's defaults for comparison.
"""

from __future__ import annotations

import atexit
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
    if config.fix_timeout_timers:
        patch_timeout_middleware()



def patch_timeout_middleware() -> bool:
    """Make BentoML's request-timeout middleware cancel its timer when the request ends.

    BentoML 1.4's ``TimeoutMiddleware`` calls ``loop.call_later(traffic.timeout, ...)``
    per request and never cancels the handle: every request's timer, future and
    closure stay alive for the full timeout (60 s), i.e. ~60 x the request rate
    objects that each full collection walks (measured with ``/admin/memory``:
    ~0.8 KB and ~8 tracked blocks per request, alive 60 s). Same behaviour (504
    after the timeout), the handle cancelled on completion. Returns whether applied.
    """
    import asyncio

    try:
        from bentoml._internal.server.http import traffic
    except ImportError:  # another BentoML layout: leave it alone
        return False
    cls = traffic.TimeoutMiddleware
    if getattr(cls, "_portrait_patched", False):
        return True

    async def __call__(self, scope, receive, send):  # noqa: ANN001, ANN202, N807 - the ASGI signature
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        handle = loop.call_later(self.timeout, self._set_timer_out, waiter)

        async def _send(message):  # noqa: ANN001, ANN202
            if not waiter.done():
                waiter.set_result(None)
            await send(message)

        fut = asyncio.ensure_future(self.app(scope, receive, _send), loop=loop)
        try:
            await waiter
        except asyncio.TimeoutError:
            if fut.cancel():
                from starlette.responses import JSONResponse

                resp = JSONResponse({"error": f"Not able to process the request in {self.timeout} seconds"},
                                    status_code=504)
                await resp(scope, receive, send)
        else:
            await fut
        finally:
            handle.cancel()

    cls.__call__ = __call__
    cls._portrait_patched = True
    return True


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
        _thaw_at_exit()
    return applied


_thaw_hook: list = []  # the atexit registration, once per process


def _thaw_at_exit() -> None:
    """Unfreeze before the interpreter tears modules down.

    Frozen objects sit in the permanent generation, which the collector skips even at shutdown:
    reference cycles among them (module dicts and their functions) are never freed, and native
    modules that check for leaks at exit complain (DuckDB's nanobind bindings printed "leaked 27
    instances" whenever a served process had imported Feast's DuckDB offline store).
    """
    if not _thaw_hook:
        _thaw_hook.append(atexit.register(gc.unfreeze))


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
            "timeout_timers_fixed": _timeout_patched(),
            "bentoml_overrides": json.loads(os.environ.get("BENTOML_CONFIG_OVERRIDES", "{}") or "{}")}


def _timeout_patched() -> bool:
    try:
        from bentoml._internal.server.http import traffic
    except ImportError:
        return False
    return bool(getattr(traffic.TimeoutMiddleware, "_portrait_patched", False))


def server_env(tracing: bool = False, metrics: bool = False, access_log: bool = False, workers: int = 1,
               stock: bool = False) -> dict[str, str]:
    """Environment for ``bentoml serve`` (set by ``portrait serve``); ``stock`` keeps BentoML's defaults."""
    service: dict[str, Any] = {"workers": workers}
    env = {"BENTOML_DO_NOT_TRACK": "true"}
    if stock:
        env.update({"PORTRAIT_GC_FREEZE": "false", "PORTRAIT_GC_THRESHOLD0": "0", "PORTRAIT_OMP_PASSIVE": "false",
                    "PORTRAIT_FIX_TIMEOUT_TIMERS": "false"})
    else:
        service["metrics"] = {"enabled": metrics}
        service["logging"] = {"access": {"enabled": access_log}}
        if not tracing:
            service["tracing"] = {"excluded_urls": CATCH_ALL}
            env["OTEL_SDK_DISABLED"] = "true"
    env["BENTOML_CONFIG_OVERRIDES"] = json.dumps({"services": {"portrait": service}})
    return env


def memory_report(top: int = 15) -> dict[str, Any]:
    """Collector and allocation state of this worker (``/admin/memory``).

    ``tracked_objects`` is what the cyclic collector has to walk (frozen objects
    excluded). With ``PORTRAIT_TRACEMALLOC=1`` the first call starts tracemalloc and
    each later call lists the allocation sites (file:line, KiB, blocks) still alive
    among those made since the start: after a load run, that is the growth.
    """
    import tracemalloc

    import psutil

    out: dict[str, Any] = {
        "pid": os.getpid(), "rss_mb": round(psutil.Process().memory_info().rss / 2**20, 2),
        "tracked_objects": len(gc.get_objects()), "gc_frozen": gc.get_freeze_count(),
        "gc_count": list(gc.get_count()), "gc_stats": gc.get_stats(), "gc_threshold": list(gc.get_threshold()),
    }
    if os.environ.get("PORTRAIT_TRACEMALLOC", "") in ("1", "true"):  # diagnosis only: tracing costs latency
        if not tracemalloc.is_tracing():
            tracemalloc.start(1)
        else:
            stats = tracemalloc.take_snapshot().statistics("lineno")
            out["alive_since_start"] = [{"where": str(st.traceback[0]), "kib": round(st.size / 1024, 1),
                                         "blocks": st.count} for st in stats[:top]]
        out["traced_mb"] = round(tracemalloc.get_traced_memory()[0] / 2**20, 3)
    return out
