"""Check catalogue: each check's SQL and how its rows become a result; no scheduling or alerts."""

from __future__ import annotations

from .catalogue import all_checks, build_probes, check_env, select_checks
from .check import Check, CheckEnv, IndexSpec, Probe, Window
from .identifiers import TableRef, table_ref
from .marker import statement_marker
from .pgerrors import describe as describe_pg_error
from .pgerrors import is_connection_loss, is_timeout
from .reference import migration_005, reference_schema
from .registry import REGISTRY, BuiltinCheck, Registry
from .result import (
    CheckResult,
    Evaluation,
    JsonValue,
    Memory,
    MemoryUpdate,
    Mode,
    RunFindings,
    Sample,
    Status,
)

__all__ = [
    "REGISTRY",
    "BuiltinCheck",
    "Check",
    "CheckEnv",
    "CheckResult",
    "Evaluation",
    "IndexSpec",
    "JsonValue",
    "Memory",
    "MemoryUpdate",
    "Mode",
    "Probe",
    "Registry",
    "RunFindings",
    "Sample",
    "Status",
    "TableRef",
    "Window",
    "all_checks",
    "build_probes",
    "check_env",
    "describe_pg_error",
    "is_connection_loss",
    "is_timeout",
    "migration_005",
    "reference_schema",
    "select_checks",
    "statement_marker",
    "table_ref",
]
