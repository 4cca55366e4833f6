"""Custom checks from the config file: every row the SQL returns is one violation."""

from __future__ import annotations

from psycopg import sql

from config import CustomCheckSettings

from .check import CheckEnv, SingleCheckProbe, Window
from .result import NON_FINITE_NOTE, Evaluation, Mode, RunFindings, has_non_finite, to_json_value
from .snapshot import Snapshot

__all__ = ["CustomCheck", "CustomCheckSettings"]


class CustomCheck(SingleCheckProbe):
    incremental = False  # arbitrary SQL has no notion of runs: always a full evaluation

    settings: CustomCheckSettings

    def __init__(self, name: str, settings: CustomCheckSettings, env: CheckEnv) -> None:
        super().__init__(name, settings, env)

    @property
    def description(self) -> str:
        return self.settings.description or f"Custom check {self.name}: rows returned by its SQL."

    def reproduce_sql(self) -> str:
        return self.settings.sql + ";"

    def judge(self, snap: Snapshot, window: Window) -> Evaluation:
        snap.cursor.execute(self.wrapped_sql())
        names = [d.name for d in snap.cursor.description or ()]
        rows = snap.cursor.fetchall()
        total = int(rows[0][0]) if rows else 0
        samples = tuple(
            {name: to_json_value(value) for name, value in zip(names[1:], row[1:], strict=True)}
            for row in rows
        )
        findings = (RunFindings("", total, samples),) if total else ()
        non_finite = any(has_non_finite(value) for row in rows for value in row[1:])
        return Evaluation(
            mode=Mode.FULL, snapshot_at=snap.now, watermark=snap.now, findings=findings,
            note=NON_FINITE_NOTE if non_finite else None,
        )  # fmt: skip

    def wrapped_sql(self) -> sql.Composed:
        # The user's SQL is never passed through format(): braces and % in it stay literal,
        # and no parameters are sent, so psycopg does not look for placeholders.
        return sql.Composed([
            sql.SQL("SELECT count(*) OVER () AS dq_total, dq_q.* FROM ("),
            sql.SQL(self.settings.sql),
            sql.SQL(") AS dq_q LIMIT "),
            sql.Literal(self.env.sample_limit),
        ])  # fmt: skip
