"""What `dq-monitor config check|show|reference` run: the settings validated, shown, documented."""

from __future__ import annotations

import argparse
import json
import re
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from config import (
    BUILTIN_CATALOGUE,
    ChecksSettings,
    ConfigError,
    Settings,
    count,
    database_url_configured,
    format_duration,
    load_settings,
)

MASK = "**********"
ENV_PREFIX = "DQ_"
# Optional in the model so that `config show` and `config reference` work without it, but
# every command that reads a database needs it: `config check` reports it as a problem.
DATABASE_URL_MISSING = "database_url: required (set DQ_DATABASE_URL); or databases for several"


# --- config check ---------------------------------------------------------------------------


def cmd_config_check(args: argparse.Namespace) -> int:
    """Print a summary, or raise ConfigError listing every problem (one per line)."""
    problems: list[str] = []
    settings: Settings | None = None
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        problems.extend(str(exc).splitlines())
    if settings is None:
        given = database_url_configured(args.config)
    else:
        url = settings.database_url
        given = bool(settings.databases) or (
            url is not None and bool(url.get_secret_value().strip())
        )
    if not given:
        problems.insert(0, DATABASE_URL_MISSING)
    if problems or settings is None:
        raise ConfigError("\n".join(problems))
    databases = len(settings.monitored())
    several = f", {count(databases, 'database')}" if databases > 1 else ""
    print(
        f"configuration ok: {count(enabled_checks(settings), 'check')} enabled, "
        f"{count(len(settings.alerts.routes), 'alert route')}{several}"
    )
    return 0


def enabled_checks(settings: Settings) -> int:
    """How many checks (built-in and custom) are enabled."""
    builtins = sum(s.enabled for s in settings.checks.builtins().values())
    return builtins + sum(custom.enabled for custom in settings.checks.custom)


# --- config show ----------------------------------------------------------------------------


def cmd_config_show(args: argparse.Namespace) -> int:
    """Print the effective settings; raises ConfigError when they are invalid."""
    data = masked_settings(load_settings(args.config))
    print(json.dumps(data, indent=2) if args.format == "json" else to_toml(data))
    return 0


def masked_settings(settings: Settings) -> dict[str, object]:
    """The settings as plain data: secrets masked, durations as text, None values left out."""
    dumped = settings.model_dump(mode="python", exclude_none=True)
    return {key: _plain(value) for key, value in dumped.items()}


def _plain(value: object) -> object:
    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, Enum):
        return value.value
    return value


def to_toml(data: Mapping[str, object]) -> str:
    """TOML for nested plain data: tables, arrays of tables, strings, numbers, bools, lists."""
    lines = ["# dq-monitor effective configuration; secrets are masked."]
    _emit_table(data, (), lines)
    return "\n".join(lines)


def _is_table(value: object) -> bool:
    return isinstance(value, Mapping) and bool(value)


