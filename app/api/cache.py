"""GET responses: ETags, cheap revalidation, and a per-process cache, all keyed on the data version.

Database triggers replace the data version token (``live.data_version``)
with a fresh random value on every committed change to the replica's tables,
whoever makes it: a sync, a manual SQL repair, a TRUNCATE, a restore. A read
is a pure function of that token, the endpoint, its *parsed* arguments and
the root URL its Link headers point at, so an answer cached under that key is
never stale, and unknown query parameters make no new keys. A hit is
answered from the one statement that reads the version. A miss reads the
version again after the answer: unchanged, the answer is of that version
(SPEC §3: one snapshot per answer); changed, a sync committed meanwhile and
the answer is read again in one snapshot, under that snapshot's version.

Every answer says its data position (``X-Data-Position``) and its ETag
begins with it, so a revalidation presents the state it saw: with replicas,
it is answered from that state or a later one (app/web/replicas.py).

The cache is bounded in entries (READ_CACHE_SIZE) and in bytes
(READ_CACHE_BYTES); READ_CACHE_SIZE=0 turns it off, never the ETags.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, current_app, g, request

from app.db.engine import read_snapshot, read_without_transaction
from app.db.positions import position_of
from app.extensions import db
from app.reads import live
from app.reads.paging import DataMoved
from app.web.replicas import note_position

_KEPT_HEADERS = ("Content-Type", "Link")
CACHE_CONTROL = "private, no-cache"
# A share of the byte budget one entry may take: a few huge pages must not
# evict everything else.
_LARGEST_ENTRY_SHARE = 8
# What an entry costs beyond its body and headers (key, tuples, bookkeeping).
_ENTRY_OVERHEAD = 512


@dataclass(frozen=True)
class CachedResponse:
    """A 200 response's body and the headers worth replaying."""

    body: bytes
    headers: tuple[tuple[str, str], ...]

    @property
    def size(self) -> int:
        """Approximate bytes held: body, headers and a fixed overhead."""
        return len(self.body) + sum(len(k) + len(v) for k, v in self.headers) + _ENTRY_OVERHEAD


class ResponseCache:
    """A thread-safe LRU of responses, bounded in entries and in bytes."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        # Each entry with what it costs, computed once when it is stored.
        self._entries: OrderedDict[Hashable, tuple[CachedResponse, int]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """Whether anything can be stored at all."""
        return self.max_entries > 0 and self.max_bytes > 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> CachedResponse | None:
        """The entry for ``key``, marked recently used, or None."""
        with self._lock:
            stored = self._entries.get(key)
            if stored is None:
                return None
            self._entries.move_to_end(key)
            return stored[0]

    def put(self, key: Hashable, entry: CachedResponse) -> None:
        """Store ``entry`` (unless it is too large), evicting the least recently used."""
        cost = entry.size + len(repr(key))
        if cost > self.max_bytes // _LARGEST_ENTRY_SHARE:
            return
        with self._lock:
            _, old_cost = self._entries.pop(key, (None, 0))
            self._entries[key] = (entry, cost)
            self.bytes += cost - old_cost
            while self._entries and (
                len(self._entries) > self.max_entries or self.bytes > self.max_bytes
            ):
                _, (_, evicted_cost) = self._entries.popitem(last=False)
                self.bytes -= evicted_cost


def cached_read(view: Callable[..., Any]) -> Callable[..., Any]:
    """Serve a GET view with an ETag, 304 on a matching If-None-Match, and the cache.

    Apply it below ``@bp.arguments`` so that it sees the parsed arguments.
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        session = db.session()
        read_without_transaction(session)
        # A cache hit (or a 304) is answered from this one statement.
        version = live.data_version(session)
        note_position(version)
        answer = _known_answer(version, args, kwargs)
        if answer is not None:
            return answer
        # A miss must be read in one snapshot with the version it reports (SPEC
        # §3). Tokens never repeat and every committed change replaces it, so a
        # version that reads the same after the view's statements as before
        # them means they all saw that one state: one statement more, not a
        # transaction. Only a read that a commit raced is read again, in one
        # REPEATABLE READ snapshot.
        try:
            response = _read(view, version, args, kwargs)
            raced = version is not None and live.data_version(session) != version
        except DataMoved:
            raced = True  # seen while pinning the page (paging.pin_instant_of)
        if raced:
            with read_snapshot(session):
                version = live.data_version(session)
                note_position(version)
                answer = _known_answer(version, args, kwargs)
                if answer is not None:
                    return answer
                response = _read(view, version, args, kwargs)
        return _kept(response, version, args, kwargs)

    return wrapper


def _read(
    view: Callable[..., Any], version: str | None, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Response:
    """Run ``view`` for the data ``version`` names (its pins read ``g.data_version``)."""
    g.data_version = version
    return current_app.make_response(view(*args, **kwargs))


def _kept(
    response: Response, version: str | None, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Response:
    """A 200 stored in the cache and tagged with its version; anything else as it is.

    Without a version (the data_version row was removed by hand) there is no key to trust.
    """
    if version is None or response.status_code != 200:
        return response
    entry = CachedResponse(
        response.get_data(),
        tuple((name, response.headers[name]) for name in _KEPT_HEADERS if name in response.headers),
    )
    cache = read_cache(current_app)
    key = _key(version, args, kwargs)
    if cache.enabled:
        cache.put(key, entry)
    return _replay(entry, key)


def _key(version: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """The current request's read_key."""
    return read_key(version, request.endpoint, request.root_url, args, kwargs)


def read_key(
    version: str,
    endpoint: str | None,
    root_url: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> tuple[Any, ...]:
    """What a read is a pure function of: the data version and the request's parsed parts."""
    return (version, endpoint, root_url, *args, tuple(sorted(kwargs.items())))


def read_cache(app: Flask) -> ResponseCache:
    """The app's cache of read responses."""
    cache: ResponseCache = app.extensions["read_cache"]
    return cache


def etag_of(
    version: str | None, args: tuple[Any, ...], kwargs: dict[str, Any], variant: str
) -> str | None:
    """The ETag of another representation (``variant``) of a read: None without a version."""
    return None if version is None else _etag((*_key(version, args, kwargs), variant))


def _etag(key: tuple[Any, ...]) -> str:
    """The tag of a read: its data position, then a digest of the key (data version
    included). Both are replicated data, so one state gives one tag on every node and
    replica (SPEC §8), and the position tells a revalidation what state it saw."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=16).hexdigest()
    position = position_of(key[0])
    return digest if position is None else f"{position}.{digest}"


def _known_answer(
    version: str | None, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Response | None:
    """304 for a current If-None-Match, the cached 200, or None when the view must run."""
    if version is None:
        return None
    key = _key(version, args, kwargs)
    etag = _etag(key)
    if request.if_none_match.contains_weak(etag):
        return Response(status=304, headers={"ETag": f'"{etag}"', "Cache-Control": CACHE_CONTROL})
    cache = read_cache(current_app)
    entry = cache.get(key) if cache.enabled else None
    return None if entry is None else _replay(entry, key)


def _replay(entry: CachedResponse, key: tuple[Any, ...]) -> Response:
    """The 200 of ``entry`` with the ETag of ``key``."""
    return Response(entry.body, status=200, headers=replay_headers(entry, key))


def replay_headers(entry: CachedResponse, key: tuple[Any, ...]) -> list[tuple[str, str]]:
    """The headers of ``entry``'s 200 read under ``key``: its own, its ETag, Cache-Control."""
    return [*entry.headers, ("ETag", f'"{_etag(key)}"'), ("Cache-Control", CACHE_CONTROL)]
