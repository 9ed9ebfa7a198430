"""Request bodies the API accepts: JSON only, and of a bounded size (a plain ASGI middleware).

Every POST endpoint takes a JSON object. BentoML would otherwise parse any other
media type its own way: a form body (``curl -d`` sends
``application/x-www-form-urlencoded``) became a field named after the whole body,
so the identifiers in it came back in the 400 and in the log, and a malformed
multipart body was a 500. Here a body that is not JSON is a 415 naming the media
type to send, before anything parses it; a missing ``Content-Type`` is read as JSON.

A body larger than the endpoint's limit is a 413 before it is read in full: the
largest legitimate request is an explicit lookalike seed list (100,000 ids of up to
256 characters), every other request fits in 1 MiB. Bodies without a
``Content-Length`` (chunked) are counted as they arrive.
"""

from __future__ import annotations

import json
import logging
from typing import Any

JSON_TYPES = ("application/json",)
MAX_BODY = 1 << 20  # bytes: every endpoint but /lookalike (1,000 ids of 256 characters fit ~4 times)
MAX_BODY_BY_PATH = {"/lookalike": 32 << 20}  # 100,000 seed ids of up to 256 characters


def media_type(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The request's media type (lower case, parameters dropped); None when absent or empty."""
    for name, value in headers:
        if name == b"content-type":
            kind = value.decode("latin-1").split(";")[0].strip().lower()
            return kind or None
    return None


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def body_limit(path: str) -> int:
    return MAX_BODY_BY_PATH.get(path.rstrip("/") or "/", MAX_BODY)


def refusal(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, str] | None:
    """(status, message) for a POST whose body the API will not read; None when it may go on."""
    if method != "POST":
        return None
    kind = media_type(headers)
    if kind is not None and kind not in JSON_TYPES and not kind.endswith("+json"):
        shown = kind if len(kind) <= 80 else kind[:80] + "..."
        return 415, (f"the body must be JSON: send it with 'Content-Type: application/json' (got '{shown}'; "
                     "with curl, add -H 'Content-Type: application/json')")
    size, limit = declared_length(headers), body_limit(path)
    if size is not None and size > limit:
        return 413, f"request body of {size:,} bytes is over this endpoint's limit of {limit:,} bytes"
    return None


class BodyGuardMiddleware:
    """ASGI middleware enforcing :func:`refusal`, and the size limit on chunked bodies as they arrive."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        refused = refusal("POST", scope["path"], scope["headers"])
        if refused is not None:
            await reply(send, *refused)
            return
        if declared_length(scope["headers"]) is not None:  # the server holds the body to its declared length
            await self.app(scope, receive, send)
            return
        limit, chunks, size = body_limit(scope["path"]), [], 0
        while True:  # chunked: read it here (it is parsed whole anyway), refuse it once it is too large
            message = await receive()
            if message["type"] != "http.request":
                chunks.append(message)
                break
            size += len(message.get("body", b""))
            if size > limit:
                await reply(send, 413, f"request body is over this endpoint's limit of {limit:,} bytes")
                return
            chunks.append(message)
            if not message.get("more_body", False):
                break
        replay = iter(chunks)

        async def replayed() -> dict:
            return next(replay, None) or await receive()

        await self.app(scope, replayed, send)


async def reply(send: Any, status: int, message: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    """A JSON error response ``{"error": message}`` (the shape every endpoint's errors have)."""
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ClientErrorsQuiet(logging.Filter):
    """BentoML logs every failed request as ``Exception on <path>`` at ERROR with a traceback, 400s included.

    A client's mistake is not a server error: a 4xx becomes one INFO line (status, path, exception
    type; never the input), so a misbehaving client cannot flood the log and real 5xx stay visible.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != "Exception on %s [%s]" or not record.exc_info:
            return True
        status = client_status(record.exc_info[1])
        if status is not None:
            record.msg, record.args = "%d on %s [%s]: %s", (status, *record.args, type(record.exc_info[1]).__name__)
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info, record.exc_text = None, None
        return True


def client_status(exc: BaseException | None) -> int | None:
    """The 4xx status BentoML answers ``exc`` with; None for anything it answers with a 5xx."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return 400
    code = getattr(getattr(exc, "error_code", None), "value", None)  # BentoMLException
    return code if isinstance(code, int) and 400 <= code < 500 else None


def quiet_client_errors() -> None:
    """Install :class:`ClientErrorsQuiet` on BentoML's HTTP app logger (once per process)."""
    logger = logging.getLogger("bentoml._internal.server.http_app")
    if not any(isinstance(f, ClientErrorsQuiet) for f in logger.filters):
        logger.addFilter(ClientErrorsQuiet())