def _is_table_array(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(_is_table(v) for v in value)


def _emit_table(table: Mapping[str, object], path: tuple[str, ...], lines: list[str]) -> None:
    simple = [(k, v) for k, v in table.items() if not (_is_table(v) or _is_table_array(v))]
    for key, value in simple:
        lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in table.items():
        sub = ".".join(_toml_key(part) for part in (*path, key))
        if _is_table(value):
            assert isinstance(value, Mapping)
            if any(not (_is_table(v) or _is_table_array(v)) for v in value.values()):
                lines.extend(["", f"[{sub}]"])
            _emit_table(value, (*path, key), lines)
        elif _is_table_array(value):
            assert isinstance(value, list)
            for item in value:
                lines.extend(["", f"[[{sub}]]"])
                _emit_table(item, (*path, key), lines)


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else '"' + _escaped(key) + '"'


def _toml_string(text: str) -> str:
    if "\n" in text:  # custom SQL reads best as a multi-line string with its line breaks kept
        return '"""\n' + "\n".join(_escaped(line) for line in text.split("\n")) + '"""'
    return '"' + _escaped(text) + '"'


def _escaped(text: str) -> str:
    return "".join(
        _ESCAPES.get(ch) or (f"\\u{ord(ch):04X}" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch)
        for ch in text
    )


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        pairs = (f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + ", ".join(pairs) + " }" if value else "{}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


# --- config reference -----------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceRow:
    """One setting: dotted name, environment variable, default and meaning."""

    name: str
    env: str
    default: str
    meaning: str


def cmd_config_reference(args: argparse.Namespace) -> int:
    print(reference_table())
    return 0


def reference_table() -> str:
    """The Markdown table of every setting, generated from the settings model."""
    lines = ["| setting | environment | default | meaning |", "|---|---|---|---|"]
    for row in reference_rows(Settings):
        cells = (f"`{row.name}`", row.env, row.default, row.meaning)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def reference_rows(
    model: type[BaseModel], path: tuple[str, ...] = (), item_of: str | None = None
) -> Iterator[ReferenceRow]:
    """Rows of a model's leaf fields, nested models walked; a list of models gets a row for
    the list and rows for its items' fields (`checks.custom[].name`). The built-in checks'
    tables come from the registry's models, before the custom checks."""
    if model is ChecksSettings:
        for name in BUILTIN_CATALOGUE.names:
            yield from reference_rows(BUILTIN_CATALOGUE.model(name), (*path, name), item_of)
    fields = sorted(model.model_fields.items(), key=lambda kv: not kv[1].is_required())
    for name, field in fields:
        here = (*path, name)
        annotation = _without_none(field.annotation)
        # An optional group inside a list's items (databases[].tables) is one row: its fields
        # are the top-level group's, documented there.
        optional_in_item = item_of is not None and field.default is None
        is_group = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        if is_group and not optional_in_item:
            assert isinstance(annotation, type)
            yield from reference_rows(annotation, here, item_of)
            continue
        env = f"in `{item_of}`" if item_of else f"`{_env_name(here)}`{_json_note(annotation)}"
        yield ReferenceRow(".".join(here), env, _default(here, field), _meaning(field))
        item = _item_model(annotation)
        if item is not None and item_of is None:
            items_path = (*path, f"{name}[]")
            yield from reference_rows(item, items_path, item_of=_env_name(here))


def _env_name(path: tuple[str, ...]) -> str:
    return ENV_PREFIX + "__".join(path).upper()


def _without_none(annotation: object) -> object:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _item_model(annotation: object) -> type[BaseModel] | None:
    if typing.get_origin(annotation) in (tuple, list):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        if len(args) == 1 and isinstance(args[0], type) and issubclass(args[0], BaseModel):
            return args[0]
    return None


def _json_note(annotation: object) -> str:
    origin = typing.get_origin(annotation)
    if origin in (tuple, list, set, frozenset):
        return " (JSON list)"
    if origin is dict:
        return " (JSON object)"
    return ""


def _is_secret(annotation: object) -> bool:
    if annotation is SecretStr:
        return True
    return any(_is_secret(arg) for arg in typing.get_args(annotation))


def _default(path: tuple[str, ...], field: FieldInfo) -> str:
    if field.is_required() or ".".join(path) == "database_url":
        return "(required)"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "none"
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, timedelta):
        value = format_duration(value)
    elif isinstance(value, Enum):
        value = value.value
    return f"`{value}`" if isinstance(value, str) else f"`{_toml_value(_plain(value))}`"


def _meaning(field: FieldInfo) -> str:
    parts = [field.description or ""]
    annotation = _without_none(field.annotation)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        parts.append("One of " + ", ".join(f"`{m.value}`" for m in annotation) + ".")
    bounds = [
        f"{word} {getattr(rule, attr)}"
        for rule in field.metadata
        for attr, word in (("ge", "at least"), ("gt", "more than"), ("le", "at most"))
        if getattr(rule, attr, None) is not None
    ]
    if bounds:
        parts.append(", ".join(bounds).capitalize() + ".")
    if _is_secret(field.annotation) and "secret" not in parts[0].lower():
        parts.append("A secret: never printed.")
    return " ".join(p for p in parts if p)


def _cell(text: str) -> str:
    return text.replace("\n", " ").replace("|", "\\|")
