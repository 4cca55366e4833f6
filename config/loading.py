"""Build Settings once: pick the config file, read the environment, turn errors into one message."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from .errors import ConfigError
from .settings import Settings


def load_settings(config_file: str | os.PathLike[str] | None = None) -> Settings:
    """Load and validate the settings.

    The file is `config_file`, else `DQ_CONFIG` from the environment, else none.
    Raises ConfigError whose message lists every problem as `field: message`.
    """
    path_text = config_file if config_file is not None else os.environ.get("DQ_CONFIG") or None
    path = Path(path_text) if path_text is not None else None
    if path is not None:
        _check_toml(path)

    class _Loaded(Settings):
        model_config = SettingsConfigDict(toml_file=path)

    try:
        return _Loaded()
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None


def format_validation_error(exc: ValidationError) -> str:
    """One `field: message` line per problem, inputs hidden (they may be secrets)."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in error["loc"]) or "settings"
        lines.append(f"{where}: {error['msg']}")
    return "\n".join(lines)


def _check_toml(path: Path) -> None:
    try:
        with path.open("rb") as handle:
            tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist; check --config or DQ_CONFIG"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory, not a TOML file") from None
    except PermissionError:
        raise ConfigError(f"config file {path} cannot be read: permission denied") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
