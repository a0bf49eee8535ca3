"""JSON responses that write Decimal as an exact JSON number, not a string or a float."""

from __future__ import annotations

from datetime import date
from typing import Any

import simplejson
from flask.json.provider import JSONProvider


class DecimalJSONProvider(JSONProvider):
    """Flask's JSON provider on simplejson, whose use_decimal keeps amounts exact."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("use_decimal", True)
        kwargs.setdefault("default", _default)
        kwargs.setdefault("separators", (",", ":"))
        return simplejson.dumps(obj, **kwargs)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        kwargs.setdefault("use_decimal", True)
        return simplejson.loads(s, **kwargs)


def _default(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
