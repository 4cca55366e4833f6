"""Counts in words a person reads: "1 violation", "2 violations", "0 alert routes"."""

from __future__ import annotations


def count(n: int, singular: str, plural: str | None = None) -> str:
    """`n` and the noun agreeing with it; `plural` for the irregular ("query", "queries").

    English: only exactly one takes the singular ("0 violations", "1 violation", "-1
    violations" never happens but reads as plural). Thousands are grouped so a count of rows
    reads at a glance ("1,204,331 rows").
    """
    noun = singular if n == 1 else (plural if plural is not None else _plural(singular))
    return f"{n:,} {noun}"


def noun(n: int, singular: str, plural: str | None = None) -> str:
    """Only the noun agreeing with `n`: for sentences that spell the number elsewhere."""
    return singular if n == 1 else (plural if plural is not None else _plural(singular))


def _plural(word: str) -> str:
    # The regular English rules for the nouns dq-monitor counts; irregular ones pass `plural`.
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in ("a", "e", "i", "o", "u"):
        return word[:-1] + "ies"
    return word + "s"
