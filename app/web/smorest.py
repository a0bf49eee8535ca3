"""flask-smorest's Api, made to speak our error envelope."""

from __future__ import annotations

from typing import Any

import flask_smorest
import marshmallow as ma
from werkzeug.exceptions import HTTPException

from app.errors import http_exception_response


class ErrorDetailSchema(ma.Schema):
    """The inner object of every error body."""

    code = ma.fields.String(required=True)
    message = ma.fields.String(required=True)
    details = ma.fields.Dict()


class ErrorSchema(ma.Schema):
    """Every error body: {"error": {code, message, details}}."""

    error = ma.fields.Nested(ErrorDetailSchema, required=True)


class Api(flask_smorest.Api):
    """Api whose HTTP errors use the app's envelope and keep their headers."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException) -> Any:
        # The stock handler drops headers such as Allow on 405.
        return http_exception_response(error)
