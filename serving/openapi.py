"""The OpenAPI page as the service really behaves (``GET /docs.json``, which the page at ``/`` reads).

BentoML builds the document from the endpoints' pydantic models, and FastAPI adds the
mounted GET routes. Neither knows what portrait's middlewares and error mapping do, so
the document said less than the truth: no API key, a 422 where the answer is a 400, no
401/403/409/413/415/503, a ``/metrics`` route that is turned off, and version "None".
:func:`complete` fills that in; :class:`OpenApiMiddleware` applies it to the document
BentoML serves (the document only: nothing else passes through it).
"""

from __future__ import annotations

import json
import os
from typing import Any

from serving.auth import classify
from serving.guard import body_limit

SPEC_PATH = "/docs.json"
ERROR = {"application/json": {"schema": {"type": "object", "properties": {"error": {"type": "string"}},
                                         "required": ["error"]}}}
AUTH = {"401": "missing API key (send X-API-Key or Authorization: Bearer)", "403": "wrong API key"}
MODEL_PATHS = {"/recommend": "recommender", "/similar_items": "recommender", "/score": "churn / ltv / propensity",
               "/lookalike": "lookalike", "/tags/writeback": "churn / ltv / propensity",
               "/profile/{id}": "identity and features"}


def _error(text: str) -> dict:
    return {"description": text, "content": ERROR}


def metrics_enabled(env: dict[str, str] | None = None) -> bool:
    """Whether BentoML's ``/metrics`` is on in this worker (``portrait serve`` turns it off unless ``--metrics``)."""
    env = os.environ if env is None else env
    try:
        overrides = json.loads(env.get("BENTOML_CONFIG_OVERRIDES", "") or "{}")
        return bool(overrides["services"]["portrait"]["metrics"]["enabled"])
    except (ValueError, KeyError, TypeError):
        return True  # BentoML's default


def complete(spec: dict, open_reads: bool, version: str, metrics: bool) -> dict:
    """``spec`` with security, the real error statuses and the served version (changed in place, returned)."""
    info = spec.setdefault("info", {})
    info.update(version=version)
    info.pop("contact", None)  # BentoML's own address: not who runs this service
    schemes = spec.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes["ApiKey"] = {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    schemes["Bearer"] = {"type": "http", "scheme": "bearer"}
    paths = spec.get("paths", {})
    if not metrics:
        paths.pop("/metrics", None)
    for path, item in paths.items():
        for verb, op in item.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            kind = classify(path.replace("{", "x").replace("}", "x"), verb)
            responses = op["responses"]
            if "422" in responses:  # portrait answers validation errors with a 400, as its POST endpoints do
                responses.setdefault("400", {**responses.pop("422"), "description": "invalid request: the field is named"})
            if kind == "write" or (kind == "read" and not open_reads):
                op["security"] = [{"ApiKey": []}, {"Bearer": []}]
                for code, text in AUTH.items():
                    responses.setdefault(code, _error(text))
            if verb == "post":
                responses.setdefault("400", _error("invalid request: the field or token at fault is named"))
                responses.setdefault("413", _error(f"body over {body_limit(path):,} bytes"))
                responses.setdefault("415", _error("body not sent as JSON (Content-Type: application/json)"))
            if path in MODEL_PATHS:
                responses.setdefault("503", _error(f"not loaded in this server: {MODEL_PATHS[path]}"))
            if path == "/profile/{id}":
                responses.setdefault("404", _error("no customer matches this identifier"))
                responses.setdefault("409", _error("the identifier is shared by several people (e.g. a store device)"))
            if path.startswith("/audiences/"):
                responses.setdefault("404", _error("no saved audience with this id"))
    return spec


def portrait_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("portrait")
    except PackageNotFoundError:
        return "unknown"


class OpenApiMiddleware:
    """Rewrites BentoML's ``GET /docs.json`` with :func:`complete`; every other request passes untouched."""

    def __init__(self, app: Any) -> None:
        from serving.config import ServeConfig

        self.app = app
        self.open_reads = ServeConfig.from_env().open_reads

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") != "GET" or scope["path"] != SPEC_PATH:
            await self.app(scope, receive, send)
            return
        start, chunks = {}, []

        async def capture(message: dict) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        if start.get("status") == 200:
            try:
                spec = complete(json.loads(body), self.open_reads, portrait_version(), metrics_enabled())
                body = json.dumps(spec).encode()
            except ValueError:
                pass  # not JSON after all: serve what BentoML made
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": start.get("status", 500), "headers": headers})
        await send({"type": "http.response.body", "body": body})
