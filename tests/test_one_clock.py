"""One clock: no module of the four packages reads the wall clock except alerts/clock.py."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("config", "checks", "alerts", "monitor")
CLOCK_MODULE = ROOT / "alerts" / "clock.py"
# Attribute calls that read (or wait on) the wall or monotonic clock.
FORBIDDEN = {
    ("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
    ("time", "time"), ("time", "time_ns"), ("time", "monotonic"), ("time", "monotonic_ns"),
    ("time", "perf_counter"), ("time", "perf_counter_ns"), ("time", "sleep"),
    ("time", "localtime"), ("time", "gmtime"),
}  # fmt: skip


def _clock_reads(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("time", "datetime"):
            names = {alias.name for alias in node.names}
            if node.module == "time" and names & {n for _, n in FORBIDDEN}:
                found.append(f"{path.name}:{node.lineno}: from time import ...")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", None)
            if (name, node.func.attr) in FORBIDDEN:
                where = f"{path.parent.name}/{path.name}:{node.lineno}"
                found.append(f"{where}: {name}.{node.func.attr}()")
    return found


def test_only_the_clock_module_reads_the_clock():
    offenders = [
        hit
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != CLOCK_MODULE
        for hit in _clock_reads(path)
    ]
    assert offenders == [], "read the injected Clock instead:\n" + "\n".join(offenders)


def test_the_scan_finds_what_it_looks_for(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import time, datetime as dt\nfrom time import monotonic\n"
        "a = dt.datetime.now(dt.UTC)\nb = time.perf_counter()\nc = datetime.date.today()\n"
    )
    hits = _clock_reads(sample)
    assert len(hits) == 4, hits
