"""Build Settings once: pick the config file, read the environment, turn errors into one message."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

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


class _DatabaseUrlProbe(BaseSettings):
    """Only database_url, read from the same sources as Settings; everything else ignored."""

    model_config = SettingsConfigDict(env_prefix="DQ_", extra="ignore")

    database_url: SecretStr | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def database_url_configured(config_file: str | os.PathLike[str] | None = None) -> bool:
    """Whether the environment or the config file sets database_url, even when other
    settings are invalid (so `config check` can list a missing URL among other problems)."""
    path_text = config_file if config_file is not None else os.environ.get("DQ_CONFIG")
    path = Path(path_text) if path_text and _readable_toml(Path(path_text)) else None

    class _Probe(_DatabaseUrlProbe):
        model_config = SettingsConfigDict(toml_file=path)

    try:
        url = _Probe().database_url
    except ValidationError:
        return True  # present but malformed: load_settings reports that itself
    return url is not None and bool(url.get_secret_value().strip())


def _readable_toml(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        return False
    return True
