"""`check`'s progress line: on a terminal's stderr while a sweep runs in ranges, else nothing."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys

import pytest

from monitor.cli.progress import ProgressLine
from tests.factories import healthy_run, seed_race
from tests.helpers import run_cli


class StepClock:
    """Each monotonic read is a second later, so elapsed times are known."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self):  # pragma: no cover - the progress line reads only the monotonic clock
        raise AssertionError("not used")

    def monotonic(self) -> float:
        self.t += 1.0
        return self.t

    def sleep(self, seconds: float) -> None:  # pragma: no cover
        raise AssertionError("not used")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def seeded(db) -> None:
    for i in range(12):
        healthy_run(db, f"r{i:02d}", partitions=3)
    seed_race(db, "race")
    db.execute("ANALYZE")


def test_the_line_counts_ranges_percent_and_seconds():
    stream = Terminal()
    line = ProgressLine(stream, StepClock())
    for done in range(4):
        line(("dashboard_mismatch",), "consistency sweep", done, 3)
    line(("counter_writes",), "counter_writes", 1, 1)  # not split: nothing to show
    line.close()
    assert stream.getvalue() == (
        "\rconsistency sweep: 0/3 ranges, 0%, 0.0 s\x1b[K"
        "\rconsistency sweep: 1/3 ranges, 33%, 1.0 s\x1b[K"
        "\rconsistency sweep: 2/3 ranges, 66%, 2.0 s\x1b[K"
        "\rconsistency sweep: 3/3 ranges, 100%, 3.0 s\x1b[K\n"
    )


def test_with_several_databases_the_line_names_its_database():
    stream = Terminal()
    line = ProgressLine(stream, StepClock(), "eu")
    line(("dashboard_mismatch",), "consistency sweep", 1, 2)
    line.close()
    assert stream.getvalue() == "\reu: consistency sweep: 1/2 ranges, 50%, 0.0 s\x1b[K\n"


def test_a_line_a_failed_sweep_left_open_is_ended():
    stream = Terminal()
    line = ProgressLine(stream, StepClock())
    line(("flag_conflict",), "consistency sweep", 1, 5)
    line.close()
    assert stream.getvalue().endswith("\x1b[K\n")


def test_nothing_is_written_when_stderr_is_not_a_terminal():
    stream = io.StringIO()
    line = ProgressLine(stream, StepClock())
    line(("flag_conflict",), "consistency sweep", 1, 5)
    line.close()
    assert stream.getvalue() == ""


def test_check_prints_no_progress_to_a_pipe(monkeypatch, db_url, db, capsys):
    seeded(db)
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    monkeypatch.setenv("DQ_SWEEP_CHUNK_ROWS", "3")
    code, out, err = run_cli(capsys, "check", "--full")
    assert code == 1
    assert "dashboard_mismatch" in out
    assert "ranges" not in err
    assert "\r" not in err


@pytest.mark.skipif(sys.platform != "linux", reason="needs a pseudo-terminal")
def test_check_shows_progress_on_a_terminal(db_url, db):
    seeded(db)
    main, child = pty.openpty()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DQ_")},
           "DQ_DATABASE_URL": db_url, "DQ_SWEEP_CHUNK_ROWS": "3"}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "check", "--full", "--no-alerts"],
        stdout=subprocess.PIPE, stderr=child, env=env, timeout=120, check=False,
    )  # fmt: skip
    os.close(child)
    shown = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal closed: everything was read
            break
        if not chunk:
            break
        shown += chunk
    os.close(main)
    assert proc.returncode == 1
    assert b"dashboard_mismatch" in proc.stdout
    text = shown.decode()
    assert "consistency sweep: 0/" in text
    final = [part for part in text.split("\r") if "ranges, 100%" in part]
    assert final, text
    assert final[0].startswith("consistency sweep: ")
