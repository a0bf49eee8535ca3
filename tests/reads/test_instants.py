"""app.instants.parse_instant: the one strict reader of RFC 3339 instants (SPEC §5)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.instants import InvalidInstant, parse_instant


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-06T23:00:00Z", datetime(2026, 12, 6, 23, tzinfo=UTC)),
        ("2026-12-06T23:00:00+00:00", datetime(2026, 12, 6, 23, tzinfo=UTC)),
        ("2026-12-06T23:00:00-00:00", datetime(2026, 12, 6, 23, tzinfo=UTC)),
        ("2026-12-06t23:00:00z", datetime(2026, 12, 6, 23, tzinfo=UTC)),
        ("2026-12-07T00:30:00+01:30", datetime(2026, 12, 6, 23, tzinfo=UTC)),
        ("2026-12-06T18:00:00-05:00", datetime(2026, 12, 6, 23, tzinfo=UTC)),
        ("2026-12-06T23:00:00.5Z", datetime(2026, 12, 6, 23, 0, 0, 500000, tzinfo=UTC)),
        ("2026-12-06T23:00:00.123456Z", datetime(2026, 12, 6, 23, 0, 0, 123456, tzinfo=UTC)),
        ("2024-02-29T00:00:00Z", datetime(2024, 2, 29, tzinfo=UTC)),
        ("9999-12-31T23:59:59.999999Z", datetime.max.replace(tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", datetime.min.replace(tzinfo=UTC)),
    ],
    ids=[
        "z",
        "plus_zero",
        "minus_zero",
        "lowercase_t_and_z",
        "positive_offset",
        "negative_offset",
        "one_digit_fraction",
        "six_digit_fraction",
        "leap_day",
        "last_microsecond",
        "first_instant",
    ],
)
def test_parse_instant_reads_an_rfc_3339_instant_as_utc(text: str, expected: datetime) -> None:
    parsed = parse_instant(text)
    assert parsed == expected
    assert parsed.utcoffset() is not None and not parsed.utcoffset()


def test_parse_instant_cuts_a_fraction_finer_than_a_microsecond() -> None:
    assert parse_instant("2026-12-06T23:00:00.1234569Z").microsecond == 123456


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-06T23.5Z",  # a fraction of the hour
        "2026-12-06T23:30.5Z",  # a fraction of the minute
        "2026-12-06T23:00Z",  # no seconds
        "2026-12-06T23:00:00",  # no offset
        "2026-12-06",  # a date alone
        "2026-12-06 23:00:00Z",  # a space for the T
        "2026-12-06T23:00:00Z\x00",  # a trailing NUL
        "2026-12-06T23:00:00Z ",  # a trailing space
        " 2026-12-06T23:00:00Z",  # a leading space
        "2026-12-06T23:00:00Zjunk",  # trailing characters
        "2026-12-06T23:00:00.Z",  # a point without a fraction
        "2026-12-06T23:00:00+0100",  # an offset without its colon
        "2026-12-06T23:00:00+01",  # an offset without minutes
        "2026-12-06T\uff12\uff13:00:00Z",  # fullwidth digits
        "2026-12-06T2\u0663:00:00Z",  # an Arabic-Indic digit
        "2026-12-06T24:00:00Z",  # the end of the day as 24:00
        "2026-02-30T00:00:00Z",  # no such day
        "2026-13-01T00:00:00Z",  # no such month
        "2026-12-06T23:60:00Z",  # no such minute
        "2026-12-06T23:00:60Z",  # a leap second
        "2026-12-06T23:00:00+24:00",  # an offset of a whole day
        "2026-12-06T23:00:00+01:60",  # an offset of sixty minutes
        "9999-12-31T23:59:59.999999-14:00",  # past year 9999 in UTC
        "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
        "+2026-12-06T23:00:00Z",  # a signed year
        "",
    ],
    ids=lambda text: repr(text),
)
def test_parse_instant_refuses_what_is_not_a_strict_instant(text: str) -> None:
    with pytest.raises(InvalidInstant):
        parse_instant(text)


def test_parse_instant_refuses_what_is_not_text() -> None:
    with pytest.raises(InvalidInstant):
        parse_instant(20261206)  # type: ignore[arg-type]


def test_invalid_instant_is_a_value_error_with_a_message() -> None:
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_instant("2026-12-06T23:00:00")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-06", datetime(2026, 12, 6, tzinfo=UTC)),
        ("2026-12-06+01:00", datetime(2026, 12, 5, 23, tzinfo=UTC)),
        ("2026-12-06Z", datetime(2026, 12, 6, tzinfo=UTC)),
        ("2026-12-06T23:00:00Z", datetime(2026, 12, 6, 23, tzinfo=UTC)),
    ],
    ids=["date", "date_with_offset", "date_with_z", "instant"],
)
def test_parse_instant_with_allow_date_reads_a_date_as_its_midnight(
    text: str, expected: datetime
) -> None:
    assert parse_instant(text, allow_date=True) == expected


@pytest.mark.parametrize(
    "text", ["2026-02-30", "2026-12-6", "2026-12-06T23:00", "2026-12-06\x00", "0001-01-01+01:00"]
)
def test_parse_instant_with_allow_date_refuses_a_bad_date(text: str) -> None:
    with pytest.raises(InvalidInstant):
        parse_instant(text, allow_date=True)
