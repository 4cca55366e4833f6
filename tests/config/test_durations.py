"""Durations: any input is a duration of 0s to 100 years or a ValueError; formats round-trip."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from config import format_duration, parse_duration
from config.durations import MAX_DURATION

UNITS = {"ms": timedelta(milliseconds=1), "s": timedelta(seconds=1), "m": timedelta(minutes=1),
         "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}  # fmt: skip
durations = st.timedeltas(min_value=timedelta(0), max_value=MAX_DURATION)
# Text that looks like durations (digits, dots, units), so the parser's edges get hit.
duration_like = st.text(st.sampled_from("0123456789.mshdw -+e"), max_size=40)


def accepted(value: object) -> timedelta | None:
    """The parsed duration, or None for a ValueError; any other exception fails the test."""
    try:
        parsed = parse_duration(value)
    except ValueError:
        return None
    assert timedelta(0) <= parsed <= MAX_DURATION
    return parsed


@given(st.text() | duration_like)
@example("36500000d")
@example("36500d")
@example("9" * 5000)
@example("1" + "0" * 100_000 + "w")
@example("٣s")
def test_any_text_is_a_bounded_duration_or_a_value_error(text):
    accepted(text)


@given(st.floats() | st.integers() | st.booleans() | st.none() | st.timedeltas())
@example(float("inf"))
@example(float("nan"))
@example(10**400)
@example(timedelta.max)
def test_any_other_value_is_a_bounded_duration_or_a_value_error(value):
    accepted(value)


@given(durations)
def test_format_then_parse_is_the_identity(duration):
    assert parse_duration(format_duration(duration)) == duration


@given(st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(sorted(UNITS))), min_size=1))
def test_unit_parts_add_up_exactly(parts):
    text = "".join(f"{count}{unit}" for count, unit in parts)
    try:
        expected = sum((count * UNITS[unit] for count, unit in parts), timedelta(0))
    except OverflowError:
        expected = timedelta.max
    assert accepted(text) == (expected if expected <= MAX_DURATION else None)


@given(st.integers(0, int(MAX_DURATION.total_seconds())), st.integers(0, 999_999))
def test_plain_seconds_with_a_fraction(seconds, micros):
    text = f"{seconds}.{micros:06d}"
    expected = timedelta(seconds=seconds, microseconds=micros)
    assert accepted(text) == (expected if expected <= MAX_DURATION else None)


@pytest.mark.parametrize(
    ("duration", "text"),
    [(timedelta(0), "0s"), (timedelta(hours=1, minutes=30), "1h30m"),
     (timedelta(milliseconds=1500), "1s500ms"), (timedelta(microseconds=1500), "1.5ms"),
     (timedelta(microseconds=1), "0.001ms"), (MAX_DURATION, "36500d")],
)  # fmt: skip
def test_format_is_exact(duration, text):
    assert format_duration(duration) == text


@pytest.mark.parametrize("text", ["36500000d", "36501d", "5215w", "3153600001s"])
def test_more_than_a_century_is_refused(text):
    with pytest.raises(ValueError, match=r"at most 36500d \(100 years\)"):
        parse_duration(text)
