"""A per-process cache of GET responses, keyed on the data version.

Every change to the replica is a sync, and every sync writes its sync_runs
row in the same transaction, so ``max(sync_runs.id)`` names the state a
reader sees. A response is a pure function of that version and the request
URL: a hit costs one index lookup instead of a query plus serialization of
up to 1000 rows, and can never be stale. Dashboards repeat the same queries,
which is what this is for. READ_CACHE_SIZE=0 turns it off.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from flask import Response, current_app, request

from app import queries
from app.extensions import db

_KEPT_HEADERS = ("Content-Type", "Link")


class ResponseCache:
    """A thread-safe LRU of (status, body, headers) by key."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[Any, ...], tuple[int, bytes, dict[str, str]]] = \
            OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> tuple[int, bytes, dict[str, str]] | None:
        """The entry for ``key``, marked recently used, or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: tuple[Any, ...], entry: tuple[int, bytes, dict[str, str]]) -> None:
        """Store ``entry``, evicting the least recently used beyond the size."""
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


def cached_read(view: Callable[..., Any]) -> Callable[..., Any]:
    """Serve a GET view's 200 responses from the cache while the data version holds."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        cache: ResponseCache | None = current_app.extensions.get("read_cache")
        if cache is None or cache.size <= 0:
            return view(*args, **kwargs)
        key = (queries.data_version(db.session), request.url)
        entry = cache.get(key)
        if entry is None:
            response = current_app.make_response(view(*args, **kwargs))
            if response.status_code != 200:
                return response
            headers = {name: response.headers[name] for name in _KEPT_HEADERS
                       if name in response.headers}
            entry = (response.status_code, response.get_data(), headers)
            cache.put(key, entry)
        status, body, headers = entry
        return Response(body, status=status, headers=headers)

    return wrapper
