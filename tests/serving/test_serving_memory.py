"""Issue 10 guards: a few thousand requests leave no growing object population; the knobs are applied.

The request loop goes through BentoML's real ASGI app (middlewares included, the
same worker code ``bentoml serve`` runs). Before portrait cancelled BentoML's
per-request timeout timer, every request left ~8 tracked objects alive for 60 s,
which this test sees as linear growth.
"""

from __future__ import annotations

import gc


def _burst(client, ids: list[str], n: int) -> None:  # noqa: ANN001
    for i in range(n):
        r = client.post("/recommend", json={"user_id": ids[i % len(ids)], "k": 10})
        assert r.status_code == 200


def test_tracked_objects_stop_growing(client, world) -> None:  # noqa: ANN001
    _burst(client, world.one_ids, 100)  # warm-up: first calls fill caches
    counts = []
    for _ in range(3):
        gc.collect()
        counts.append(len(gc.get_objects()))
        _burst(client, world.one_ids, 400)
    gc.collect()
    counts.append(len(gc.get_objects()))
    growth = [b - a for a, b in zip(counts, counts[1:])]
    assert growth[-1] < 150 and growth[-2] < 150, f"tracked objects per 400 requests: {growth} (counts {counts})"


def test_worker_knobs_are_applied(client) -> None:  # noqa: ANN001
    knobs = client.get("/status").json()["runtime"]
    assert knobs["timeout_timers_fixed"] is True
    assert knobs["gc_frozen"] > 10_000  # models, id maps and modules moved out of the collector's reach
    assert knobs["gc_threshold"][0] == 50_000
    assert knobs["omp_wait_policy"] == "passive"
    from bentoml._internal.server.http import traffic

    assert getattr(traffic.TimeoutMiddleware, "_portrait_patched", False)
