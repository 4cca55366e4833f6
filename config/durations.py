"""Human durations for settings: "30s", "2m", "1h30m", "7d", "0s" or a number of seconds."""

from __future__ import annotations

import decimal
import math
import re
from datetime import timedelta
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, PlainSerializer

# Microseconds per unit: exact integers, so "1h30m500ms" adds up without float error.
_UNITS = {"ms": 1000, "s": 10**6, "m": 60 * 10**6, "h": 3600 * 10**6, "d": 86400 * 10**6,
          "w": 604800 * 10**6}  # fmt: skip
_NUMBER = r"[0-9]+(?:\.[0-9]+)?"  # ASCII digits only: "٣s" is not three seconds
_PART = re.compile(rf"({_NUMBER})(ms|s|m|h|d|w)")
_WHOLE = re.compile(rf"(?:{_NUMBER}(?:ms|s|m|h|d|w))+")
#: The longest duration any setting takes: about a century. Longer is a typo, and datetime
#: arithmetic with it (now minus a settle time) would leave the years 1-9999.
MAX_DURATION = timedelta(days=36500)
_MAX_MICROSECONDS = MAX_DURATION // timedelta(microseconds=1)
_FORMS = "use a number with a unit, e.g. 30s, 2m, 36h, 7d"
# Enough digits to be exact to the microsecond up to MAX_DURATION; an absurdly long number
# overflows to Infinity (not trapped) and then fails the bound like any other long one.
_ARITHMETIC = decimal.Context(prec=60, traps=[decimal.InvalidOperation])


def parse_duration(value: object) -> timedelta:
    """Parse a duration of 0s to MAX_DURATION, to the microsecond.

    Raises ValueError (never OverflowError) with the accepted forms when it cannot.
    """
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError("a duration cannot be negative")
        micros = Decimal(value // timedelta(microseconds=1))
    elif isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 2m, 36h or 7d")
    elif isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"invalid duration {value!r}: {_FORMS}")
        if value < 0:
            raise ValueError("a duration cannot be negative")
        micros = Decimal(str(value)) * _UNITS["s"]
    elif isinstance(value, str):
        with decimal.localcontext(_ARITHMETIC):
            micros = _parse_text(value)
    else:
        raise ValueError("expected a duration such as 30s, 2m, 36h or 7d")
    if micros > _MAX_MICROSECONDS:
        limit = format_duration(MAX_DURATION)
        raise ValueError(f"a duration must be at most {limit} (100 years)")
    return timedelta(microseconds=int(micros.to_integral_value()))


def _parse_text(value: str) -> Decimal:
    text = value.strip().lower().replace(" ", "")
    if re.fullmatch(_NUMBER, text):
        return Decimal(text) * _UNITS["s"]
    if _WHOLE.fullmatch(text):
        return sum((Decimal(n) * _UNITS[u] for n, u in _PART.findall(text)), Decimal(0))
    raise ValueError(f"invalid duration {value!r}: {_FORMS}")


def format_duration(value: timedelta) -> str:
    """Format a duration in the largest units that represent it exactly, e.g. 1h30m or 1.5ms.

    parse_duration(format_duration(d)) == d for every duration parse_duration returns.
    """
    if value < timedelta(0):
        return "-" + format_duration(-value)
    total = value // timedelta(microseconds=1)
    if total == 0:
        return "0s"
    parts = []
    for unit in ("d", "h", "m", "s"):
        count, total = divmod(total, _UNITS[unit])
        if count:
            parts.append(f"{count}{unit}")
    if total:
        millis, micros = divmod(total, 1000)
        fraction = f".{micros:03d}".rstrip("0") if micros else ""
        parts.append(f"{millis}{fraction}ms")
    return "".join(parts)


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]


def _longer_than_zero(value: timedelta) -> timedelta:
    if value.total_seconds() <= 0:
        raise ValueError("must be longer than 0s")
    return value


#: A Duration that must be longer than 0s (a check's threshold).
PositiveDuration = Annotated[Duration, AfterValidator(_longer_than_zero)]
