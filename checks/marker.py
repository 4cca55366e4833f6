"""The comment that marks dq-monitor's own statements in pg_stat_statements' query text."""

from __future__ import annotations

import re

from psycopg import sql

_NAME = re.compile(r"[a-z0-9_]+")


def statement_marker(name: str) -> sql.SQL:
    """`/* dq-monitor:<name> */`, to follow a statement's first keyword.

    The gate recognises its own statements by this marker and their exact text; the marker
    goes after the first keyword because pg_stat_statements drops comments before the first
    token. Raises ValueError for a name that could end the comment early.
    """
    if not _NAME.fullmatch(name):
        raise ValueError(f"marker name {name!r}: lower-case letters, digits and underscores only")
    return sql.SQL("/* dq-monitor:" + name + " */")
