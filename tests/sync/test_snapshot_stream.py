"""The streaming snapshot reader: whole-body errors, and memory bounded whatever the body."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.snapshot import (
    CHUNK_SIZE,
    GunzipReader,
    OversizedRecord,
    SnapshotError,
    iter_snapshot,
    reader,
)
from app.snapshot.decoder import DECODER
from app.sync.entities import ENTITIES
from app.sync.records import validate_snapshot

MiB = 1 << 20
LIMIT = 1024


class Pieces:
    """A read()-able body made of byte pieces, produced lazily; no read crosses a piece."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self._pieces = iter(pieces)
        self._rest = b""
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        while not self._rest:
            piece = next(self._pieces, None)
            if piece is None:
                return b""
            self._rest = piece
        cut = len(self._rest) if size < 0 else size
        out, self._rest = self._rest[:cut], self._rest[cut:]
        self.bytes_read += len(out)
        return out


def repeated(head: bytes, unit: bytes, count: int, tail: bytes) -> Iterator[bytes]:
    """head + unit * count + tail, in pieces of about 64 KiB."""
    yield head
    per = max(1, (1 << 16) // len(unit))
    for _ in range(count // per):
        yield unit * per
    yield unit * (count % per)
    yield tail


def zeros(limit: int) -> Iterator[bytes]:
    """NUL bytes, as /dev/zero gives them, failing the test past ``limit`` bytes."""
    for _ in range(limit // MiB):
        yield bytes(MiB)
    raise AssertionError(f"the reader read more than {limit} bytes")


def read_all(stream: Any, **options: Any) -> list[Any]:
    return list(iter_snapshot(stream, **options))


def refusal(stream: Any, **options: Any) -> SnapshotError:
    """The SnapshotError reading ``stream`` raises."""
    with pytest.raises(SnapshotError) as caught:
        read_all(stream, **options)
    return caught.value


def peak_memory(action: Callable[[], Any]) -> int:
    """The most memory Python held at once while ``action`` ran, in bytes."""
    tracemalloc.start()
    try:
        with contextlib.suppress(SnapshotError):
            action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def element(text: str) -> bytes:
    return f"[{text}]".encode()


def padded(external_id: Any, size: int) -> str:
    """An object of exactly ``size`` characters whose externalId is ``external_id``."""
    head = json.dumps({"externalId": external_id, "pad": ""})[:-2]
    return head + "x" * (size - len(head) - 2) + '"}'


# --------------------------------------------------------------------------- oversized elements


def test_iter_snapshot_yields_oversized_record_in_place_of_long_element() -> None:
    body = f'[{{"externalId": "a"}}, {padded("big", 5000)}, {{"externalId": "b"}}]'.encode()
    assert read_all(io.BytesIO(body), max_record_bytes=LIMIT) == [
        {"externalId": "a"},
        OversizedRecord(5000, "big", LIMIT),
        {"externalId": "b"},
    ]


def test_iter_snapshot_decodes_element_of_exactly_the_limit() -> None:
    body = element(padded("edge", LIMIT))
    assert read_all(io.BytesIO(body), max_record_bytes=LIMIT) == [json.loads(body)[0]]


def test_iter_snapshot_skips_element_one_character_over_the_limit() -> None:
    body = element(padded("edge", LIMIT + 1))
    assert read_all(io.BytesIO(body), max_record_bytes=LIMIT) == [
        OversizedRecord(LIMIT + 1, "edge", LIMIT)
    ]


def test_iter_snapshot_defaults_to_a_one_mib_record_limit() -> None:
    body = element(padded("big", MiB + 1))
    assert read_all(io.BytesIO(body)) == [OversizedRecord(MiB + 1, "big", MiB)]


def test_iter_snapshot_skips_a_30_mb_record_without_holding_it() -> None:
    size = 30 * MiB
    head, tail = b'[{"externalId": "big", "blob": "', b'"}, {"externalId": "next"}]'
    result: list[Any] = []

    def read() -> None:
        result.extend(iter_snapshot(Pieces(repeated(head, b"a", size, tail))))

    assert peak_memory(read) < 8 * MiB
    assert result == [OversizedRecord(len(head) - 1 + size + 2, "big", MiB), {"externalId": "next"}]


def test_iter_snapshot_skips_a_30_mb_record_of_small_objects_without_holding_it() -> None:
    unit = b'{"a": 1, "b": "xy"}, '
    count = 30 * MiB // len(unit)
    head, tail = b'[{"items": [', b'{}], "externalId": 7}]'
    result: list[Any] = []

    def read() -> None:
        result.extend(iter_snapshot(Pieces(repeated(head, unit, count, tail))))

    assert peak_memory(read) < 32 * MiB
    assert result == [OversizedRecord(len(head) - 1 + count * len(unit) + len(tail) - 1, 7, MiB)]


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"externalId": "p1"}, "p1"),
        ({"externalId": 42}, 42),
        ({"externalId": 'a\u00e9\n"\\'}, 'a\u00e9\n"\\'),
        ({"externalId": -7, "later": 1}, -7),
        ({"first": {"externalId": "nested"}, "externalId": "outer"}, "outer"),
        ({"first": {"externalId": "nested"}}, None),
        ({"externalId": 1.5}, None),
        ({"externalId": True}, None),
        ({"externalId": None}, None),
        ({"externalId": {"id": "x"}}, None),
        ({"externalId": ["x"]}, None),
        ({"externalId": "x" * 5000}, None),
        ({"externalIds": "x"}, None),
        ({"e": "x", "externalId": "after a key like it"}, "after a key like it"),
    ],
    ids=lambda value: None if isinstance(value, dict) else repr(value)[:20],
)
def test_iter_snapshot_reads_externalid_of_oversized_object(
    record: dict[str, Any], expected: Any
) -> None:
    text = json.dumps(record | {"pad": "x" * 2000})
    assert read_all(io.BytesIO(element(text)), max_record_bytes=LIMIT) == [
        OversizedRecord(len(text), expected, LIMIT)
    ]


