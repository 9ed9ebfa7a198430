"""Schemathesis against the service's own OpenAPI spec (in-process): generated requests never get a 5xx.

Cases are generated from the spec at ``/docs.json`` for every operation and sent
through the same in-process ASGI client as the HTTP tests (the service's
lifespan has run, so models are loaded), with the API key so write endpoints are
exercised past the 401. Any status >= 500 is a failure.
"""

from __future__ import annotations

import warnings

from hypothesis import HealthCheck, given, settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

KEY = "test-key-123"  # the conftest client's key
SKIP = {
    "/admin/reload",  # reloads are covered elsewhere; here they only slow the run down
    "/metrics",  # BentoML's Prometheus endpoint needs the `bentoml serve` runtime; off by default (see README)
}


def _given(value):  # noqa: ANN001, ANN202 - schemathesis marks absent parts with a NotSet sentinel
    return None if type(value).__name__ == "NotSet" else value



def test_generated_requests_never_get_a_5xx(client: TestClient) -> None:
    import schemathesis

    spec = client.get("/docs.json").json()
    schema = schemathesis.openapi.from_dict(spec)
    ops = [op.ok() for op in schema.get_all_operations() if op.ok().path not in SKIP]
    assert len(ops) >= 10
    failures: list[str] = []
    for op in ops:
        strategy = op.as_strategy()

        @settings(max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def run(case) -> None:  # noqa: ANN001
            headers = {**(_given(case.headers) or {}), "X-API-Key": KEY}
            body = _given(case.body)
            kw = {} if body is None else {"content": body} if isinstance(body, bytes) else {"json": body}
            r = client.request(case.method, case.formatted_path, params=_given(case.query), headers=headers, **kw)
            if r.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {r.status_code}: {r.text[:200]}")

        run()
    assert not failures, failures[:5]
