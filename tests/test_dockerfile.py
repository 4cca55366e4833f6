"""The Dockerfile, read without a Docker engine: base, user, entrypoint, health, no secrets,
and its install steps replayed in a fresh virtual environment."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from config import DEFAULT_METRICS_PORT
from monitor import __version__

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
SECRET_LIKE = re.compile(
    r"password\s*=|passwd|postgres(?:ql)?://[^/\s@]*:[^/\s@]*@|hooks\.slack\.com|bearer\s", re.I
)


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, continuation lines joined."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).strip().partition(" ")
        result.append((keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continuation line"
    return result


def arguments(keyword: str) -> list[str]:
    return [args for kw, args in instructions() if kw == keyword]


def position(keyword: str) -> int:
    keywords = [kw for kw, _ in instructions()]
    assert keyword in keywords, f"no {keyword} in the Dockerfile"
    return len(keywords) - 1 - keywords[::-1].index(keyword)


def env_pairs() -> dict[str, str]:
    pairs = {}
    for args in arguments("ENV"):
        for word in shlex.split(args):
            key, sep, value = word.partition("=")
            assert sep, f"ENV {args!r}: use the KEY=value form"
            pairs[key] = value
    return pairs


def exec_form(keyword: str) -> list[str]:
    (args,) = arguments(keyword)
    value = json.loads(args)  # shell form would not parse as JSON
    assert isinstance(value, list), f"{keyword} must be exec form"
    assert all(isinstance(v, str) for v in value)
    return value


def test_base_image_is_a_pinned_slim_python():
    (base,) = arguments("FROM")
    assert re.fullmatch(r"python:3\.1\d(\.\d+)?-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", base), base


def test_runs_as_a_non_root_user_with_an_explicit_uid():
    users = arguments("USER")
    assert users, "no USER: the container would run as root"
    user = users[-1].split(":")[0]
    assert user.isdigit(), f"USER {user}: give the numeric UID so runAsNonRoot can verify it"
    assert user not in {"0", "root"}
    assert position("USER") < position("ENTRYPOINT")
    assert any(f"--uid {user}" in run for run in arguments("RUN")), "the UID is never created"


def test_entrypoint_and_cmd_are_exec_form_running_the_service():
    entrypoint, cmd = exec_form("ENTRYPOINT"), exec_form("CMD")
    assert entrypoint == ["dq-monitor"]
    assert cmd == ["run"]


def test_healthcheck_uses_python_on_the_default_port():
    (health,) = arguments("HEALTHCHECK")
    options, _, command = health.partition("CMD ")
    for option in ("--interval=", "--timeout=", "--start-period=", "--retries="):
        assert option in options, option
    argv = json.loads(command)
    assert argv[:2] == ["python", "-c"]
    assert not re.search(r"\b(curl|wget)\b", health)
    assert f"http://127.0.0.1:{DEFAULT_METRICS_PORT}/healthz" in argv[2]
    compile(argv[2], "<healthcheck>", "exec")


def test_exposes_the_default_metrics_port():
    assert arguments("EXPOSE") == [str(DEFAULT_METRICS_PORT)]


def test_python_output_is_unbuffered():
    assert env_pairs().get("PYTHONUNBUFFERED") == "1"


def test_no_secret_is_baked_in():
    for keyword in ("ENV", "ARG"):
        for args in arguments(keyword):
            assert not SECRET_LIKE.search(args), f"{keyword} {args}"
            assert not re.search(r"DQ_\w*URL|PASSWORD|TOKEN|SECRET", args, re.I), args


def test_copies_only_the_project_and_its_packages():
    sources = {src.rstrip("/") for args in arguments("COPY") for src in shlex.split(args)[:-1]}
    assert sources == {"pyproject.toml", "README.md", "config", "checks", "alerts", "monitor"}
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    ignored = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for entry in (".venv", ".git", "tests", "bench", "deploy"):
        assert entry in ignored, entry
    assert not sources & {entry.rstrip("/") for entry in ignored}


def pip_install_line() -> list[str]:
    runs = [shlex.split(args) for args in arguments("RUN") if args.startswith("pip ")]
    assert len(runs) == 1, "expected one plain `RUN pip install ...` line"
    (argv,) = runs
    assert argv[:2] == ["pip", "install"]
    assert not {"&&", ";", "|"} & set(argv), "keep the install step a plain pip command"
    assert "--no-cache-dir" in argv
    return argv


def test_install_step_is_a_plain_pip_install():
    pip_install_line()


def copy_build_context(dest: Path) -> None:
    """Copy exactly what the Dockerfile's COPY lines copy, relative to its WORKDIR."""
    for args in arguments("COPY"):
        *sources, target = shlex.split(args)
        assert not any(s.startswith("--") for s in sources), args
        for source in sources:
            src, into = ROOT / source, dest / target
            if src.is_dir():
                ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
                shutil.copytree(src, into, ignore=ignore, dirs_exist_ok=True)
            elif target.endswith("/"):
                into.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, into / src.name)
            else:
                shutil.copy2(src, into)


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=240
    )


@pytest.mark.slow
@pytest.mark.registry
@pytest.mark.timeout(300)
def test_install_steps_build_a_working_command(tmp_path):
    venv, context = tmp_path / "venv", tmp_path / "app"
    context.mkdir()
    copy_build_context(context)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DQ_", "PYTHON", "VIRTUAL_ENV"))}  # fmt: skip
    env |= env_pairs()
    argv = pip_install_line()
    installed = run([str(venv / "bin" / "pip"), *argv[1:]], context, env)
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]

    command = str(venv / "bin" / "dq-monitor")
    version = run([command, "--version"], tmp_path, env)
    assert (version.returncode, version.stdout.strip()) == (0, f"dq-monitor {__version__}")
    code = "import monitor; print(monitor.__file__)"
    located = run([str(venv / "bin" / "python"), "-c", code], tmp_path, env)
    assert Path(located.stdout.strip()).is_relative_to(venv), located.stdout + located.stderr

    check = run([command, "check"], tmp_path, env)
    assert check.returncode == 2, check.stderr
    assert check.stdout == ""
    (line,) = check.stderr.splitlines()
    assert line.startswith("dq-monitor: error: DQ_DATABASE_URL is not set"), line
