"""The doctor's items (one line of the diagnosis each) and how a database's steps run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from config import DatabaseUnavailable, DqError, StoreUnavailable

GRANTS = '(README "Database grants")'
# Whether a schema exists and what the role may do in it; by name, not to_regnamespace(),
# so a missing grant is an answer rather than an error.
SCHEMA_PRIVILEGES = (
    "SELECT oid, has_schema_privilege(oid, 'USAGE'), has_schema_privilege(oid, 'CREATE')"
    " FROM pg_namespace WHERE nspname = %s"
)


class ItemStatus(StrEnum):
    """How an item stands; only PROBLEM makes `doctor` exit 2."""

    OK = "ok"
    PROBLEM = "problem"
    SKIPPED = "skipped"  # not looked at, because of a problem reported before it


@dataclass(frozen=True)
class DoctorItem:
    """One line of the diagnosis: what was looked at, how it stands, and what to do."""

    name: str
    status: ItemStatus
    detail: str
    hint: str | None = None


def ok(name: str, detail: str) -> DoctorItem:
    return DoctorItem(name, ItemStatus.OK, detail)


def problem(name: str, detail: str, hint: str | None = None) -> DoctorItem:
    return DoctorItem(name, ItemStatus.PROBLEM, detail, hint)


def skipped(name: str, detail: str) -> DoctorItem:
    return DoctorItem(name, ItemStatus.SKIPPED, detail)


def healthy(items: Sequence[DoctorItem]) -> bool:
    """True when no item is a problem."""
    return all(item.status is not ItemStatus.PROBLEM for item in items)


Step = tuple[str, Callable[[], list[DoctorItem]]]


def run_steps(steps: Sequence[Step], prefix: str, covered: str) -> list[DoctorItem]:
    """Run each step; a failed step is a problem item, a lost connection ends the database."""
    items: list[DoctorItem] = []
    for name, step in steps:
        try:
            items.extend(step())
        except (DatabaseUnavailable, StoreUnavailable) as exc:
            items.append(problem(name, str(exc), "check that the server is up, then run again"))
            items.append(
                skipped(f"{prefix}.skipped", f"the other {covered} items: connection lost")
            )
            break
        except DqError as exc:  # a query failed or timed out: this item cannot be decided
            items.append(problem(name, str(exc)))
    return items
