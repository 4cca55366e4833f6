"""The README's quickstart commands, tested as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.demo.embedded import free_port
from tests.test_readme_path import fenced_blocks, matches

ROOT = Path(__file__).resolve().parents[1]


def quickstart_section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]


def quickstart_commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", quickstart_section())


def shown_demo_output() -> str:
    """The text block the README shows after the demo command: what the reader will see."""
    blocks = [body for lang, body in fenced_blocks(quickstart_section()) if lang == "text"]
    assert len(blocks) == 1, "the quickstart shows one output, the demo's"
    return blocks[0]


def test_the_quickstart_is_exactly_two_commands():
    demo, tests = quickstart_commands()
    assert demo.startswith("pip install")
    assert "dq-monitor demo" in demo
    assert tests.startswith("pip install")
    assert "python -m pytest" in tests


def test_ci_runs_the_readmes_test_command_verbatim():
    _, tests = quickstart_commands()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci, f"{tests!r} must be a line of .ci/run"


def directory_modes(top: Path) -> dict[str, int]:
    return {
        str(path): path.lstat().st_mode
        for path in (top, *(Path(d, n) for d, dirs, _ in os.walk(top) for n in dirs))
    }


@pytest.mark.slow
@pytest.mark.registry
def test_the_demo_command_as_written_in_a_fresh_virtual_environment(tmp_path):
    demo, _ = quickstart_commands()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    before = directory_modes(tmp_path)  # private: pytest makes tmp_path 0700
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DQ_", "VIRTUAL_ENV"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    # The command stays word for word; the port comes from the environment, so a taken 8477
    # cannot fail the test.
    env["DQ_METRICS_PORT"] = str(free_port())
    result = subprocess.run(
        ["bash", "-c", demo], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
        check=False,
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert "[demo] finished after" in out
    assert "dashboard_mismatch is failing" in out
    assert f"metrics on http://127.0.0.1:{env['DQ_METRICS_PORT']}/metrics" in out
    # What the README shows, with the port it names (8477) for the free one taken here.
    printed = out.replace(f"127.0.0.1:{env['DQ_METRICS_PORT']}/", "127.0.0.1:8477/")
    difference = matches(shown_demo_output(), printed)
    assert difference is None, f"README's demo output {difference}"
    after = directory_modes(tmp_path)
    assert {path: after[path] for path in before} == before  # no directory opened up
