"""The parts of /openapi.json that no single view knows: security, shared errors, bodies.

Access control and rate limits are applied to every request centrally
(app/web/auth.py, app/web/rate_limits.py), so they are documented centrally too: an
apispec plugin gives each operation its security requirement and the 401,
403 and 429 answers the hooks can give, from the same rules the hooks use;
every read its ETag and 304 (app/api/cache.py), and every data operation
the 503 of a lost database.
"""

from __future__ import annotations

from typing import Any

from apispec import APISpec, BasePlugin
from werkzeug.routing import Rule

from app.api.args import InstantField
from app.sync.record_schemas import (
    AmountField,
    CalendarDateField,
    ExternalIdField,
    PatientRecordSchema,
    PaymentRecordSchema,
)
from app.web.auth import Scope, scope_for
from app.web.smorest import Api

BEARER = "bearerAuth"
READ_HEADERS = {
    "ETag": {
        "description": "Names the data version and the request; send it back in "
        "If-None-Match to get 304 while the data is unchanged.",
        "schema": {"type": "string"},
    },
    "Cache-Control": {
        "description": "private, no-cache: revalidate before reuse.",
        "schema": {"type": "string"},
    },
}
# Errors any sync can answer besides the 422 of its query arguments.
SYNC_ERRORS = {
    "400": "BAD_REQUEST",
    "409": "CONFLICT",
    "413": "REQUEST_ENTITY_TOO_LARGE",
    "415": "UNSUPPORTED_MEDIA_TYPE",
}

API_DESCRIPTION = """\
A faithful, queryable replica of the patients and payments of an upstream
billing system, which POSTs complete snapshots; analytics on top.

Every endpoint that returns or changes patient data needs
`Authorization: Bearer <token>`: a read token for GETs, a write token for
syncs. Every response carries `X-Request-ID` (yours, if you sent a sane
one). Errors are always `{"error": {"code", "message", "details"}}`.
Sync bodies may be gzip-compressed (`Content-Encoding: gzip`).
"""


class AccessPlugin(BasePlugin):
    """Mark each operation open or bearer-protected, with the errors the hooks give."""

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        """Add security and the 401/403/429 responses to every operation of a path."""
        rule: Rule | None = kwargs.get("rule")
        if rule is None or operations is None:
            return
        blueprint = rule.endpoint.partition(".")[0]
        for method, operation in operations.items():
            scope = scope_for(blueprint, method)
            if scope is None:
                operation["security"] = []
                continue
            operation["security"] = [{BEARER: []}]
            responses = operation.setdefault("responses", {})
            responses.setdefault("401", "UNAUTHORIZED")
            responses.setdefault("429", "RATE_LIMITED")
            responses.setdefault("503", "DATABASE_UNAVAILABLE")
            if scope is Scope.READ:
                responses.setdefault("304", "NOT_MODIFIED")
                # flask-smorest keys its own responses by int, ours are strings.
                ok = responses.get(200, responses.get("200"))
                if isinstance(ok, dict):
                    ok.setdefault("headers", {}).update(READ_HEADERS)
            if scope is Scope.WRITE:
                responses.setdefault("403", "FORBIDDEN")
                for status, name in SYNC_ERRORS.items():
                    responses.setdefault(status, name)


def spec_kwargs() -> dict[str, Any]:
    """Arguments for Api.init_app: the plugin above."""
    return {"extra_plugins": [AccessPlugin()]}


