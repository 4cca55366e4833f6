"""The one exception tree of dq-monitor; every layer raises these and only these.

    DqError                      base: one line that says what to do next
    ├── ConfigError              a setting, the config file or the command line is wrong (exit 2)
    │   └── SetupError           a table, column, schema or grant the settings need is missing
    ├── DatabaseError            the monitored database could not answer
    │   ├── DatabaseUnavailable  cannot connect, or the connection was lost (exit 3)
    │   ├── QueryTimeout         statement_timeout cancelled the query
    │   └── QueryFailed          the server rejected the SQL (SQLSTATE in the message)
    ├── StoreError               the state store could not be read or written
    │   └── StoreUnavailable     cannot connect to the state database (exit 3)
    └── GateError                the migration gate refused or could not decide

A check that finds violations is data (a result), never one of these. Each class names its
kind (recorded with a failed check run, e.g. "unavailable") and its exit code: this tree is
the one place that maps an error to both.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

#: The documented exit codes of every command (README "Run the checks once"). 4 is the gate's
#: "not yet".
EXIT_OK, EXIT_VIOLATIONS, EXIT_CONFIG, EXIT_UNAVAILABLE, EXIT_NOT_YET = 0, 1, 2, 3, 4


class DqError(Exception):
    """Base of every error dq-monitor raises on purpose."""

    #: A short, stable name of the kind of error, recorded with a check run that failed.
    kind: ClassVar[str] = "failed"
    #: The documented exit code of a command that ends with this error.
    exit_code: ClassVar[int] = EXIT_VIOLATIONS


class ConfigError(DqError):
    """The configuration (file, environment or command line) is invalid."""

    kind = "config"
    exit_code = EXIT_CONFIG


class SetupError(ConfigError):
    """The database lacks a table, column, schema or grant that the configuration needs."""


class DatabaseError(DqError):
    """The monitored database could not evaluate a query."""


class DatabaseUnavailable(DatabaseError):
    """The monitored database cannot be reached or the connection was lost."""

    kind = "unavailable"
    exit_code = EXIT_UNAVAILABLE


class QueryTimeout(DatabaseError):
    """A query ran longer than statement_timeout and was cancelled."""

    kind = "timeout"


class QueryFailed(DatabaseError):
    """The server rejected a query; the message carries SQLSTATE and the server's text."""


class StoreError(DqError):
    """The state store could not be read or written."""


class StoreUnavailable(StoreError):
    """The state database cannot be reached or the connection was lost."""

    kind = "unavailable"
    exit_code = EXIT_UNAVAILABLE


class GateError(DqError):
    """The migration gate refused, or could not decide."""


#: Exit codes of the kinds, for results that carry a kind rather than an exception.
KIND_EXIT_CODES = {
    kind.kind: kind.exit_code
    for kind in (DqError, ConfigError, DatabaseUnavailable, QueryTimeout, StoreUnavailable)
}


def exit_code_of_kinds(kinds: Iterable[str | None], *, problems: bool) -> int:
    """The exit code of a command whose checks failed with these kinds (None: no error).

    An unreachable database outranks a configuration error, which outranks violations;
    `problems` says whether any check found violations or failed at all.
    """
    codes = {KIND_EXIT_CODES.get(k or "", EXIT_VIOLATIONS) for k in kinds if k is not None}
    for code in (EXIT_UNAVAILABLE, EXIT_CONFIG):
        if code in codes:
            return code
    return EXIT_VIOLATIONS if problems or codes else EXIT_OK
