"""Sample values: whatever PostgreSQL returns becomes JSON the state store can hold."""

from __future__ import annotations

import decimal
import json
import math

from hypothesis import given
from hypothesis import strategies as st

from checks.result import has_non_finite, to_json_value

numbers = st.floats() | st.decimals() | st.integers() | st.decimals(places=3)
values = st.recursive(numbers | st.none() | st.text(), lambda inner: st.lists(inner, max_size=4))


@given(values)
def test_every_value_is_strict_json(value):
    # allow_nan=False is the JSON PostgreSQL accepts: no NaN, no Infinity.
    json.dumps(to_json_value(value), allow_nan=False)


@given(st.floats(allow_nan=True, allow_infinity=True) | st.decimals(allow_nan=True))
def test_non_finite_numbers_become_their_names_and_finite_ones_stay_numbers(number):
    converted = to_json_value(number)
    if has_non_finite(number):
        assert converted in {"NaN", "Infinity", "-Infinity"}
        is_nan = number.is_nan() if isinstance(number, decimal.Decimal) else math.isnan(number)
        assert is_nan == (converted == "NaN")
    else:
        assert isinstance(converted, int | float | str)
        if isinstance(converted, str):  # a decimal beyond a float's range keeps its text
            assert decimal.Decimal(converted) == number
        else:
            assert math.isclose(converted, float(number), rel_tol=1e-15)
