"""The status page's small pieces: times in words, badges, and its one inline stylesheet."""

from __future__ import annotations

import datetime as dt
from html import escape


def when(value: dt.datetime | None) -> str:
    """A UTC time to the second, or "never"."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "never"


def span(seconds: float) -> str:
    """A duration at a glance, two units at most: "5 d 3 h", "3 h 20 min", "12 min", "40 s"."""
    whole = max(0, int(seconds))
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min" if minutes else f"{secs} s"


def ago(then: dt.datetime, now: dt.datetime) -> str:
    """How long before `now` (the injected clock) `then` was: "just now", "3 min ago"."""
    seconds = (now - then).total_seconds()
    if seconds < -60:
        # Written by a host whose clock runs ahead of ours: say so rather than go negative.
        return f"{span(-seconds)} ahead of this replica's clock"
    return "just now" if seconds < 60 else f"{span(seconds)} ago"


def badge(kind: str, text: str) -> str:
    """A coloured label that also says what it means in words (never colour alone)."""
    return f"<span class='b b-{escape(kind)}'>{escape(text)}</span>"


def breakable(name: str) -> str:
    """`name` escaped, a line break allowed after each underscore (long check names wrap
    between their words rather than anywhere)."""
    return escape(name).replace("_", "_<wbr>")


def one_line(text: str, limit: int = 400) -> str:
    """The first line of `text`, whitespace collapsed, cut at `limit` characters."""
    first = " ".join((text.strip().splitlines() or [""])[0].split())
    return first if len(first) <= limit else first[: limit - 1] + "…"


STYLE = """
:root{color-scheme:light dark;--fg:#1b1f24;--bg:#fff;--muted:#57606a;--line:#d0d7de;
--ok:#116329;--okbg:#dafbe1;--warn:#7d4e00;--warnbg:#fff1c2;--bad:#a40e26;--badbg:#ffe1e3;
--info:#0a3069;--infobg:#ddf4ff;--hl:#fff8c5;--frame:#f6f8fa}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--muted:#9198a1;
--line:#30363d;--ok:#7ee2a8;--okbg:#0f3d23;--warn:#f2cc60;--warnbg:#4b3300;--bad:#ffa198;
--badbg:#5a1218;--info:#a5d6ff;--infobg:#0c2d6b;--hl:#3b3000;
--frame:#161b22}}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;
padding:1rem 1.5rem;max-width:84rem;color:var(--fg);background:var(--bg);line-height:1.4}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.2rem;margin:1.6rem 0 .4rem}
h3{font-size:1rem;margin:1rem 0 .3rem}
p,li,h1,h2,h3,code,.reason,.name{overflow-wrap:anywhere}
.muted{color:var(--muted)}.notice{padding:.5rem .8rem;border-left:4px solid var(--info);
background:var(--infobg)}.alarm{border-left-color:var(--bad);background:var(--badbg)}
table{border-collapse:collapse;width:100%}
th,td{padding:.4rem .6rem;text-align:left;vertical-align:top;border-bottom:1px solid var(--line)}
th{font-size:.85rem;color:var(--muted)}
tr.hl td{background:var(--hl)}
.b{display:inline-block;padding:0 .45rem;border-radius:.6rem;font-size:.8rem;font-weight:600;
border:1px solid currentColor;white-space:nowrap}
.b-ok{color:var(--ok);background:var(--okbg)}.b-warning,.b-violation{color:var(--warn);
background:var(--warnbg)}.b-critical,.b-error,.b-dead{color:var(--bad);background:var(--badbg)}
.b-none,.b-unknown{color:var(--muted)}
.reason{display:block;max-width:24rem;font-size:.85rem;color:var(--bad);margin-top:.2rem}
.nw{white-space:nowrap}
.trend{display:block}.trend .tl{stroke:var(--warn);stroke-width:1.5}.trend .te{fill:var(--bad)}
.trend circle.tl{fill:var(--warn)}.trend .tb{stroke:var(--line)}.trend .tf{fill:var(--frame)}
.bar{display:block;width:12rem;max-width:100%;height:.8rem;border:1px solid var(--line);
border-radius:.4rem;overflow:hidden;margin:.25rem 0}
.bar span{display:block;height:100%;background:var(--ok)}
.bar.unknown{background:repeating-linear-gradient(45deg,var(--line) 0 4px,transparent 4px 8px)}
@media (min-width:721px){.reason{min-width:16rem}.checks td:first-child{min-width:12rem}}
@media (max-width:720px){body{padding:.6rem}
table,tbody,tr,td{display:block;width:100%}thead{display:none}
tr{border:1px solid var(--line);border-radius:.5rem;margin:.6rem 0;padding:.3rem .5rem}
td{border:0;padding:.2rem 0;overflow-wrap:anywhere}.nw{white-space:normal}
td[data-l]::before{content:attr(data-l) ": ";color:var(--muted);font-size:.85rem}}
"""
