"""Build Settings once: pick the config file, read the environment, turn errors into one message."""

from __future__ import annotations

import json
import os
import tomllib
import typing
from pathlib import Path

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
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
    except SettingsError as exc:  # a DQ_* variable that must hold JSON does not
        raise ConfigError(_settings_error_message(exc)) from None


def format_validation_error(exc: ValidationError) -> str:
    """One `field: message` line per problem, inputs hidden (they may be secrets)."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in error["loc"]) or "settings"
        lines.append(f"{where}: {error['msg']}")
    return "\n".join(lines)


def _check_toml(path: Path) -> None:
    """Raises ConfigError naming the file when it cannot be read or is not UTF-8 TOML."""
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
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"config file {path} cannot be read: {reason}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at "
            f"offset {exc.start}); TOML files must be UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _settings_error_message(exc: SettingsError) -> str:
    """`DQ_NAME: not valid JSON (...)` for every variable to blame; never quotes a value."""
    lines = [
        f"{name}: not valid JSON ({error}); list and table settings in the environment "
        "are written as JSON"
        for name in _json_variables()
        if (error := _json_error(os.environ[name])) is not None
    ]
    return "\n".join(lines) or f"environment: {exc}: {exc.__cause__ or 'unreadable value'}"


def _json_variables() -> list[str]:
    """The DQ_* variables whose setting is a list, a table or a group of settings: those
    pydantic-settings reads as JSON."""
    names = []
    for name in sorted(os.environ):
        if not name.upper().startswith("DQ_"):
            continue
        annotation: object = Settings
        for part in name[len("DQ_") :].lower().split("__"):
            annotation = _field_annotation(annotation, part)
        if _is_complex(annotation):
            names.append(name)
    return names


def _field_annotation(model: object, name: str) -> object:
    if isinstance(model, type) and issubclass(model, BaseModel) and name in model.model_fields:
        return _without_none(model.model_fields[name].annotation)
    return None


def _without_none(annotation: object) -> object:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    is_optional = type(None) in typing.get_args(annotation) and len(args) == 1
    return args[0] if is_optional else annotation


def _is_complex(annotation: object) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return typing.get_origin(annotation) in (list, tuple, dict, set, frozenset)


def _json_error(text: str) -> str | None:
    try:
        json.loads(text)
    except ValueError as exc:  # JSONDecodeError's text gives the position, not the input
        return str(exc)
    return None


class _DatabaseUrlProbe(BaseSettings):
    """Only database_url and databases, read from the same sources as Settings; everything
    else ignored."""

    model_config = SettingsConfigDict(env_prefix="DQ_", extra="ignore")

    database_url: SecretStr | None = None
    databases: list[object] = []

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
    """Whether the environment or the config file sets database_url or databases, even when
    other settings are invalid (so `config check` can list a missing URL among other
    problems)."""
    path_text = config_file if config_file is not None else os.environ.get("DQ_CONFIG")
    path = Path(path_text) if path_text and _readable_toml(Path(path_text)) else None

    class _Probe(_DatabaseUrlProbe):
        model_config = SettingsConfigDict(toml_file=path)

    try:
        probe = _Probe()
    except (ValidationError, SettingsError):
        return True  # present but malformed: load_settings reports that itself
    url = probe.database_url
    return bool(probe.databases) or (url is not None and bool(url.get_secret_value().strip()))


def _readable_toml(path: Path) -> bool:
    try:
        _check_toml(path)
    except ConfigError:
        return False
    return True