def test_iter_snapshot_reads_escaped_externalid_key_of_oversized_object() -> None:
    text = '{"external\\u0049d": "p1", "pad": "' + "x" * 2000 + '"}'
    assert read_all(io.BytesIO(element(text)), max_record_bytes=LIMIT) == [
        OversizedRecord(len(text), "p1", LIMIT)
    ]


def test_iter_snapshot_takes_last_externalid_of_oversized_object() -> None:
    text = '{"externalId": "first", "pad": "' + "x" * 2000 + '", "externalId": "last"}'
    assert read_all(io.BytesIO(element(text)), max_record_bytes=LIMIT) == [
        OversizedRecord(len(text), "last", LIMIT)
    ]


def test_iter_snapshot_has_no_externalid_for_oversized_non_object() -> None:
    text = json.dumps(["externalId", "p1", "x" * 2000])
    assert read_all(io.BytesIO(element(text)), max_record_bytes=LIMIT) == [
        OversizedRecord(len(text), None, LIMIT)
    ]


# Elements of every kind, some over the limit of 40 used below; what the
# reader yields for each is the same however the body is cut into chunks.
SHAPES = [
    {"externalId": "k1", "v": 1},
    {
        "n": [1, 2.5, -3e2, True, False, None],
        "externalId": 'esc\u00e9\\"\U0001f600x',
        "deep": [[[[{"a": [{}]}]]]],
    },
    {"deep": {"a": {"b": {"c": {"d": {"e": [1, {"f": '}]"{['}]}}}}}, "externalId": 99},
    ["a list", {"externalId": "not top level"}, "]}", [[], {}], "x" * 30],
    'a string longer than the limit: \u00e9\\n\\"]}' * 2,
    12345678901234567890123456789012345678901234567890,
    Decimal("-1.25e+30"),
    {"externalId": "short"},
    "short",
    7,
]


