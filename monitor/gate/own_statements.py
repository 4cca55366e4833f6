"""dq-monitor's own statements on the monitored table, which the gate must not count as readers.

Every statement dq-monitor sends that reads the deprecated counters carries a marker
(`/* dq-monitor:<name> */`, see checks.statement_marker) after its first keyword and is
built here or in its check. The gate leaves a pg_stat_statements entry out of the readers
only when its text is, token for token with constants blanked, one of these statements
rendered for the configured names: a marker copied onto another query does not hide it,
whichever role runs it.
"""

from __future__ import annotations

from psycopg import sql

from checks import TableRef, check_env, statement_marker, table_ref
from checks.counter_writes import CounterWrites, CounterWritesSettings
from config import Settings
from monitor.gate.sqltext import canonical, rendered

_MIGRATE = statement_marker("migrate")


def checksum_sql(
    source: sql.Composable, run: sql.Composable, cols: list[sql.Composable]
) -> sql.Composed:
    """A row count and an order-independent checksum (the sum of a 64-bit hash per row)."""
    row = sql.SQL(" || ':' || ").join(
        [sql.SQL("{}::text").format(run)]
        + [sql.SQL("coalesce({}::text, '')").format(c) for c in cols]
    )
    return sql.SQL(
        "SELECT {} count(*), coalesce(sum(hashtextextended({}, 0)::numeric), 0)::text FROM {}"
    ).format(_MIGRATE, row, source)


def table_checksum_sql(ref: TableRef) -> sql.Composed:
    """The counters' checksum in the monitored table, before they are archived."""
    return checksum_sql(ref.ident, ref.col("run_id"), [ref.col("completed_workers"),
                                                       ref.col("failed_workers")])  # fmt: skip


def copy_out_sql(ref: TableRef) -> sql.Composed:
    """The counters of every run, for the archive."""
    return sql.SQL("COPY {} (SELECT {}::text, {}, {} FROM {}) TO STDOUT").format(
        _MIGRATE, ref.col("run_id"), ref.col("completed_workers"), ref.col("failed_workers"),
        ref.ident,
    )  # fmt: skip


def restore_update_sql(ref: TableRef) -> sql.Composed:
    """Put the archived counters (in the temporary table dq_restore) back."""
    return sql.SQL(
        "UPDATE {mark} {t} AS rm SET {c} = r.c, {f} = r.f FROM dq_restore AS r"
        " WHERE rm.{run}::text = r.run_key"
    ).format(mark=_MIGRATE, t=ref.ident, c=ref.col("completed_workers"),
             f=ref.col("failed_workers"), run=ref.col("run_id"))  # fmt: skip


def restore_checksum_sql(ref: TableRef, side: str) -> sql.Composed:
    """The checksum of the restored runs as the table holds them (`table`) or as the
    archive does (`archive`); equal when the restore is exact."""
    match = sql.SQL("{t} AS rm JOIN dq_restore AS r ON rm.{run}::text = r.run_key").format(
        t=ref.ident, run=ref.col("run_id")
    )
    if side == "table":
        rows = sql.SQL("(SELECT rm.{run} AS k, rm.{c} AS c, rm.{f} AS f FROM {m}) AS j").format(
            run=ref.col("run_id"), c=ref.col("completed_workers"), f=ref.col("failed_workers"),
            m=match,
        )  # fmt: skip
    else:
        rows = sql.SQL("(SELECT r.run_key AS k, r.c, r.f FROM {m}) AS j").format(m=match)
    return checksum_sql(rows, sql.SQL("j.k"), [sql.SQL("j.c"), sql.SQL("j.f")])


def statements(settings: Settings) -> list[sql.Composed]:
    """Every statement this build sends that reads the counters, for the configured names."""
    ref = table_ref(settings.tables, "run_metadata")
    own = settings.checks.of("counter_writes", CounterWritesSettings)
    writes = CounterWrites("counter_writes", own, check_env(settings))
    return [
        writes.baseline_sql(),
        writes.diff_sql(),
        writes.total_sql(),
        writes.buckets_sql(),
        writes.bucket_rows_sql(),
        table_checksum_sql(ref),
        copy_out_sql(ref),
        restore_update_sql(ref),
        restore_checksum_sql(ref, "table"),
        restore_checksum_sql(ref, "archive"),
    ]


def recogniser(settings: Settings) -> frozenset[tuple[str, ...]]:
    """The canonical forms of `statements`: a text is ours when canonical(text) is one."""
    return frozenset(canonical(rendered(q.as_string(None))) for q in statements(settings))
