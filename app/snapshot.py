"""Reading a snapshot upload: bounded gunzip and exact JSON parsing (SPEC §2)."""

from __future__ import annotations

import json
import zlib
from decimal import Decimal
from typing import Any

from app.errors import APIError

_MAX_INT_DIGITS = 1000


def gunzip_bounded(raw: bytes, limit: int) -> bytes:
    """Decompress a gzip body, refusing output beyond ``limit`` bytes (gzip bombs get 413)."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        body = inflater.decompress(raw, limit + 1)
    except zlib.error as error:
        raise APIError.invalid_json(f"The body is not valid gzip: {error}.") from None
    if len(body) > limit or inflater.unconsumed_tail:
        raise APIError.payload_too_large(limit)
    if not inflater.eof:
        raise APIError.invalid_json("The gzip body is truncated.")
    return body


def parse_snapshot(raw: bytes | str) -> list[Any]:
    """Parse a snapshot: a JSON array, numbers read exactly as Decimal.

    NaN and Infinity are not JSON and make the whole body invalid.
    """
    try:
        data = json.loads(raw, parse_float=Decimal, parse_int=_parse_int,
                          parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        raise APIError.invalid_json(f"The body is not valid JSON: {error}.") from None
    if not isinstance(data, list):
        raise APIError.invalid_payload(
            f"Expected a JSON array of records, got a JSON {_json_type(data)}.")
    return data


def _parse_int(text: str) -> int | Decimal:
    # int() refuses more than 4300 digits (CVE-2020-10735 guard), which would fail
    # the whole upload; such a number is invalid in any field, so reject it per record.
    return int(text) if len(text) <= _MAX_INT_DIGITS else Decimal(text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"
