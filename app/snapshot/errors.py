"""What the reader raises for a body that cannot be a snapshot (SPEC §2, whole-request errors)."""

from __future__ import annotations


class SnapshotError(Exception):
    """The body cannot be read as a snapshot: it is refused whole and nothing is applied.

    ``code`` names the failure for callers (the HTTP layer maps it to a status,
    the CLI to its exit code): this one is a body that is not JSON, not UTF-8 or
    not gzip.
    """

    code = "invalid_json"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SnapshotNotAnArray(SnapshotError):
    """Valid JSON, but not the array of records a snapshot is."""

    code = "invalid_payload"


class SnapshotTooLarge(SnapshotError):
    """The body, as sent or decompressed, is longer than ``limit`` bytes (MAX_CONTENT_LENGTH).

    The one 413 of an oversized upload, whichever way it was found: a declared
    Content-Length, counted input, or inflated gzip.
    """

    code = "payload_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"The request body exceeds the limit of {limit} bytes.")
        self.limit = limit
