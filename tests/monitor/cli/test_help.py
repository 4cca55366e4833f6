"""Every command's --help: where its settings come from, and one example that really parses."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterator

import pytest

from monitor.cli.main import build_parser


def _walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, (*path, name))


COMMANDS = dict(_walk(build_parser()))


def _example(help_text: str) -> str:
    lines = help_text.splitlines()
    (at,) = [i for i, line in enumerate(lines) if line == "example:"]
    return lines[at + 1].strip()


def _argv(example: str) -> list[str]:
    """The arguments after `dq-monitor`, past any leading VAR=value assignments."""
    words = shlex.split(example)
    while words and "=" in words[0] and words[0].split("=")[0].isupper():
        words.pop(0)
    assert words[0] == "dq-monitor", example
    return words[1:]


def test_the_walk_finds_every_command():
    assert {" ".join(path) for path in COMMANDS} >= {
        "", "check", "run", "gate", "migrate", "doctor", "demo", "config", "config check",
        "config show", "config reference", "silence", "silence add", "silence list",
        "silence remove", "alerts", "alerts test", "state", "state prune",
    }  # fmt: skip


@pytest.mark.parametrize("path", list(COMMANDS), ids=lambda p: " ".join(p) or "dq-monitor")
def test_help_says_where_settings_come_from_and_gives_an_example_that_parses(path):
    text = COMMANDS[path].format_help()
    flat = " ".join(text.split())
    if "reads no configuration" in flat:
        assert path == ("config", "reference")
    else:
        assert "DQ_DATABASE_URL" in flat
        assert "--config FILE or DQ_CONFIG" in flat
        assert "other DQ_* environment variables override the file" in flat or (
            "DQ_* environment variables, which override the file" in flat
        )
    example = _example(text)
    args = build_parser().parse_args(_argv(example))  # SystemExit (a failure) if it does not
    if path:
        assert args.command == path[0]
    if len(path) > 1:
        assert args.action == path[1]


def test_the_example_keeps_its_line_and_the_description_is_wrapped():
    """RawDescriptionHelpFormatter keeps the example on one line (a person pastes it)."""
    text = COMMANDS[("silence", "add")].format_help()
    assert "--reason 'backfill of the March runs'" in _example(text)
    assert all(len(line) <= 80 for line in text.split("example:")[0].splitlines())
