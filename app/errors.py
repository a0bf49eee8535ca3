"""One error format for every failure the API reports.

Every error response is JSON of the shape::

    {"error": {"code": "invalid_parameter", "message": "...", "details": {...}}}

with the HTTP status carrying the class of failure. Codes are snake_case and
stable; messages are for people; details are machine-readable and optional.
Nothing a client sends can produce a stack trace or an HTML page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask import Response, jsonify
from werkzeug.exceptions import HTTPException

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_parameter",
    429: "rate_limited",
}


# What a lost, restarting or saturated database raises: a refused or broken
# connection, an exhausted pool, a cancelled statement. Retrying later can
# succeed, so these are 503 with Retry-After, not 500 (the API and the console alike).
DATABASE_UNAVAILABLE = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)
DATABASE_RETRY_AFTER = "5"


class APIError(Exception):
    """An error the client should see, with its status, code and details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = dict(details or {})
        self.headers = dict(headers or {})

    @classmethod
    def invalid_parameter(cls, name: str, message: str) -> APIError:
        """422 for a bad query value, naming the parameter."""
        return cls(
            422,
            "invalid_parameter",
            f"Invalid value for '{name}': {message}",
            {"parameter": name, "messages": [message]},
        )

    @classmethod
    def not_found(cls, what: str) -> APIError:
        """404 for a resource that does not exist (or is soft-deleted)."""
        return cls(404, "not_found", f"{what} not found.")

    @classmethod
    def invalid_json(cls, message: str) -> APIError:
        """400 for a body that is not JSON (or not valid gzip)."""
        return cls(400, "invalid_json", message)

    @classmethod
    def invalid_payload(cls, message: str) -> APIError:
        """422 for JSON that is not the expected array."""
        return cls(422, "invalid_payload", message)

    @classmethod
    def unsupported_media_type(cls, message: str) -> APIError:
        """415 for a body that is not application/json, or an unknown encoding."""
        return cls(415, "unsupported_media_type", message)


def error_response(
    status: int, code: str, message: str, details: Mapping[str, Any] | None = None
) -> Response:
    """Build the JSON error envelope with the given status."""
    body = {"code": code, "message": message, "details": dict(details or {})}
    response = jsonify({"error": body})
    response.status_code = status
    return response


def http_exception_response(error: HTTPException) -> Response:
    """Turn an HTTPException into the envelope, keeping headers such as Allow and Retry-After."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    if status == 422 and "messages" in data:
        return _webargs_error_response(data["messages"])
    code = HTTP_CODES.get(status, "error")
    response = error_response(status, code, error.description or error.name)
    for name, value in error.get_response().headers.items():
        if name.lower() not in ("content-type", "content-length"):
            response.headers[name] = value
    return response


def _webargs_error_response(messages: Mapping[str, Any]) -> Response:
    """Re-shape webargs' {location: {field: [msg]}} into invalid_parameter."""
    fields: dict[str, Any] = {}
    for per_location in messages.values():
        if isinstance(per_location, Mapping):
            fields.update(per_location)
    names = sorted(fields) or ["query"]
    message = "Invalid value for " + ", ".join(f"'{name}'" for name in names) + "."
    return error_response(422, "invalid_parameter", message, {"parameters": fields})
