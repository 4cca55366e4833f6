"""The terms consistency parts declare for the screen and the signature, and how they merge."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from psycopg import sql

from .identifiers import TableRef

_FALSE = sql.SQL("false")


@dataclass(frozen=True)
class Term:
    """A named SQL expression; parts that declare the same name share one emitted copy."""

    name: str
    expr: sql.Composable


@dataclass(frozen=True)
class Terms:
    """What a part adds to the screen or the signature.

    `progress` and `workers` are aggregates over partition_progress and worker_runs rows,
    which become the columns of `p` and `w`; `tests` are expressions over those columns. In
    the screen, `p` and `w` hold one row per run (full joined, so either side may be NULL)
    and each test is a predicate, true for a suspect run. In the signature, `p` and `w` are
    one row each and each test is a number. Expressions may use the parameters
    %(completed_status)s and %(failed_status)s.
    """

    progress: tuple[Term, ...] = ()
    workers: tuple[Term, ...] = ()
    tests: tuple[Term, ...] = ()


@dataclass(frozen=True)
class RowFlag:
    """A condition on one row of either table that the exact sweep counts per partition, as
    column `name` of `j`, for parts whose judgment needs more than the flags and statuses."""

    name: str
    progress: sql.Composable = field(default_factory=lambda: _FALSE)
    workers: sql.Composable = field(default_factory=lambda: _FALSE)


@dataclass(frozen=True)
class TermTables:
    """The tables terms are written against, and how their ids hash."""

    pp: TableRef
    wr: TableRef
    #: Both partition_id columns are integers (hashed without a text cast).
    integer_ids: bool = False

    def id_hash(self, table: TableRef) -> sql.Composed:
        """A 64-bit hash of a row's partition id (equal in both tables for equal ids)."""
        return id_hash_sql(table.col("partition_id"), self.integer_ids)

    def row_hash(self, table: TableRef) -> sql.Composed:
        """A 64-bit hash of a row's (run id, partition id)."""
        return row_hash_sql(table.col("run_id"), table.col("partition_id"), self.integer_ids)


def terminal_signature(t: TermTables) -> Terms:
    """Failed and completed (run, partition) hash sums of progress minus those of worker rows:
    zero when every run's terminal partitions match its terminal worker rows one to one."""
    pp_hash, wr_hash = t.row_hash(t.pp), t.row_hash(t.wr)
    status = t.wr.col("status")
    return Terms(
        progress=(
            Term("f", sql.SQL("sum({}) FILTER (WHERE {})").format(pp_hash, t.pp.col("failed"))),
            Term("c", sql.SQL("sum({}) FILTER (WHERE {})").format(pp_hash, t.pp.col("completed"))),
        ),
        workers=(
            Term("f", sql.SQL("sum({}) FILTER (WHERE {} = %(failed_status)s)").format(
                wr_hash, status)),
            Term("c", sql.SQL("sum({}) FILTER (WHERE {} = %(completed_status)s)").format(
                wr_hash, status)),
        ),
        tests=(
            Term("failed", sql.SQL("coalesce(p.f, 0) - coalesce(w.f, 0)")),
            Term("completed", sql.SQL("coalesce(p.c, 0) - coalesce(w.c, 0)")),
        ),
    )  # fmt: skip


def merge_terms(declared: Sequence[Terms]) -> Terms:
    """All the parts' terms, each name once per table (and once among the tests)."""
    return Terms(
        progress=unique_named(t for terms in declared for t in terms.progress),
        workers=unique_named(t for terms in declared for t in terms.workers),
        tests=unique_named(t for terms in declared for t in terms.tests),
    )


_Named = TypeVar("_Named", Term, RowFlag)


def unique_named(named: Iterable[_Named]) -> tuple[_Named, ...]:
    """Each name once, in order; a name declared twice must mean the same SQL."""
    seen: dict[str, _Named] = {}
    for item in named:
        if seen.setdefault(item.name, item) != item:
            raise ValueError(f"two consistency parts declare {item.name!r} differently")
    return tuple(seen.values())


def aliased(terms: Sequence[Term]) -> sql.Composed:
    return sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(t.expr, sql.Identifier(t.name)) for t in terms
    )


def leading(terms: Sequence[Term], reserved: Sequence[str]) -> sql.Composable:
    """Aliased terms followed by a comma (nothing when there are none)."""
    if clash := [t.name for t in terms if t.name in reserved]:
        raise ValueError(f"a consistency part's screen term may not be called {clash[0]!r}")
    return sql.SQL("{}, ").format(aliased(terms)) if terms else sql.SQL("")


def row_hash_sql(run: sql.Identifier, partition: sql.Identifier, integer: bool) -> sql.Composed:
    """A 64-bit hash of (run id, partition id): the partition id seeds the run id's hash."""
    seed = sql.SQL("{}::int8").format(partition) if integer else id_hash_sql(partition, False)
    return sql.SQL("hashtextextended({}::text, {})").format(run, seed)


def id_hash_sql(column: sql.Identifier, integer: bool) -> sql.Composed:
    """A 64-bit hash of a partition id; integers skip the text conversion."""
    if integer:
        return sql.SQL("hashint8extended({}::int8, 0)").format(column)
    return sql.SQL("hashtextextended({}::text, 0)").format(column)
