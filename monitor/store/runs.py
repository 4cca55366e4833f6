"""Check runs and their carried-forward findings: recording them, and what later runs read."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Json

from checks import Check, Evaluation, Mode, Sample

from .tables import StateTables

SKIPPED = ("missed", "overlap")


def lock_check(conn: psycopg.Connection[Any], t: StateTables, name: str) -> None:
    # Two recorders of one check (replicas in a hand-over, a cron `check` beside the
    # service) take turns, so the findings they replace never interleave.
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
        (f"dq-monitor:{t.schema}:{name}",),
    )


def insert_run(
    conn: psycopg.Connection[Any],
    t: StateTables,
    check: Check,
    *,
    status: str,
    mode: Mode,
    started_at: dt.datetime,
    finished_at: dt.datetime,
    duration: float | None,
    trigger: str,
    host: str,
    violations: int | None = None,
    samples: Sequence[Sample] = (),
    evaluation: Evaluation | None = None,
    error: str | None = None,
    error_kind: str | None = None,
) -> int:
    """Insert one check_runs row; returns its id."""
    row = conn.execute(
        sql.SQL(
            "INSERT INTO {} (check_name, started_at, finished_at, mode, status, severity,"
            " violations, samples, error, error_kind, note, snapshot_at, watermark,"
            " judged_runs, duration_seconds, fingerprint, trigger, host, interval_seconds)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " %s)"
            " RETURNING id"
        ).format(t("check_runs")),
        (
            check.name, started_at, finished_at, mode.value, status, check.severity.value,
            violations, Json(list(samples)), error, error_kind,
            evaluation.note if evaluation else None,
            evaluation.snapshot_at if evaluation else None,
            evaluation.watermark if evaluation else None,
            evaluation.judged_count if evaluation else None,
            duration, check.fingerprint(), trigger, host,
            # The schedule in force for this run: the gate judges gaps by it, not by the
            # setting of whoever evaluates the gate later.
            check.settings.typical_interval(finished_at).total_seconds(),
        ),
    ).fetchone()  # fmt: skip
    assert row is not None
    return int(row[0])


def replace_findings(
    conn: psycopg.Connection[Any], t: StateTables, name: str, evaluation: Evaluation
) -> None:
    """Replace the findings of the runs `evaluation` judged; keep the rest."""
    findings = t("findings")
    if evaluation.judged is None:
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE check_name = %s AND NOT (run_key = ANY(%s))").format(
                findings
            ),
            (name, list(evaluation.unsettled)),
        )
    elif evaluation.judged:
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE check_name = %s AND run_key = ANY(%s)").format(
                findings
            ),
            (name, list(evaluation.judged)),
        )
    if evaluation.expire_before is not None:
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE check_name = %s AND judged_at < %s").format(findings),
            (name, evaluation.expire_before),
        )
    if not evaluation.findings:
        return
    with conn.cursor().copy(
        sql.SQL("COPY {} (check_name, run_key, violations, samples, judged_at) FROM STDIN").format(
            findings
        )
    ) as copy:
        for f in evaluation.findings:
            copy.write_row(
                (name, f.run_key, f.violations, Json(list(f.samples)), evaluation.snapshot_at)
            )


def totals(
    conn: psycopg.Connection[Any], t: StateTables, check: Check, now: dt.datetime, limit: int
) -> tuple[int, tuple[Sample, ...]]:
    """The check's violations over all its findings, and up to `limit` samples of them."""
    findings = t("findings")
    row = conn.execute(
        sql.SQL("SELECT coalesce(sum(violations), 0) FROM {} WHERE check_name = %s").format(
            findings
        ),
        (check.name,),
    ).fetchone()
    total = int(row[0]) if row else 0
    # Deterministic order (shorter keys first, so run 9 precedes run 10) makes an
    # incremental run and a full sweep pick the same samples.
    rows = conn.execute(
        sql.SQL(
            "SELECT samples FROM {} WHERE check_name = %s"
            " ORDER BY length(run_key), run_key LIMIT %s"
        ).format(findings),
        (check.name, limit),
    ).fetchall()
    samples: list[Sample] = []
    for (run_samples,) in rows:
        samples.extend(check.refresh_sample(s, now) for s in run_samples)
    return total, tuple(samples[:limit])


def window_start(
    conn: psycopg.Connection[Any], t: StateTables, check: Check
) -> dt.datetime | None:
    """The watermark of the check's last successful run, if its findings can be carried on."""
    row = conn.execute(
        sql.SQL(
            "SELECT watermark, fingerprint FROM {} WHERE check_name = %s"
            " AND status IN ('ok', 'violation') ORDER BY id DESC LIMIT 1"
        ).format(t("check_runs")),
        (check.name,),
    ).fetchone()
    if row is None or row[1] != check.fingerprint() or row[0] is None:
        return None
    watermark: dt.datetime = row[0]
    return watermark


def last_full_sweep(
    conn: psycopg.Connection[Any], t: StateTables, names: Sequence[str]
) -> dt.datetime | None:
    """When every named check last completed a full sweep (the oldest of them), if ever."""
    rows = conn.execute(
        sql.SQL(
            "SELECT check_name, max(finished_at) FROM {} WHERE check_name = ANY(%s)"
            " AND mode = 'full' AND status IN ('ok', 'violation') GROUP BY check_name"
        ).format(t("check_runs")),
        (list(names),),
    ).fetchall()
    if len(rows) < len(set(names)):
        return None
    oldest: dt.datetime = min(r[1] for r in rows)
    return oldest


def known_runs(
    conn: psycopg.Connection[Any], t: StateTables, names: Sequence[str]
) -> frozenset[str] | None:
    """Runs with findings of the named checks now, or None when none of them ever ran."""
    ran = conn.execute(
        sql.SQL(
            "SELECT EXISTS (SELECT FROM {} WHERE check_name = ANY(%s)"
            " AND status IN ('ok', 'violation'))"
        ).format(t("check_runs")),
        (list(names),),
    ).fetchone()
    if not ran or not ran[0]:
        return None
    rows = conn.execute(
        sql.SQL(
            "SELECT DISTINCT run_key FROM {} WHERE check_name = ANY(%s) AND run_key <> ''"
        ).format(t("findings")),
        (list(names),),
    ).fetchall()
    return frozenset(r[0] for r in rows)
