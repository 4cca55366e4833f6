"""Real PostgreSQL for the tests: DQ_TEST_DATABASE_URL, or an embedded server started here."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql

from checks import reference_schema
from monitor.demo.embedded import EmbeddedPostgres

# Read at import, before the autouse fixture below clears every DQ_* variable.
EXTERNAL_URL = os.environ.get("DQ_TEST_DATABASE_URL")
TEMPLATE = "dq_test_template"


@dataclass
class TestServer:
    """The server the suite uses, and how to make a fresh database on it."""

    admin_url: str
    embedded: EmbeddedPostgres | None

    def url(self, dbname: str) -> str:
        return psycopg.conninfo.make_conninfo(self.admin_url, dbname=dbname)

    def create_database(self, *, schema: bool = True) -> tuple[str, str]:
        name = f"dq_test_{uuid.uuid4().hex[:12]}"
        template = (
            sql.SQL(" TEMPLATE {}").format(sql.Identifier(TEMPLATE)) if schema else sql.SQL("")
        )
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}{}").format(sql.Identifier(name), template))
        return name, self.url(name)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _prepare_template(server: TestServer) -> None:
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TEMPLATE))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
    with psycopg.connect(server.url(TEMPLATE), autocommit=True) as conn:
        conn.execute(reference_schema())  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[TestServer]:
    if EXTERNAL_URL:
        server = TestServer(EXTERNAL_URL, None)
        _prepare_template(server)
        yield server
        return
    embedded = EmbeddedPostgres()
    embedded.init()
    embedded.start()
    server = TestServer(embedded.url(), embedded)
    try:
        _prepare_template(server)
        yield server
    finally:
        embedded.cleanup()


@pytest.fixture
def db_url(pg_server: TestServer) -> Iterator[str]:
    """A fresh database holding the reference schema, dropped after the test."""
    name, url = pg_server.create_database()
    yield url
    pg_server.drop_database(name)


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the test's database, for seeding and inspecting."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def sql_ascii_db_url(pg_server: TestServer) -> Iterator[str]:
    """A fresh SQL_ASCII database (the server stores bytes unchecked) with the reference schema."""
    name = f"dq_test_ascii_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "CREATE DATABASE {} TEMPLATE template0 ENCODING 'SQL_ASCII'"
                " LC_COLLATE 'C' LC_CTYPE 'C'"
            ).format(sql.Identifier(name))
        )
    url = pg_server.url(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(reference_schema())  # type: ignore[arg-type]
    yield url
    pg_server.drop_database(name)


@pytest.fixture
def private_pg() -> Iterator[EmbeddedPostgres]:
    """A durable server of the test's own, for tests that crash or restart it."""
    server = EmbeddedPostgres(durable=True)
    server.init()
    server.start()
    try:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute(reference_schema())  # type: ignore[arg-type]
        yield server
    finally:
        server.cleanup()


@pytest.fixture(autouse=True)
def _clean_dq_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No DQ_* variable from the caller's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("DQ_"):
            monkeypatch.delenv(name)


@pytest.fixture
def readme_role(db_url: str, db: psycopg.Connection) -> Iterator[str]:
    """The README's grants block run as written; yields the URL of its dq_monitor role."""
    from tests.monitor.doctor.test_grants import grants_sql

    dbname = db.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
    db.execute("DROP ROLE IF EXISTS dq_monitor")
    db.execute("CREATE EXTENSION pg_stat_statements")
    db.execute(grants_sql(dbname))  # type: ignore[arg-type]
    yield psycopg.conninfo.make_conninfo(db_url, user="dq_monitor", password="change-me")
    db.execute("DROP OWNED BY dq_monitor CASCADE")
    db.execute("DROP ROLE dq_monitor")
