"""The README's path, run word for word: each shown output is what the command prints."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest
from pytest_httpserver import HTTPServer

from tests.factories import healthy_run, seed_race

ROOT = Path(__file__).resolve().parents[1]

#: The README's commands that run offline against PostgreSQL, in the README's order (each
#: sees what the earlier ones recorded), with the exit code the README gives for them.
PATH_COMMANDS = [
    ("dq-monitor config check", 0),
    ("dq-monitor doctor", 0),
    ("dq-monitor check", 1),
    ("dq-monitor check --format json", 1),
    ("dq-monitor alerts test --route data-team", 0),
    ("dq-monitor gate", 1),
    ("dq-monitor migrate", 0),
]

#: What differs from one machine, server or moment to the next, and nothing else.
VOLATILE = [
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:[+-]\d\d:\d\d| UTC)?"),
     "<time>"),
    (re.compile(r"\b[0-9a-f]{64}\b"), "<hash>"),
    (re.compile(r"[\w.-]+:\d{1,5}/\w+"), "<host:port/db>"),
    (re.compile(r"PostgreSQL \d+(?:\.\d+)*"), "PostgreSQL <version>"),
    (re.compile(r"version \d+\.\d+ installed"), "version <version> installed"),
    (re.compile(r'"duration_seconds": [0-9.e-]+'), '"duration_seconds": <seconds>'),
    (re.compile(r"\b(?:\d+d)?(?:\d+h)?(?:\d+m)?\d+(?:\.\d+)?m?s\b"), "<duration>"),
    (re.compile(r"check runs \d+(?:, \d+)*"), "check runs <ids>"),
    (re.compile(r" {2,}"), " "),  # column widths follow the volatile values
]  # fmt: skip


def normalise(line: str) -> str:
    for pattern, replacement in VOLATILE:
        line = pattern.sub(replacement, line)
    return line.rstrip()


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """Every fenced block as (language, body), list-item indentation removed."""
    found = re.finditer(r"^( *)```(\w*)\n(.*?)^\1```$", text, re.M | re.S)
    return [(m.group(2), textwrap.dedent(m.group(3)).rstrip("\n")) for m in found]


def shown_outputs() -> list[tuple[str, str]]:
    """(command, shown output) for each one-line `dq-monitor` command block followed by a
    text block: the README's "paste this, you should see that" pairs."""
    blocks = fenced_blocks((ROOT / "README.md").read_text())
    return [
        (body, after)
        for (lang, body), (next_lang, after) in itertools.pairwise(blocks)
        if lang == "sh" and next_lang == "text" and re.fullmatch(r"dq-monitor [^\n]*", body)
    ]


def matches(shown: str, actual: str) -> str | None:
    """None when the shown lines are the actual ones, a `...` line standing for lines left out;
    else what differs."""
    want = [normalise(line) for line in shown.splitlines()]
    have = [normalise(line) for line in actual.splitlines()]
    segments: list[list[str]] = [[]]
    for line in want:
        if line.strip() == "...":
            segments.append([])
        else:
            segments[-1].append(line)
    first, last = segments[0], segments[-1]
    if have[: len(first)] != first or (len(segments) == 1 and have != first):
        i = next((i for i, (w, h) in enumerate(zip(first, have, strict=False)) if w != h),
                 min(len(first), len(have)))  # fmt: skip
        shown = first[i] if i < len(first) else "(nothing)"
        printed = have[i] if i < len(have) else "(nothing)"
        return f"differs at line {i + 1}: shown {shown!r}, printed {printed!r}"
    if len(segments) == 1:
        return None
    pos = len(first)
    for segment in segments[1:-1]:
        at = next((i for i in range(pos, len(have) - len(segment) + 1)
                   if have[i : i + len(segment)] == segment), None)  # fmt: skip
        if at is None:
            return f"not found in order: {segment}"
        pos = at + len(segment)
    tail = have[len(have) - len(last) :] if last else []
    if tail != last or len(have) - len(last) < pos:
        return f"ends differently: {last} against {tail}"
    return None


def test_the_matcher_follows_ellipses_and_volatile_parts():
    actual = "a 1.5s\nb\nc\nd 2026-01-02 03:04 UTC\ne"
    assert matches("a 0.014s\n...\nd 2031-12-31 23:59 UTC\ne", actual) is None
    assert matches("a 1s\n...\nc\n...", actual) is None
    assert matches("a 1s\nb\nc", actual)  # the rest shown as nothing: a difference
    assert matches("a 1s\n...\nx\n...", actual)
    assert matches("...\nb\nc", actual)


def test_every_shown_output_of_a_dq_monitor_command_is_tested():
    assert [command for command, _ in shown_outputs()] == [c for c, _ in PATH_COMMANDS]


@pytest.fixture
def readme_database(readme_role: str, db: psycopg.Connection, tmp_path: Path) -> dict[str, str]:
    """The README's example: its grants, one consistent run r1, one run r2 that hit the race,
    the statistics reset after the fix; the password in a PGPASSFILE, not in the URL."""
    healthy_run(db, "r1")
    seed_race(db, "r2")
    db.execute("SELECT pg_stat_statements_reset()")
    info = psycopg.conninfo.conninfo_to_dict(readme_role)
    host, port, dbname = info["host"], info.get("port", "5432"), info["dbname"]
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"{host}:{port}:{dbname}:dq_monitor:{info['password']}\n")
    passfile.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DQ_", "PG"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["DQ_DATABASE_URL"] = f"postgresql://dq_monitor@{host}:{port}/{dbname}"
    env["PGPASSFILE"] = str(passfile)
    return env


def slack_route(httpserver: HTTPServer) -> str:
    """The README's Slack route, its webhook a loopback stand-in that answers as Slack does."""
    httpserver.expect_request("/services/T0/B0/x", method="POST").respond_with_data("ok")
    url = httpserver.url_for("/services/T0/B0/x")
    return f'[{{"name": "data-team", "type": "slack", "url": "{url}", "min_severity": "warning"}}]'


def test_the_readme_path_prints_what_the_readme_shows(readme_database, httpserver):
    shown = dict(shown_outputs())
    for command, code in PATH_COMMANDS:
        env = dict(readme_database)
        if command.startswith("dq-monitor alerts"):
            env["DQ_ALERTS__ROUTES"] = slack_route(httpserver)
        done = subprocess.run(
            ["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == code, (command, done.stdout[-2000:], done.stderr[-2000:])
        assert done.stderr == "", (command, done.stderr)
        difference = matches(shown[command], done.stdout)
        assert difference is None, f"README's output of `{command}` {difference}"
    (request, _), = httpserver.log
    assert "test" in request.get_json()["text"].lower()  # the test message reached the stand-in
