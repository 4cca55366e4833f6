"""Render check results for people (a table) and for programs (the JSON contract)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from checks import CheckResult, JsonValue, Status

_SAMPLES_SHOWN = 5


def render_json(results: Sequence[CheckResult], hints: Sequence[str]) -> str:
    payload: dict[str, JsonValue] = {
        "results": [r.as_json() for r in results],
        "hints": list(hints),
    }
    return json.dumps(payload, indent=2)


def render_table(results: Sequence[CheckResult]) -> str:
    headers = ("CHECK", "STATUS", "SEVERITY", "VIOLATIONS", "MODE", "DURATION")
    rows = [
        (r.check, r.status.value, r.severity.value, str(r.violations), r.mode.value,
         f"{r.duration_seconds:.3f}s")
        for r in results
    ]  # fmt: skip
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    right = {3, 5}

    def line(cells: Sequence[str]) -> str:
        out = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    lines = [line(headers), *(line(row) for row in rows)]
    for r in results:
        if r.status is Status.ERROR:
            lines.append(f"\n{r.check}: error: {r.error}")
        elif r.note:
            lines.append(f"\n{r.check}: {r.note}")
        if r.status is Status.VIOLATION:
            lines.append(f"\n{r.check} ({r.violations} violations): {r.description}")
            for sample in r.samples[:_SAMPLES_SHOWN]:
                lines.append("  " + " ".join(f"{k}={v}" for k, v in sample.items()))
            more = r.violations - min(len(r.samples), _SAMPLES_SHOWN)
            if more > 0:
                lines.append(f"  ... and {more} more")
    return "\n".join(lines)
