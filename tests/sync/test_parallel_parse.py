"""A large upload validated in blocks on other processes: the sequential path's result, exactly."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.snapshot import SnapshotBody, SnapshotError, iter_snapshot, reader
from app.snapshot.blocks import BlockReader, decode_block
from app.sync import parallel_parse, payments
from app.sync.entities import ENTITIES
from app.sync.entity import PLAIN_ELEMENT_CHARS
from app.sync.parallel_parse import validate_upload
from app.sync.records import ValidationSummary, validate_snapshot
from app.sync.staging import StageText
from tests.support.helpers import get_all, patient_record, payment_record, sync

LIMIT = 200
# Strings that hold what a cut looks for, so that some cuts fall inside them.
TRAPS = ["a", '", {"', ",{", "},{", "\\", "é", "\u2028"]


def read_in_blocks(body: bytes, limit: int, block_chars: int) -> list[Any]:
    """The elements of ``body`` as blocks give them, the reader taking over where one fails."""
    blocks = BlockReader(io.BytesIO(body), limit, block_chars)
    values: list[Any] = []
    if blocks.open():
        while (block := blocks.next_block()) is not None:
            decoded = decode_block(block, limit)
            if decoded is None:
                return values + list(blocks.rest([block]))
            values.extend(decoded)
    return values + list(blocks.rest())


def outcome(read: Any) -> Any:
    """What ``read()`` returns, or the message of the SnapshotError it raises."""
    try:
        return read()
    except SnapshotError as error:
        return ("refused", error.message)


def test_decode_block_reads_whole_elements_each_followed_by_a_comma() -> None:
    assert decode_block('{"a": 1} , {"b": [2, "}"]},\n', LIMIT) == [{"a": 1}, {"b": [2, "}"]}]


@pytest.mark.parametrize(
    "text",
    ['{"a": 1}', '{"a": 1},{"b"', 'b", {"a": 1},', '{"a": x},', '{"a": NaN},', '{"a": 1}]'],
    ids=["no_comma", "cut_short", "starts_inside_a_string", "bad_value", "nan", "array_end"],
)
def test_decode_block_refuses_text_that_is_not_whole_elements(text: str) -> None:
    assert decode_block(text, LIMIT) is None


def test_decode_block_leaves_an_element_over_the_limit_to_the_reader() -> None:
    element = json.dumps({"pad": "x" * LIMIT})
    assert decode_block(element + ",", LIMIT) is None
    assert decode_block(element + ",", len(element)) == [{"pad": "x" * LIMIT}]


ELEMENTS = st.lists(
    st.dictionaries(
        st.sampled_from(["externalId", "a", "b"]),
        st.sampled_from(TRAPS) | st.integers() | st.lists(st.sampled_from(TRAPS), max_size=3),
        max_size=3,
    )
    | st.sampled_from([1, "x", None, [{"a": 1}]]),
    max_size=30,
)
SEPARATORS = st.sampled_from([",", ", ", ",\n", " ,\r\n\t"])


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    elements=ELEMENTS,
    separator=SEPARATORS,
    block_chars=st.sampled_from([1, 5, 16, 64]),
    chunk_size=st.sampled_from([3, 64, reader.CHUNK_SIZE]),
    limit=st.sampled_from([20, LIMIT]),
)
def test_blocks_yield_what_the_reader_yields(
    elements: list[Any], separator: str, block_chars: int, chunk_size: int, limit: int
) -> None:
    body = " [ " + separator.join(json.dumps(e, ensure_ascii=False) for e in elements) + "]\n"
    data = body.encode()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reader, "CHUNK_SIZE", chunk_size)
        expected = outcome(lambda: list(iter_snapshot(io.BytesIO(data), max_record_bytes=limit)))
        assert outcome(lambda: read_in_blocks(data, limit, block_chars)) == expected


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    elements=ELEMENTS,
    where=st.floats(min_value=0, max_value=1, exclude_max=True),
    character=st.sampled_from(list('[]{},:" 0a\\')),
    block_chars=st.sampled_from([1, 8, 32]),
)
def test_blocks_refuse_a_body_exactly_as_the_reader_does(
    elements: list[Any], where: float, character: str, block_chars: int
) -> None:
    text = "[" + ", ".join(json.dumps(e, ensure_ascii=False) for e in elements) + "]"
    at = int(where * len(text))
    data = (text[:at] + character + text[at + 1 :]).encode()
    expected = outcome(lambda: list(iter_snapshot(io.BytesIO(data), max_record_bytes=LIMIT)))
    assert outcome(lambda: read_in_blocks(data, LIMIT, block_chars)) == expected


# --------------------------------------------------------------------------- validate_upload


class TextCollector:
    """A stage sink that keeps the COPY text it is given, and how it was given."""

    def __init__(self) -> None:
        self._body = StageText(ENTITIES["payments"]).body
        self.parts: list[str] = []
        self.blocks = 0

    def add(self, index: int, external_id: str, valid: bool, fields: Any) -> None:
        self.parts.append(f"{index}\t{self._body(external_id, fields)}")

    def add_text(self, text: str, rows: int) -> None:
        assert text.count("\n") == rows
        self.parts.append(text)
        self.blocks += 1


def validated(body: bytes, processes: int, block_chars: int) -> tuple[Any, str, int]:
    """(summary, staged COPY text, blocks staged from other processes) of ``body``."""
    sink = TextCollector()
    summary = validate_upload(
        ENTITIES["payments"],
        SnapshotBody(io.BytesIO(body), max_record_bytes=LIMIT),
        sink,
        max_errors=5,
        processes=processes,
        block_chars=block_chars,
    )
    return as_tuple(summary), "".join(sink.parts), sink.blocks


def as_tuple(summary: ValidationSummary) -> tuple[int, int, list[Any]]:
    return summary.received, summary.rejected, summary.errors


def payments_body(count: int, odd: dict[int, Any] | None = None) -> bytes:
    """``count`` payments, one per line; the ones in ``odd`` replaced by the given value."""
    records = [
        (odd or {}).get(n, payment_record(f"m{n}", f"p{n % 7}", f"{n}.{n % 100:02d}"))
        for n in range(count)
    ]
    return ("[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n").encode()


ODD_RECORDS = {
    3: payment_record("m3", amount="ten"),  # invalid, its externalId staged
    10: {"patientId": "p1", "amount": 1},  # invalid, nothing staged: a gap in the indexes
    11: 5,
    40: payment_record("m40", "p1", 1, pad="x" * 1100),  # over the limit: the reader's
    41: payment_record('m41", {"', "p1", 2),  # a cut inside a string
    70: payment_record("m70", "p\t1", "1.005"),
}


@pytest.mark.parametrize("block_chars", [64, 300, 2000])
def test_validate_upload_in_blocks_stages_what_the_sequential_path_stages(
    block_chars: int,
) -> None:
    body = payments_body(400, ODD_RECORDS)
    summary, text, blocks = validated(body, processes=2, block_chars=block_chars)
    assert blocks > 0
    assert (summary, text) == validated(body, processes=0, block_chars=block_chars)[:2]
    assert summary[:2] == (400, 5)


def test_validate_upload_reports_a_syntax_error_as_the_reader_does() -> None:
    body = payments_body(300).replace(b'"m200"', b'"m200" x')
    with pytest.raises(SnapshotError) as in_blocks:
        validated(body, processes=2, block_chars=200)
    with pytest.raises(SnapshotError) as sequential:
        validated(body, processes=0, block_chars=200)
    assert in_blocks.value.message == sequential.value.message
    assert "near character" in in_blocks.value.message


def test_validate_upload_validates_a_small_upload_in_its_own_process() -> None:
    body = payments_body(50)
    assert validated(body, processes=2, block_chars=1 << 20)[2] == 0


def test_validate_upload_goes_on_in_its_own_process_when_the_parse_processes_die() -> None:
    body = payments_body(300, ODD_RECORDS)
    expected = validated(body, processes=0, block_chars=200)[:2]
    assert validated(body, processes=2, block_chars=200)[2] > 0
    for process in list(parallel_parse._pool(2)._processes.values()):  # type: ignore[union-attr]
        process.kill()
        process.join()
    assert validated(body, processes=2, block_chars=200)[:2] == expected
    # The next upload starts a new pool.
    again = validated(body, processes=2, block_chars=200)
    assert again[:2] == expected and again[2] > 0


# --------------------------------------------------------------------------- through a sync


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"SYNC_MAX_RECORD_BYTES": 1024}


@pytest.mark.postgresql_only
def test_a_sync_in_blocks_reports_and_stores_what_a_sync_in_one_process_does(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parallel_parse, "BLOCK_CHARS", 300)
    staged_blocks = []
    stage = parallel_parse._stage

    def counted(validated: Any, *args: Any) -> int:
        staged_blocks.append(validated.elements)
        return stage(validated, *args)

    monkeypatch.setattr(parallel_parse, "_stage", counted)
    sync(client, "patients", [patient_record(f"p{n}") for n in range(7)])
    body = payments_body(500, ODD_RECORDS)

    def dry_run(processes: int) -> dict[str, Any]:
        app.config["SYNC_PARSE_PROCESSES"] = processes
        report = sync(client, "payments", body, query="?dry_run=true")
        return {
            k: v
            for k, v in report.items()
            if k not in ("syncId", "startedAt", "finishedAt", "dataPosition")
        }

    in_blocks = dry_run(2)
    assert staged_blocks
    assert in_blocks == dry_run(0)
    applied = sync(client, "payments", body)
    assert (applied["created"], applied["rejected"]) == (495, 5)
    stored = {p["externalId"]: Decimal(str(p["amount"])) for p in get_all(client, "/payments")}
    assert len(stored) == 495
    assert stored["m499"] == Decimal("499.99")
    assert stored['m41", {"'] == 2


# --------------------------------------------------------------------------- plain payments


def decoded_block(text: str) -> tuple[int, str, Any, int] | None:
    """(elements, stage lines, indexes, rejected) of a block as decoding and validation read it."""
    elements = decode_block(text, 1 << 20)
    if elements is None:
        return None
    sink = parallel_parse._Bodies(ENTITIES["payments"])
    summary = validate_snapshot(ENTITIES["payments"], elements, sink, max_errors=10)
    return len(elements), "".join(sink.bodies), sink.indexes, summary.rejected


# Ids as JSON text: plain ones, and ones that only look plain or are not valid at all.
PLAIN_IDS = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=126, exclude_characters='"\\'),
    min_size=1,
    max_size=4,
).map(json.dumps)
ODD_IDS = st.sampled_from(
    [
        *('"\\u0041"', '"a\\"b"', '"\\u00e9"', '"é"', '"a\\/b"', '"a\\\\b"', '"tab\\t"', '"\x7f"'),
        *(json.dumps("x" * 255), json.dumps("x" * 256), '""', "7", "-0", "true", "null"),
    ]
)
# Mostly plain, so that most blocks are plain but for one value.
IDS = st.one_of(PLAIN_IDS, PLAIN_IDS, PLAIN_IDS, ODD_IDS)
AMOUNTS = st.one_of(
    st.decimals(min_value=-(10**10), max_value=10**10, places=2).map(str),
    st.decimals(min_value=-(10**10), max_value=10**10, places=2).map(str),
    st.sampled_from(
        [
            *("43.72", "-0.00", "0.00", "0.5", "1", "1.000", "1e2", "1.00e0", "12.3456"),
            *("9999999999.99", "10000000000.00", "-9999999999.99", "00.12", '"12.00"', "null"),
            "-.50",
        ]
    ),
)
KEYS = st.permutations(["externalId", "patientId", "amount"])
SPACE = st.sampled_from(["", " ", "\n  ", "\r\n\t", " " * 16, " " * 17])


@st.composite
def payment_texts(draw: st.DrawFn, keys: list[str]) -> str:
    """A payment-like element as JSON text: plain or nearly so, valid or not."""
    values = {"externalId": draw(IDS), "patientId": draw(IDS)}
    values["amount"] = draw(AMOUNTS)
    names = keys if draw(st.integers(0, 9)) else draw(st.permutations(keys))
    # One spacing for the element, mostly: each run of more than 16 characters makes it odd.
    pad = draw(SPACE)
    space = st.just(pad) if draw(st.integers(0, 9)) else SPACE
    pairs = [f'"{k}"{draw(space)}:{draw(space)}{values[k]}' for k in names]
    if draw(st.integers(0, 9)) == 0:
        pairs.append('"note": 1')
    return "{" + draw(space) + f"{draw(space)},{draw(space)}".join(pairs) + draw(space) + "}"


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), keys=KEYS)
def test_a_plain_block_reads_as_decoding_and_validation_read_it(data: Any, keys: list[str]) -> None:
    elements = data.draw(st.lists(payment_texts(keys), min_size=1, max_size=4))
    text = "".join(element + data.draw(SPACE) + "," + data.draw(SPACE) for element in elements)
    plain = payments.plain_block(text)
    if plain is not None:
        assert decoded_block(text) == (*plain, None, 0)


@pytest.mark.parametrize(
    "text",
    [
        '{"externalId":"M000000001","patientId":"P00031752","amount":21.29},\n',
        '{\n  "amount": 4.46,\n  "patientId": "5",\n  "externalId": "501"\n}, ',
    ],
    ids=["bench", "samples"],
)
def test_the_uploads_of_the_bench_and_the_samples_are_read_plainly(text: str) -> None:
    assert payments.plain_block(text * 3) == decoded_block(text * 3)[:2]  # type: ignore[index]


def test_the_longest_plain_payment_is_within_the_smallest_record_limit() -> None:
    space = " " * 16
    pairs = [
        f'"{k}"{space}:{space}{v}'
        for k, v in (
            ("externalId", json.dumps("x" * 255)),
            ("patientId", json.dumps("y" * 255)),
            ("amount", "-9999999999.99"),
        )
    ]
    element = "{" + space + f"{space},{space}".join(pairs) + space + "}"
    assert payments.plain_block(element + ",") is not None
    assert payments.plain_block(element + " ,") is not None
    assert len(element) <= PLAIN_ELEMENT_CHARS
