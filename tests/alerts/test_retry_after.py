"""Retry-After parsing: delay-seconds or an HTTP-date, capped, and never an exception."""

from __future__ import annotations

import datetime as dt
from email.utils import format_datetime

from hypothesis import example, given
from hypothesis import strategies as st

from alerts import RETRY_AFTER_CAP, parse_retry_after

UTC = dt.UTC
NOW = dt.datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
nows = st.datetimes(
    min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(9000, 1, 1), timezones=st.just(UTC)
)
# Header values reach the parser decoded as Latin-1, so every code point up to 0xFF matters.
header_text = st.text(st.characters(max_codepoint=0xFF)) | st.text()


@given(header_text, nows)
@example("1e12", NOW)
@example("inf", NOW)
@example("nan", NOW)
@example("-5", NOW)
@example("9" * 5000, NOW)
@example("Wed, 01 Jan 99999999999 00:00:00 GMT", NOW)
@example("Wed, 01 Jan 2025 00:01:30 +99999999999999999999", NOW)
def test_any_header_is_none_or_a_delay_within_the_cap(value, now):
    delay = parse_retry_after(value, now)
    assert delay is None or (isinstance(delay, float) and 0.0 <= delay <= RETRY_AFTER_CAP)


@given(st.integers(min_value=0, max_value=10**40), st.integers(min_value=0, max_value=3))
def test_digits_are_seconds_up_to_the_cap(seconds, zeros):
    text = "0" * zeros + str(seconds)
    assert parse_retry_after(text, NOW) == min(float(seconds), RETRY_AFTER_CAP)
    assert parse_retry_after(f" {text}\t", NOW) == min(float(seconds), RETRY_AFTER_CAP)


@given(st.floats(allow_nan=True, allow_infinity=True).map(repr))
def test_float_notation_is_not_seconds(text):
    assert parse_retry_after(text, NOW) is None


@given(st.integers(min_value=1, max_value=10**12))
def test_negative_and_signed_numbers_are_not_seconds(seconds):
    assert parse_retry_after(f"-{seconds}", NOW) is None
    assert parse_retry_after(f"+{seconds}", NOW) is None


@given(nows, st.integers(min_value=-(10**9), max_value=10**9))
def test_http_dates_count_from_now(now, offset):
    now = now.replace(microsecond=0)
    try:
        when = now + dt.timedelta(seconds=offset)
    except OverflowError:
        return
    if not 1900 <= when.year <= 9999:
        return  # format_datetime writes four-digit years only
    expected = min(RETRY_AFTER_CAP, max(0.0, float(offset)))
    assert parse_retry_after(format_datetime(when, usegmt=True), now) == expected


def test_the_three_date_formats_rfc_9110_names():
    now = dt.datetime(1994, 11, 6, 8, 48, 37, tzinfo=UTC)
    for text in ("Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
                 "Sun Nov  6 08:49:37 1994"):  # fmt: skip
        assert parse_retry_after(text, now) == 60.0, text


def test_absent_or_empty_is_none():
    assert parse_retry_after(None, NOW) is None
    assert parse_retry_after("", NOW) is None
    assert parse_retry_after("   ", NOW) is None
