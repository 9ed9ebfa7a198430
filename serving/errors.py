"""Errors the business functions raise; the service turns each into an HTTP status.

Messages must say what to fix and must never contain the identifier the caller
sent (it may be a phone number or an email): name the field, not its value.
"""

from __future__ import annotations


class ServingError(Exception):
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(ServingError):
    """The request is well-formed JSON but asks for something impossible (400)."""

    status = 400


class NotFound(ServingError):
    """A named resource (audience, item) does not exist (404)."""

    status = 404


class Conflict(ServingError):
    """The request names something ambiguous, e.g. an identifier several people share (409)."""

    status = 409


class NotLoaded(ServingError):
    """A model or the data it needs is not loaded in this server (503)."""

    status = 503
