"""One door to the state schema: no SQL outside monitor/store/ names one of its tables."""

from __future__ import annotations

import ast
import re
from datetime import timedelta
from pathlib import Path

from pydantic import SecretStr

from alerts import SystemClock
from monitor.db import ConnectionSource
from monitor.store import STATE_TABLES
from monitor.store.state_store import StateStore

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("config", "checks", "alerts", "monitor")
STORE = ROOT / "monitor" / "store"
# Statement text is written in upper case here; English prose ("blocked by findings", "no
# active silences") is not SQL, so a literal counts only with one of these in it.
SQL_WORDS = re.compile(
    r"\b(SELECT|INSERT|UPDATE|DELETE|FROM|INTO|JOIN|TABLE|COPY|TRUNCATE|ALTER|WHERE)\b"
)
_CREATED = re.compile(r"CREATE TABLE (?:IF NOT EXISTS )?\{\w*\}\.(\w+)")
_DROPPED = re.compile(r"DROP TABLE (?:IF EXISTS )?\{\w*\}\.(\w+)")


def created_tables() -> set[str]:
    """Every table the state schema's upgrades create and a later upgrade does not drop,
    read from their DDL."""
    ddl = (STORE / "schema.py").read_text()
    return set(_CREATED.findall(ddl)) - set(_DROPPED.findall(ddl))


def _literals(tree: ast.AST) -> list[tuple[ast.AST, str, bool]]:
    """(node, text, is a call's argument) for every string literal but docstrings; an
    f-string is one literal, its replacement fields written as {}."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = body[0] if body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skip.add(id(first.value))
    arguments = {id(a) for n in ast.walk(tree) if isinstance(n, ast.Call) for a in n.args}
    found: list[tuple[ast.AST, str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            skip.update(id(v) for v in node.values)
            text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
            found.append((node, text, id(node) in arguments))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            found.append((node, node.value, id(node) in arguments))
    return found


def state_sql(source: str, tables: tuple[str, ...] = STATE_TABLES) -> list[tuple[int, str]]:
    """(line, table) wherever a literal names a state table in SQL: a statement's text that
    mentions it as a whole word, or the bare name passed to a call (sql.Identifier(schema,
    "check_runs"), a helper that qualifies it)."""
    word = re.compile(r"\b(" + "|".join(map(re.escape, tables)) + r")\b")
    hits = []
    for node, text, argument in _literals(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if argument and text in tables:
            hits.append((line, text))
        elif SQL_WORDS.search(text):
            hits.extend((line, name) for name in word.findall(text))
    return sorted(set(hits))


def outside_the_store() -> list[Path]:
    files = [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]
    return [p for p in files if STORE not in p.parents and ".venv" not in p.parts]


def test_the_table_list_is_every_table_an_upgraded_store_has(db_url):
    created = created_tables()
    assert created, "no CREATE TABLE found in monitor/store/schema.py"
    assert set(STATE_TABLES) == created
    assert len(STATE_TABLES) == len(created)
    source = ConnectionSource(
        SecretStr(db_url), purpose="state store", connect_timeout=timedelta(seconds=5)
    )
    try:
        store = StateStore(source, "dq_one_door", 20, SystemClock())
        store.upgrade()
        with store.session("listing the state tables") as conn:
            rows = conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                ("dq_one_door",),
            ).fetchall()
    finally:
        source.close()
    assert {r[0] for r in rows} == set(STATE_TABLES)


def test_the_scanner_flags_state_table_sql_and_nothing_else():
    flagged = '''
conn.execute("SELECT id FROM dq_monitor.check_runs WHERE id = %s", (1,))
table = sql.Identifier(schema, "pgss_samples")
rows = f"DELETE FROM {schema}.migration_archive WHERE audit_id = %s"
query = ("UPDATE {} SET value = %s"
         " WHERE key = 'x'  -- service_state")
kept = self._t("findings")
'''
    assert [name for _, name in state_sql(flagged)] == [
        "check_runs", "pgss_samples", "migration_archive", "service_state", "findings",
    ]  # fmt: skip
    assert [line for line, _ in state_sql(flagged)] == [2, 3, 4, 5, 7]
    clean = '''
"""Reads check_runs (a docstring is not SQL)."""
def f(check_runs):
    """Also not SQL: FROM check_runs."""
    print("no active silences; blocked by findings")
    payload = {"silences": [], "findings": check_runs}
    return payload["silences"], "dq_check_runs", "SELECT 1 FROM check_runs_old"
'''
    assert state_sql(clean) == []


def test_no_state_table_sql_outside_monitor_store():
    files = outside_the_store()
    assert any(p.name == "gatekeeper.py" for p in files)  # the walk found the packages
    hits = [
        f"{p.relative_to(ROOT)}:{line}: {name}"
        for p in files
        for line, name in state_sql(p.read_text())
    ]
    assert hits == [], "state-schema SQL belongs in monitor/store/:\n" + "\n".join(hits)
