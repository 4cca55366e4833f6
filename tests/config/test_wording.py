"""Counts in words: the noun agrees with the number."""

from __future__ import annotations

import pytest

from config import count, noun


@pytest.mark.parametrize(
    ("n", "singular", "plural", "expected"),
    [
        (0, "violation", None, "0 violations"),
        (1, "violation", None, "1 violation"),
        (2, "violation", None, "2 violations"),
        (1, "alert route", None, "1 alert route"),
        (3, "alert route", None, "3 alert routes"),
        (2, "query", "queries", "2 queries"),
        (1, "query", "queries", "1 query"),
        (2, "match", None, "2 matches"),
        (2, "day", None, "2 days"),
        (2, "replica", None, "2 replicas"),
        (1204331, "row", None, "1,204,331 rows"),
    ],
)
def test_count(n, singular, plural, expected):
    assert count(n, singular, plural) == expected


def test_noun_alone():
    assert noun(1, "database") == "database"
    assert noun(4, "database") == "databases"
    assert noun(2, "entry", "entries") == "entries"
