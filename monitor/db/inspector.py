"""Read-only inspection queries (doctor, gate evidence) with errors translated at the boundary."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import sql
from pydantic import SecretStr

from checks import describe_pg_error
from checks.pgerrors import is_connection_loss, is_timeout
from config import (
    DatabaseUnavailable,
    DqError,
    QueryFailed,
    QueryTimeout,
    StoreError,
    StoreUnavailable,
    redact,
)
from monitor.db.targets import secrets_of


class Inspector:
    """Read-only queries on one connection, psycopg errors translated at this boundary.

    `purpose` is "database" or "state store"; it picks the errors raised: QueryFailed,
    QueryTimeout and DatabaseUnavailable, or StoreError and StoreUnavailable.
    """

    def __init__(self, conn: psycopg.Connection[Any], url: SecretStr, purpose: str) -> None:
        self.conn = conn
        self.url = url
        self.purpose = purpose
        self.lost = False  # set once the connection is gone; later queries would fail too

    def rows(self, query: str | sql.SQL | sql.Composed, params: Sequence[Any] = ()) -> list[Any]:
        """All rows of a query. Raises the purpose's errors (see the class)."""
        found: list[Any] = self.call(lambda conn: conn.execute(query, params).fetchall())
        return found

    def value(self, query: str | sql.SQL | sql.Composed, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row, or None. Raises the purpose's errors."""
        found = self.rows(query, params)
        return found[0][0] if found else None

    def call(self, work: Callable[[psycopg.Connection[Any]], Any]) -> Any:
        """Run `work` on the connection. Raises the purpose's errors."""
        try:
            return work(self.conn)
        except psycopg.Error as exc:
            raise self._translate(exc) from exc

    def attempt(self, query: str) -> tuple[str, str] | None:
        """Run a query whose failure is an answer: (SQLSTATE, message) when it fails, else None.

        A timeout or a lost connection still raises (see the class).
        """
        try:
            self.conn.execute(query).fetchall()
        except psycopg.Error as exc:
            if is_timeout(exc) or is_connection_loss(exc):
                raise self._translate(exc) from exc
            return exc.sqlstate or "", self._describe(exc)
        return None

    def ident(self, *names: str) -> str:
        """A quoted (schema-qualified) name, for statements shown to people."""
        return sql.Identifier(*names).as_string(self.conn)

    def _describe(self, exc: BaseException) -> str:
        return redact(describe_pg_error(exc), secrets_of(self.url))

    def _translate(self, exc: psycopg.Error) -> DqError:
        store = self.purpose == "state store"
        detail = self._describe(exc)
        if is_timeout(exc):
            return (StoreError if store else QueryTimeout)(f"the query timed out: {detail}")
        if is_connection_loss(exc):
            self.lost = True
            lost = StoreUnavailable if store else DatabaseUnavailable
            return lost(f"lost the connection to the {self.purpose}: {detail}")
        return (StoreError if store else QueryFailed)(f"the query failed: {detail}")


