"""A check's violations over the last 24 h as a small inline SVG, drawn on the server."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from config import count
from monitor.store import TREND_BUCKETS, TrendBucket

WIDTH, HEIGHT = 144, 28  # 3 px per half-hour bucket
_PAD = 3


def trend_label(buckets: Sequence[TrendBucket]) -> str:
    """What the sparkline shows, in words: its <title> and aria-label."""
    ran = [b for b in buckets if b.violations is not None]
    if not buckets:
        return "violations over the last 24 h: no runs"
    errors = sum(b.errors for b in buckets)
    parts = []
    if ran:
        newest = min(ran, key=lambda b: b.index)
        parts.append(f"max {max(b.violations or 0 for b in ran):,}, latest {newest.violations:,}")
    else:
        parts.append("no successful run")
    if errors:
        parts.append(count(errors, "error"))
    return "violations over the last 24 h: " + ", ".join(parts)


def sparkline(buckets: Sequence[TrendBucket]) -> str:
    """An <svg> of the buckets, oldest on the left: a line through each bucket's most
    violations, broken where a bucket holds no successful run, and a red tick under each
    bucket with an error. A flat line at the bottom is clean."""
    label = escape(trend_label(buckets), quote=True)
    peak = max((b.violations or 0 for b in buckets), default=0)
    step = WIDTH / TREND_BUCKETS
    usable = HEIGHT - 2 * _PAD - 3  # the ticks below the line take 3 px

    def x(index: int) -> float:
        return round(WIDTH - (index + 0.5) * step, 1)

    def y(value: int) -> float:
        return round(HEIGHT - _PAD - 3 - (value / peak * usable if peak else 0), 1)

    shapes, segment = [], []
    by_index = {b.index: b for b in buckets}
    for index in range(TREND_BUCKETS - 1, -2, -1):  # -1 ends the last segment
        bucket = by_index.get(index)
        if bucket is not None and bucket.violations is not None:
            segment.append(f"{x(index)},{y(bucket.violations)}")
            continue
        if len(segment) == 1:
            cx, cy = segment[0].split(",")
            shapes.append(f'<circle cx="{cx}" cy="{cy}" r="1.5" class="tl"/>')
        elif segment:
            shapes.append(f'<polyline points="{" ".join(segment)}" class="tl" fill="none"/>')
        segment = []
    for bucket in buckets:
        if bucket.errors:
            left = round(x(bucket.index) - step / 2, 1)
            shapes.append(
                f'<rect x="{left}" y="{HEIGHT - 3}" width="{round(step, 1)}" height="3"'
                ' class="te"/>'
            )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="trend" role="img" width="{WIDTH}"'
        f' height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" aria-label="{label}">'
        f'<title>{label}</title><rect width="{WIDTH}" height="{HEIGHT}" class="tf"'
        ' fill="none"/>'
        f'<line x1="0" y1="{HEIGHT - _PAD - 3}" x2="{WIDTH}" y2="{HEIGHT - _PAD - 3}"'
        f' class="tb"/>{"".join(shapes)}</svg>'
    )