def expected_for(value: Any, text: str, limit: int) -> Any:
    if len(text) <= limit:
        return value
    external_id = value.get("externalId") if isinstance(value, dict) else None
    return OversizedRecord(len(text), external_id, limit)


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 8, 13, 64])
def test_iter_snapshot_results_do_not_depend_on_chunk_boundaries(
    monkeypatch: pytest.MonkeyPatch, chunk_size: int
) -> None:
    monkeypatch.setattr(reader, "CHUNK_SIZE", chunk_size)
    texts = [
        json.dumps(value, ensure_ascii=False) if not isinstance(value, Decimal) else str(value)
        for value in SHAPES
    ]
    body = ("[ " + " ,\n".join(texts) + " ]").encode()
    assert read_all(io.BytesIO(body), max_record_bytes=40) == [
        expected_for(json.loads(text, parse_float=Decimal), text, 40) for text in texts
    ]


# Any JSON value, numbers exact; what an element of a snapshot may be.
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["externalId", "a", "}", ",]"]), inner, max_size=4)
    ),
    max_leaves=12,
)
WHITESPACE = st.text(alphabet=" \t\n\r", max_size=3)


def as_text(value: Any) -> str:
    """``value`` as JSON text, Decimals written exactly."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return "[" + ",".join(as_text(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{as_text(v)}" for k, v in value.items()) + "}"
    return json.dumps(value, ensure_ascii=False)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    values=st.lists(JSON_VALUES, max_size=12),
    spaces=st.lists(WHITESPACE, min_size=26, max_size=26),
    chunk_size=st.sampled_from([1, 2, 7, 64, CHUNK_SIZE]),
    limit=st.sampled_from([8, 40, LIMIT]),
)
def test_iter_snapshot_yields_each_element_as_the_standard_decoder_reads_it(
    values: list[Any], spaces: list[str], chunk_size: int, limit: int
) -> None:
    texts = [as_text(value) for value in values]
    body = spaces[0] + "[" + spaces[1]
    body += "".join(
        text + (spaces[2 * i + 2] + "," + spaces[2 * i + 3] if i < len(texts) - 1 else "")
        for i, text in enumerate(texts)
    )
    body += spaces[-1] + "]" + spaces[-2]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reader, "CHUNK_SIZE", chunk_size)
        read = read_all(io.BytesIO(body.encode()), max_record_bytes=limit)
    # Which externalId an oversized element yields is the skipper's (tests above).
    assert [sized(element) for element in read] == [
        sized(expected_for(DECODER.decode(text), text, limit)) for text in texts
    ]


def sized(element: Any) -> Any:
    """``element``, or the size and limit of an OversizedRecord."""
    return (element.size, element.limit) if isinstance(element, OversizedRecord) else element


# A body of elements in which one character is replaced: valid or not, the reader agrees
# with the standard decoder on whether it is a snapshot.
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    values=st.lists(JSON_VALUES, min_size=1, max_size=8),
    where=st.floats(min_value=0, max_value=1, exclude_max=True),
    character=st.sampled_from(list('[]{},:" 0a\\')),
    chunk_size=st.sampled_from([3, 64, CHUNK_SIZE]),
)
def test_iter_snapshot_refuses_a_body_whenever_the_standard_decoder_does(
    values: list[Any], where: float, character: str, chunk_size: int
) -> None:
    text = "[" + ", ".join(as_text(value) for value in values) + "]"
    at = int(where * len(text))
    body = text[:at] + character + text[at + 1 :]
    try:
        whole = DECODER.decode(body)
    except (ValueError, RecursionError):
        whole = SnapshotError
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reader, "CHUNK_SIZE", chunk_size)
        if not isinstance(whole, list):
            with pytest.raises(SnapshotError):
                read_all(io.BytesIO(body.encode()))
        else:
            assert read_all(io.BytesIO(body.encode())) == whole


# --------------------------------------------------------------------------- syntax errors


PAD = "x" * 2000


@pytest.mark.parametrize(
    "body",
    [
        f'[{{"externalId": "a", "pad": "{PAD}", "bad": x}}]',
        f'[{{"pad": "{PAD}\\q"}}]',
        f'[{{"pad": "{PAD}\\u12x4"}}]',
        f'[{{"pad": "{PAD}\x01"}}]',
        f'[{{"pad": ["{PAD}"}}]',
        f'[{{"pad": "{PAD}"]]',
        f'[{{"pad": "{PAD}", "n": NaN}}]',
        f'[{{"pad": "{PAD}"',
        f'[{{"pad": "{PAD}',
        f'["{PAD}',
        f"[{'1' * 2000}x]",
        f'[{{"pad": "{PAD}"}}}}]',
        f"[{'[' * 5000}{']' * 5000}]",
    ],
    ids=[
        "bad_character",
        "bad_escape",
        "bad_unicode_escape",
        "control_character",
        "mismatched_bracket",
        "mismatched_brace",
        "nan",
        "ends_inside_object",
        "ends_inside_string",
        "ends_inside_top_string",
        "garbage_after_number",
        "extra_brace",
        "nested_too_deeply",
    ],
)
@pytest.mark.parametrize("chunk_size", [7, CHUNK_SIZE])
def test_iter_snapshot_refuses_oversized_element_that_is_not_json(
    monkeypatch: pytest.MonkeyPatch, body: str, chunk_size: int
) -> None:
    monkeypatch.setattr(reader, "CHUNK_SIZE", chunk_size)
    error = refusal(io.BytesIO(body.encode()), max_record_bytes=LIMIT)
    assert error.code == "invalid_json"


def test_iter_snapshot_finds_syntax_error_in_small_element_without_reading_the_rest() -> None:
    stream = Pieces(repeated(b'[{"a" 1}, ', b'{"externalId": "x"}, ', 50 * MiB // 21, b"{}]"))
    error = refusal(stream)
    assert (error.code, error.message) == (
        "invalid_json",
        "The body is not valid JSON: Expecting ':' delimiter (near character 6).",
    )
    assert stream.bytes_read <= 4 * MiB


# --------------------------------------------------------------------------- numbers at chunk ends


@pytest.mark.parametrize(
    ("head", "rest", "value"),
    [
        ("1.", "5", Decimal("1.5")),
        ("1e", "5", Decimal("1e5")),
        ("1E+", "5", Decimal("1E+5")),
        ("-2.5e", "-3", Decimal("-2.5e-3")),
        ("12", "3", 123),
        ("-", "4", -4),
    ],
)
def test_iter_snapshot_reads_number_split_at_the_chunk_boundary(
    head: str, rest: str, value: Any
) -> None:
    before = b"[" + b" " * (CHUNK_SIZE - 1 - len(head)) + head.encode()
    assert len(before) == CHUNK_SIZE
    assert read_all(io.BytesIO(before + rest.encode() + b", 0]")) == [value, 0]


NUMBERS = b"[1.5,-2e+3,4E5,0.25,-0.5E-2,12,true]"


@pytest.mark.parametrize("cut", range(1, len(NUMBERS)))
def test_iter_snapshot_reads_numbers_split_anywhere(cut: int) -> None:
    assert read_all(Pieces([NUMBERS[:cut], NUMBERS[cut:]])) == json.loads(
        NUMBERS, parse_float=Decimal
    )


@pytest.mark.parametrize("chunk_size", [1, 2, 3])
def test_iter_snapshot_reads_numbers_in_tiny_chunks(
    monkeypatch: pytest.MonkeyPatch, chunk_size: int
) -> None:
    monkeypatch.setattr(reader, "CHUNK_SIZE", chunk_size)
    assert read_all(io.BytesIO(NUMBERS)) == json.loads(NUMBERS, parse_float=Decimal)


# --------------------------------------------------------------------------- non-array bodies


def test_iter_snapshot_classifies_large_object_body_without_holding_it() -> None:
    stream = Pieces(repeated(b'{"a": [', b"{}, ", 50 * MiB // 4, b"{}]}"))
    errors: list[SnapshotError] = []
    assert peak_memory(lambda: errors.append(refusal(stream))) < 8 * MiB
    assert errors[0].code == "invalid_payload"
    assert errors[0].message == "Expected a JSON array of records, got a JSON object."


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b'"' + b"a" * (2 * MiB) + b'"', "string"),
        (b"1" * (2 * MiB), "number"),
        (b"true" + b" " * (2 * MiB), "boolean"),
        (b'{"a": 1}' + b"\n" * (2 * MiB), "object"),
        (b'{"a": "' + b"a" * (2 * MiB) + b'"}  ', "object"),
    ],
    ids=["string", "number", "boolean", "object_then_whitespace", "object"],
)
def test_iter_snapshot_names_type_of_large_non_array_body(body: bytes, kind: str) -> None:
    error = refusal(io.BytesIO(body))
    assert (error.code, error.message) == (
        "invalid_payload",
        f"Expected a JSON array of records, got a JSON {kind}.",
    )


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": [' + b"{}, " * MiB + b"x]}",
        b'{"a": 1}' + b" " * (2 * MiB) + b"x",
        b'{"a": 1' + b" " * (2 * MiB),
    ],
    ids=["error_inside", "data_after_the_value", "ends_inside"],
)
def test_iter_snapshot_refuses_large_non_array_body_that_is_not_json(body: bytes) -> None:
    error = refusal(io.BytesIO(body))
    assert error.code == "invalid_json"


def test_iter_snapshot_refuses_nul_bytes_after_reading_little() -> None:
    stream = Pieces(zeros(64 * MiB))
    error = refusal(stream)
    assert error.code == "invalid_json"
    assert stream.bytes_read <= 4 * MiB


# --------------------------------------------------------------------------- gzip


def gunzipped(body: bytes, limit: int = 64 * MiB) -> GunzipReader:
    return GunzipReader(io.BytesIO(body), limit)  # type: ignore[arg-type]


def test_gunzip_reader_reads_members_one_after_another() -> None:
    body = gzip.compress(b'[{"externalId": "a"}, ') + gzip.compress(b'{"externalId": "b"}]')
    assert read_all(gunzipped(body)) == [{"externalId": "a"}, {"externalId": "b"}]


def test_gunzip_reader_reads_an_empty_member() -> None:
    body = gzip.compress(b"[1,") + gzip.compress(b"") + gzip.compress(b"2]")
    assert read_all(gunzipped(body)) == [1, 2]


@pytest.mark.parametrize(
    "trailer",
    [b"garbage", b"\x1f", b"\0", bytes(512)],
    ids=["garbage", "half_a_magic_number", "one_zero", "zero_padding"],
)
def test_gunzip_reader_refuses_bytes_after_the_last_member_that_are_not_gzip(
    trailer: bytes,
) -> None:
    # gzip.decompress() would accept the zero padding; SPEC §2 does not.
    error = refusal(gunzipped(gzip.compress(b"[1]") + trailer))
    assert error.code == "invalid_json"


def test_gunzip_reader_accepts_exactly_the_limit_decompressed() -> None:
    body = b"[" + b" " * 998 + b"]"
    assert read_all(gunzipped(gzip.compress(body), limit=1000)) == []


def test_gunzip_reader_refuses_one_byte_over_the_limit_decompressed() -> None:
    body = b"[" + b" " * 999 + b"]"
    error = refusal(gunzipped(gzip.compress(body), limit=1000))
    assert error.code == "payload_too_large"


# --------------------------------------------------------------------------- validation


class RecordingSink:
    """Collects staged rows."""

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []

    def add(self, index: int, external_id: str, valid: bool, fields: Any) -> None:
        self.rows.append((index, external_id, valid, fields))


def test_validate_snapshot_rejects_oversized_record_and_stages_its_readable_id() -> None:
    sink = RecordingSink()
    records = [OversizedRecord(5000, 42, LIMIT), OversizedRecord(5000, 1.5, LIMIT)]
    summary = validate_snapshot(ENTITIES["payments"], records, sink, max_errors=10)
    assert (summary.received, summary.rejected) == (2, 2)
    assert sink.rows == [(0, "42", False, None)]
    assert [(e.index, e.external_id, e.messages) for e in summary.errors] == [
        (0, "42", {"_schema": [f"Record is larger than {LIMIT} bytes."]}),
        (1, None, {"_schema": [f"Record is larger than {LIMIT} bytes."]}),
    ]
