"""API-key protection for write and admin endpoints, as a plain ASGI middleware.

Policy, by path:

* write/admin (``/tags/writeback``, ``/admin/reload``, ``/admin/memory``, ``/lookalike`` which saves an
  audience, and any ``DELETE`` such as ``DELETE /audiences/{id}``): the key is always required;
* read (``/recommend``, ``/score``, ``/profile/...``, ...): open unless the server
  runs with ``PORTRAIT_OPEN_READS=false``;
* infrastructure (``/healthz``, ``/readyz``, ``/metrics``, the OpenAPI page): open.

A missing key is a 401 saying which header to send; a wrong key is a 403. A server
started without a key refuses every protected endpoint with a 403 that says how
to configure one (closed by default, never open by accident). The key is
compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
from typing import Any

from serving.guard import reply

WRITE_PATHS = frozenset({"/tags/writeback", "/admin/reload", "/admin/memory", "/lookalike"})
READ_PATHS = frozenset({"/recommend", "/similar_items", "/score", "/noop", "/status"})
READ_PREFIXES = ("/profile/", "/audiences/")
WRITE_METHODS = frozenset({"DELETE", "PUT", "PATCH"})  # whatever the path: a change always needs the key
HEADER = b"x-api-key"


def classify(path: str, method: str = "GET") -> str:
    """'write', 'read' or 'open' for a request path and HTTP method."""
    path = path.rstrip("/") or "/"
    if path in WRITE_PATHS or method.upper() in WRITE_METHODS:
        return "write"
    if path in READ_PATHS or path.startswith(READ_PREFIXES):
        return "read"
    return "open"


def presented_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The key from ``X-API-Key`` or ``Authorization: Bearer``; None when absent."""
    for name, value in headers:
        if name == HEADER:
            return value.decode("latin-1").strip() or None
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return value[7:].decode("latin-1").strip() or None
    return None


def check(kind: str, key: str | None, server_key: str | None, open_reads: bool) -> tuple[int, str] | None:
    """None when allowed, else (status, message)."""
    if kind == "open" or (kind == "read" and open_reads):
        return None
    if server_key is None:
        return 403, ("this endpoint needs an API key but the server has none configured: "
                     "start it with PORTRAIT_API_KEY set")
    if key is None:
        return 401, "missing API key: send it in the X-API-Key header (or Authorization: Bearer <key>)"
    if not hmac.compare_digest(key.encode(), server_key.encode()):
        return 403, "invalid API key"
    return None


class ApiKeyMiddleware:
    """ASGI middleware enforcing :func:`check`; the policy comes from ``ServeConfig``."""

    def __init__(self, app: Any, server_key: str | None = None, open_reads: bool | None = None) -> None:
        if open_reads is None:  # BentoML builds middlewares inside the worker: read its environment there
            from serving.config import ServeConfig

            cfg = ServeConfig.from_env()
            server_key, open_reads = cfg.api_key, cfg.open_reads
        self.app = app
        self.server_key = server_key
        self.open_reads = open_reads

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            kind = classify(scope["path"], scope.get("method", "GET"))
            if kind != "open":
                denied = check(kind, presented_key(scope["headers"]), self.server_key, self.open_reads)
                if denied is not None:
                    await _reply(send, *denied)
                    return
        await self.app(scope, receive, send)


async def _reply(send: Any, status: int, message: str) -> None:
    await reply(send, status, message, [(b"www-authenticate", b'ApiKey header="X-API-Key"')] if status == 401 else None)
