"""Render check results for people (a table) and for programs (the JSON contract)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from checks import CheckResult, JsonValue, Status
from config import DEFAULT_DATABASE, count

_SAMPLES_SHOWN = 5


def render_json(
    results: Sequence[CheckResult], hints: Sequence[str], databases: Sequence[str] = ()
) -> str:
    """The JSON contract: each result with its `database` (`databases` runs parallel to
    `results`; none given: every result is the `default` database's)."""
    names = list(databases) or [DEFAULT_DATABASE] * len(results)
    payload: dict[str, JsonValue] = {
        "results": [{"database": d, **r.as_json()} for d, r in zip(names, results, strict=True)],
        "hints": list(hints),
    }
    return json.dumps(payload, indent=2)


def render_table(results: Sequence[CheckResult], databases: Sequence[str] = ()) -> str:
    """A table for people; with `databases` (parallel to `results`, given when several are
    configured) a DATABASE column first and each detail line names its database."""
    several = bool(databases)
    names = list(databases) or [""] * len(results)
    headers: tuple[str, ...] = ("CHECK", "STATUS", "SEVERITY", "VIOLATIONS", "MODE", "DURATION")
    rows: list[tuple[str, ...]] = [
        (r.check, r.status.value, r.severity.value, str(r.violations), r.mode.value,
         f"{r.duration_seconds:.3f}s")
        for r in results
    ]  # fmt: skip
    right = {3, 5}
    if several:
        headers = ("DATABASE", *headers)
        rows = [(d, *row) for d, row in zip(names, rows, strict=True)]
        right = {4, 6}
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        out = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    lines = [line(headers), *(line(row) for row in rows)]
    for d, r in zip(names, results, strict=True):
        name = f"{d}/{r.check}" if several else r.check
        if r.status is Status.ERROR:
            lines.append(f"\n{name}: error: {r.error}")
        elif r.note:
            lines.append(f"\n{name}: {r.note}")
        if r.status is Status.VIOLATION:
            lines.append(f"\n{name} ({count(r.violations, 'violation')}): {r.description}")
            for sample in r.samples[:_SAMPLES_SHOWN]:
                lines.append("  " + " ".join(f"{k}={v}" for k, v in sample.items()))
            more = r.violations - min(len(r.samples), _SAMPLES_SHOWN)
            if more > 0:
                lines.append(f"  ... and {more} more")
    return "\n".join(lines)
