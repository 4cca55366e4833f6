"""The rules the gate evaluates with: the configured ones, never below their floors.

Floors: the plan's own gating checks always gate; the defaults and the service's last recorded
rules are not weakened unless `gate.accept_weaker_settings` says so, and then every report says
so on its first line, and the evidence hash and the migration's audit row carry it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from config import GateSettings, format_duration, parse_duration


@dataclass(frozen=True)
class GateRules:
    """The settings that decide the verdict (not how the migration is applied)."""

    required_clean_period: dt.timedelta
    max_gap_intervals: float
    full_sweep_max_gap: dt.timedelta
    checks: tuple[str, ...]
    unknown_blocks: bool

    @classmethod
    def of(cls, gate: GateSettings, plan_checks: Sequence[str] = ()) -> GateRules:
        """The configured rules, with the plan's gating checks first (they cannot be left out)."""
        return cls(
            required_clean_period=gate.required_clean_period,
            max_gap_intervals=gate.max_gap_intervals,
            full_sweep_max_gap=gate.full_sweep_max_gap,
            checks=tuple(dict.fromkeys([*plan_checks, *gate.checks])),
            unknown_blocks=gate.unknown_blocks,
        )

    @classmethod
    def from_json(cls, data: object) -> GateRules | None:
        """Rules as recorded in the state store; None when absent or unreadable."""
        if not isinstance(data, dict):
            return None
        try:
            return cls(
                required_clean_period=parse_duration(data["required_clean_period"]),
                max_gap_intervals=float(data["max_gap_intervals"]),
                full_sweep_max_gap=parse_duration(data["full_sweep_max_gap"]),
                checks=tuple(str(c) for c in data["checks"]),
                unknown_blocks=bool(data["unknown_blocks"]),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def as_json(self) -> dict[str, Any]:
        gaps = self.max_gap_intervals
        return {
            "required_clean_period": format_duration(self.required_clean_period),
            "max_gap_intervals": int(gaps) if gaps.is_integer() else gaps,
            "full_sweep_max_gap": format_duration(self.full_sweep_max_gap),
            "checks": list(self.checks),
            "unknown_blocks": self.unknown_blocks,
        }

    def settings_update(self) -> dict[str, Any]:
        """These rules as a GateSettings update (model_copy(update=...))."""
        return {
            "required_clean_period": self.required_clean_period,
            "max_gap_intervals": self.max_gap_intervals,
            "full_sweep_max_gap": self.full_sweep_max_gap,
            "checks": self.checks,
            "unknown_blocks": self.unknown_blocks,
        }

    def strongest(self, other: GateRules) -> GateRules:
        """Each rule at the stricter of the two; the gating checks of both."""
        return GateRules(
            required_clean_period=max(self.required_clean_period, other.required_clean_period),
            max_gap_intervals=min(self.max_gap_intervals, other.max_gap_intervals),
            full_sweep_max_gap=min(self.full_sweep_max_gap, other.full_sweep_max_gap),
            checks=tuple(dict.fromkeys([*self.checks, *other.checks])),
            unknown_blocks=self.unknown_blocks or other.unknown_blocks,
        )

    def weaker_than(self, other: GateRules) -> list[str]:
        """Names of the rules where these are weaker than `other`."""
        weaker = {
            "required_clean_period": self.required_clean_period < other.required_clean_period,
            "max_gap_intervals": self.max_gap_intervals > other.max_gap_intervals,
            "full_sweep_max_gap": self.full_sweep_max_gap > other.full_sweep_max_gap,
            "checks": not set(other.checks) <= set(self.checks),
            "unknown_blocks": other.unknown_blocks and not self.unknown_blocks,
        }
        return [name for name, is_weaker in weaker.items() if is_weaker]

    def shown(self, name: str) -> str:
        """One rule's value as the reports print it."""
        value = self.as_json()[name]
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, list):
            return ", ".join(value)
        return str(value)


@dataclass(frozen=True)
class ResolvedRules:
    """The rules the gate applies, whether weaker ones were accepted, and what was overridden."""

    rules: GateRules
    accepted: bool
    weaker: tuple[str, ...] = ()  # "required_clean_period 0s (default: 7d)", when accepted
    whom: str = ""  # "the defaults", "the service", "the defaults and the service"
    notes: tuple[str, ...] = ()
    unrecorded: tuple[str, ...] = ()  # gating checks (the service's) this config lacks

    @property
    def warning(self) -> str | None:
        """The first line of every report made with weaker settings."""
        if not self.weaker:
            return None
        return f"WARNING: evaluated with weaker settings than {self.whom}: " + "; ".join(
            self.weaker
        )

    def as_json(self, notes: Sequence[str] = ()) -> dict[str, Any]:
        return {
            **self.rules.as_json(),
            "accept_weaker_settings": self.accepted,
            "weaker": list(self.weaker),
            "notes": [*self.notes, *notes],
        }


def default_rules(plan_checks: Sequence[str]) -> GateRules:
    # The plan's checks are the default list (migration 005's are GateSettings' default).
    return GateRules.of(GateSettings(checks=tuple(plan_checks)), plan_checks)


def resolve(
    gate: GateSettings,
    plan_checks: Sequence[str],
    service: GateRules | None,
    known_checks: Sequence[str],
) -> ResolvedRules:
    """The rules to evaluate with, from the configuration, the defaults and the service's
    last recorded rules (None when evaluating as the service, or it never recorded any)."""
    configured = GateRules.of(gate, plan_checks)
    notes = []
    left_out = [c for c in plan_checks if c not in gate.checks]
    if left_out:
        notes.append(f"gate.checks leaves out {', '.join(left_out)}; migration 005 gates on "
                     f"{', '.join(plan_checks)} regardless")  # fmt: skip
    floors = {"default": default_rules(plan_checks)}
    if service is not None:
        floors["service"] = service
    if gate.accept_weaker_settings:
        return _accepted(configured, floors, notes)
    rules = configured
    for floor in floors.values():
        rules = rules.strongest(floor)
    names = {"default": "the default", "service": "the service's last recorded"}
    for name in configured.weaker_than(rules):
        by = " and ".join(f"{names[who]} {floor.shown(name)}" for who, floor in floors.items()
                          if name in configured.weaker_than(floor))  # fmt: skip
        notes.append(f"gate.{name} {configured.shown(name)} is weaker than {by}, which applies "
                     "(gate.accept_weaker_settings = true evaluates with it)")  # fmt: skip
    unrecorded = tuple(c for c in rules.checks if c not in known_checks)
    return ResolvedRules(rules, accepted=False, notes=tuple(notes), unrecorded=unrecorded)


def _accepted(
    configured: GateRules, floors: dict[str, GateRules], notes: list[str]
) -> ResolvedRules:
    weaker: list[str] = []
    whom: list[str] = []
    for name in configured.as_json():
        than = [(who, f) for who, f in floors.items() if name in configured.weaker_than(f)]
        if than:
            shown = ", ".join(f"{who}: {floor.shown(name)}" for who, floor in than)
            weaker.append(f"{name} {configured.shown(name)} ({shown})")
            whom += [who for who, _ in than if who not in whom]
    names = {"default": "the defaults", "service": "the service"}
    return ResolvedRules(
        configured, accepted=True, weaker=tuple(weaker),
        whom=" and ".join(names[w] for w in sorted(whom)), notes=tuple(notes),
    )  # fmt: skip