def document_components(api: Api) -> None:
    """Register the security scheme, the 429 answer, the record schemas and our field types."""
    spec: APISpec = api.spec
    spec.options.setdefault("info", {})["description"] = API_DESCRIPTION
    spec.components.security_scheme(
        BEARER,
        {
            "type": "http",
            "scheme": "bearer",
            "description": "A token from API_READ_TOKENS (reads) "
            "or API_WRITE_TOKENS (reads, syncs).",
        },
    )
    spec.components.response(
        "RATE_LIMITED",
        {
            "description": "Too many requests for this token's budget (RATELIMIT_READ or "
            "RATELIMIT_SYNC).",
            "headers": {
                "Retry-After": {
                    "description": "Seconds until the budget refills.",
                    "schema": {"type": "integer"},
                }
            },
            "content": {"application/json": {"schema": "Error"}},
        },
    )
    spec.components.response(
        "NOT_MODIFIED",
        {
            "description": "If-None-Match holds the current ETag: the data has not changed.",
            "headers": {"ETag": READ_HEADERS["ETag"]},
        },
    )
    spec.components.response(
        "DATABASE_UNAVAILABLE",
        {
            "description": "The database cannot be reached; retry after Retry-After seconds.",
            "headers": {
                "Retry-After": {
                    "description": "Seconds to wait before retrying.",
                    "schema": {"type": "integer"},
                }
            },
            "content": {"application/json": {"schema": "Error"}},
        },
    )
    api.ma_plugin.map_to_openapi_type(ExternalIdField, "string", None)
    api.ma_plugin.map_to_openapi_type(CalendarDateField, "string", "date")
    api.ma_plugin.map_to_openapi_type(AmountField, "number", None)
    api.ma_plugin.map_to_openapi_type(InstantField, "string", "date-time")
    spec.components.schema("PatientRecord", schema=PatientRecordSchema)
    spec.components.schema("PaymentRecord", schema=PaymentRecordSchema)


# The 202 of POST /patients and POST /payments (SPEC §2, asynchronous syncs).
QUEUED_SYNC_DESCRIPTION = (
    "With the header `Prefer: respond-async` (RFC 7240): the body is stored and "
    "the sync queued for `flask syncs worker`; `Location: /syncs/<syncId>` names it. Poll it "
    "until its `state` is `applied`, `refused` or `failed`."
)


def snapshot_body(record: str) -> dict[str, Any]:
    """The requestBody of a sync: the complete snapshot, a JSON array of ``record``."""
    return {
        "required": True,
        "description": "The complete current snapshot. Records that fail validation are "
        "rejected one by one and listed in the report; the rest are applied.",
        "content": {
            "application/json": {
                "schema": {"type": "array", "items": {"$ref": f"#/components/schemas/{record}"}}
            }
        },
    }


# The first lines of each export, for the OpenAPI examples.
_CSV_EXAMPLES = {
    "patients": "id,externalId,firstName,lastName,middleName,dateOfBirth,paymentsTotal,"
    "paymentsCount,created,updated\r\n"
    '1,p-1,Zoë,"O\'Brien, Jr.",,1980-02-29,1234.50,3,'
    "2026-11-21T10:00:00+00:00,2026-11-22T10:00:00+00:00\r\n",
    "payments": "id,externalId,patientId,amount,created,updated\r\n"
    "1,m-1,p-1,-12.50,2026-11-21T10:00:00+00:00,2026-11-21T10:00:00+00:00\r\n",
    "changes": "entity,externalId,op,before,after,changedFields\r\n"
    'payments,m-1,updated,"{""externalId"":""m-1"",""patientId"":""p-1"",""amount"":10.00}",'
    '"{""externalId"":""m-1"",""patientId"":""p-1"",""amount"":12.50}","[""amount""]"\r\n',
}


def csv_doc(listing: str) -> dict[str, Any]:
    """The text/csv answer of a listing (``Accept: text/csv``), for ``@bp.doc``."""
    return {
        "responses": {
            # flask-smorest keys its own responses by int: this merges into its 200.
            200: {
                "content": {
                    "text/csv": {
                        "schema": {
                            "type": "string",
                            "description": "With Accept: text/csv, the whole listing (same "
                            "filters, sort and as_of; limit and cursor ignored), streamed: a "
                            "header row of the JSON keys in order, RFC 4180 quoting, CRLF line "
                            "ends, UTF-8 without a byte-order mark, null as an empty cell, "
                            "amounts with two decimals, timestamps as in JSON, nested values as "
                            "JSON text. Each 1,000 rows spend one request of the read budget.",
                        },
                        "example": _CSV_EXAMPLES[listing],
                    }
                }
            }
        }
    }
