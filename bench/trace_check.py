"""Count the project modules, and module-to-module calls, that one `dq-monitor check` runs.

Starts a throwaway PostgreSQL, creates the reference schema with one run of the seed's race,
runs `dq-monitor check` once to create the state store, then traces a second `check` with
sys.setprofile: every call from one of this project's modules (config, checks, alerts,
monitor) into another is a transition. Module-level (import) code is not counted.

    python bench/trace_check.py
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PACKAGES = ("config", "checks", "alerts", "monitor")


def module_of(filename: str) -> str | None:
    try:
        rel = Path(filename).resolve().relative_to(ROOT)
    except ValueError:
        return None
    if rel.parts[0] not in PACKAGES or rel.suffix != ".py":
        return None
    name = ".".join(rel.with_suffix("").parts)
    return name.removesuffix(".__init__")


def component(module: str) -> str:
    """The role a module belongs to: a top-level layer, or a subpackage/module of monitor."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "monitor" else parts[0]


def main() -> int:
    try:
        from monitor.demo.embedded import EmbeddedPostgres
    except ImportError:  # before the subpackages
        from monitor.embedded import EmbeddedPostgres  # type: ignore[no-redef]
    import psycopg

    from checks import reference_schema
    from monitor.cli import main as cli_main

    server = EmbeddedPostgres()
    server.init()
    server.start()
    try:
        url = server.url()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(reference_schema())
            conn.execute(
                "INSERT INTO run_metadata (run_id, status) VALUES (1, 'running');"
                "INSERT INTO partition_progress (run_id, partition_id, completed, failed,"
                " updated_at) VALUES (1, 1, false, true, now() - interval '1 hour');"
            )
        os.environ["DQ_DATABASE_URL"] = url
        os.environ["DQ_SETTLE_TIME"] = "0s"
        cli_main(["check"])  # creates the state store; not traced
        modules: set[str] = set()
        edges: set[tuple[str, str]] = set()

        def profile(frame: FrameType, event: str, arg: Any) -> None:
            if event != "call" or frame.f_code.co_name == "<module>":
                return
            callee = module_of(frame.f_code.co_filename)
            if callee is None:
                return
            modules.add(callee)
            caller_frame = frame.f_back
            while caller_frame is not None and module_of(caller_frame.f_code.co_filename) is None:
                caller_frame = caller_frame.f_back  # through library code (e.g. a callback)
            if caller_frame is None:
                return
            caller = module_of(caller_frame.f_code.co_filename)
            if caller is not None and caller != callee:
                edges.add((caller, callee))

        threading.setprofile(profile)
        sys.setprofile(profile)
        try:
            code = cli_main(["check"])
        finally:
            sys.setprofile(None)
            threading.setprofile(None)  # type: ignore[arg-type]
        print(f"exit code {code}")
        print(f"{len(modules)} modules, {len(edges)} module-to-module transitions")
        roles = {(component(a), component(b)) for a, b in edges} - {
            (a, a) for a in map(component, modules)
        }
        print(f"{len({component(m) for m in modules})} components, {len(roles)} transitions "
              "between components (config, checks, alerts, and monitor's subpackages)")
        for name in sorted(modules):
            print(f"  {name}")
        if "-v" in sys.argv:
            for a, b in sorted(edges):
                print(f"  {a} -> {b}")
            for a, b in sorted(roles):
                print(f"  [{a} -> {b}]")
    finally:
        server.stop()
        server.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
