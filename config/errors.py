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
    ├── DeliveryError            an alert could not be delivered
    └── GateError                the migration gate refused or could not decide

A check that finds violations is data (a result), never one of these.
"""

from __future__ import annotations


class DqError(Exception):
    """Base of every error dq-monitor raises on purpose."""


class ConfigError(DqError):
    """The configuration (file, environment or command line) is invalid."""


class SetupError(ConfigError):
    """The database lacks a table, column, schema or grant that the configuration needs."""


class DatabaseError(DqError):
    """The monitored database could not evaluate a query."""


class DatabaseUnavailable(DatabaseError):
    """The monitored database cannot be reached or the connection was lost."""


class QueryTimeout(DatabaseError):
    """A query ran longer than statement_timeout and was cancelled."""


class QueryFailed(DatabaseError):
    """The server rejected a query; the message carries SQLSTATE and the server's text."""


class StoreError(DqError):
    """The state store could not be read or written."""


class StoreUnavailable(StoreError):
    """The state database cannot be reached or the connection was lost."""


class DeliveryError(DqError):
    """An alert could not be delivered to its route."""


class GateError(DqError):
    """The migration gate refused, or could not decide."""
