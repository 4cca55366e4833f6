"""The state schema's versioned, idempotent upgrades, serialized by an advisory lock."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from config import StoreError
from monitor.store.tables import qualified

# Each entry upgrades the schema by one version; never edit one that has shipped, add another.
MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "check runs, findings, per-check stats, service state and the counter ledger",
        """
        CREATE TABLE {s}.check_runs (
            id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            check_name   text NOT NULL,
            started_at   timestamptz NOT NULL,
            finished_at  timestamptz NOT NULL,
            mode         text NOT NULL CHECK (mode IN ('incremental', 'full')),
            -- missed / overlap: the scheduler could not run it (late, or still running)
            status       text NOT NULL
                         CHECK (status IN ('ok', 'violation', 'error', 'missed', 'overlap')),
            severity     text NOT NULL,
            violations   bigint,
            samples      json NOT NULL DEFAULT '[]',  -- json keeps the key order people read
            error        text,
            error_kind   text,
            note         text,
            snapshot_at  timestamptz,
            watermark    timestamptz,
            judged_runs  integer,
            duration_seconds double precision,
            fingerprint  text NOT NULL,
            trigger      text NOT NULL DEFAULT 'manual',
            host         text
        );
        CREATE INDEX check_runs_check_id_idx ON {s}.check_runs (check_name, id DESC);
        CREATE INDEX check_runs_started_at_idx ON {s}.check_runs (started_at);
        CREATE TABLE {s}.findings (
            check_name  text NOT NULL,
            run_key     text NOT NULL,
            violations  bigint NOT NULL CHECK (violations > 0),
            samples     json NOT NULL,
            judged_at   timestamptz NOT NULL,
            PRIMARY KEY (check_name, run_key)
        );
        CREATE TABLE {s}.counter_ledger (
            check_name  text NOT NULL,
            run_key     text NOT NULL,
            completed   bigint,
            failed      bigint,
            PRIMARY KEY (check_name, run_key)
        );
        CREATE TABLE {s}.check_stats (
            check_name       text PRIMARY KEY,
            severity         text NOT NULL,
            last_status      text,
            last_mode        text,
            last_violations  bigint NOT NULL DEFAULT 0,
            last_run_at      timestamptz,
            last_success_at  timestamptz,
            last_duration    double precision,
            runs_total       bigint NOT NULL DEFAULT 0,
            errors_total     bigint NOT NULL DEFAULT 0,
            missed_total     bigint NOT NULL DEFAULT 0,
            overlaps_total   bigint NOT NULL DEFAULT 0,
            duration_buckets bigint[] NOT NULL DEFAULT '{{}}',
            duration_sum     double precision NOT NULL DEFAULT 0
        );
        CREATE TABLE {s}.service_state (
            key        text PRIMARY KEY,
            value      jsonb NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE {s}.ledger_baselines (
            check_name  text PRIMARY KEY,
            taken_at    timestamptz NOT NULL,
            fingerprint text NOT NULL
        );
        """,
    ),
    (
        "alert state, the alert outbox and silences",
        """
        CREATE TABLE {s}.alert_state (
            fingerprint     text PRIMARY KEY,
            check_name      text NOT NULL,
            route           text NOT NULL,
            state           text NOT NULL CHECK (state IN ('inactive', 'pending', 'firing')),
            failing_runs    integer NOT NULL DEFAULT 0,
            active_since    timestamptz,
            last_sent_at    timestamptz,
            last_sent_kind  text,
            last_keys       json NOT NULL DEFAULT '[]',
            last_violations bigint NOT NULL DEFAULT 0,
            updated_at      timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE {s}.alert_outbox (
            id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            idempotency_key text NOT NULL UNIQUE,
            fingerprint     text NOT NULL,
            check_name      text NOT NULL,
            route           text NOT NULL,
            kind            text NOT NULL,
            payload         json NOT NULL,
            status          text NOT NULL DEFAULT 'pending'
                            CHECK (status IN ('pending', 'sent', 'dead')),
            attempts        integer NOT NULL DEFAULT 0,
            created_at      timestamptz NOT NULL,
            next_attempt_at timestamptz NOT NULL,
            sent_at         timestamptz,
            last_error      text,
            response_status integer
        );
        CREATE INDEX alert_outbox_due_idx ON {s}.alert_outbox (next_attempt_at)
            WHERE status = 'pending';
        CREATE TABLE {s}.silences (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            check_name  text NOT NULL,
            starts_at   timestamptz NOT NULL,
            ends_at     timestamptz NOT NULL CHECK (ends_at > starts_at),
            created_by  text NOT NULL,
            reason      text NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now(),
            removed_at  timestamptz,
            removed_by  text
        );
        CREATE INDEX silences_check_idx ON {s}.silences (check_name, ends_at);
        CREATE TABLE {s}.delivery_stats (
            route            text PRIMARY KEY,
            sent_total       bigint NOT NULL DEFAULT 0,
            failed_total     bigint NOT NULL DEFAULT 0,
            dead_total       bigint NOT NULL DEFAULT 0,
            duration_buckets bigint[] NOT NULL DEFAULT '{{}}',
            duration_sum     double precision NOT NULL DEFAULT 0
        );
        """,
    ),
    (
        "gate evidence samples, the migration archive and audit",
        """
        CREATE TABLE {s}.pgss_samples (
            sampled_at  timestamptz PRIMARY KEY,
            available   boolean NOT NULL,
            dealloc     bigint,
            stats_reset timestamptz
        );
        CREATE TABLE {s}.migration_audit (
            id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            action             text NOT NULL CHECK (action IN ('apply', 'rollback')),
            status             text NOT NULL CHECK (status IN ('started', 'applied', 'failed')),
            operator           text NOT NULL,
            database_user      text NOT NULL,
            started_at         timestamptz NOT NULL DEFAULT now(),
            finished_at        timestamptz,
            gate_evidence_hash text,
            sql_checksum       text NOT NULL,
            sql_text           text NOT NULL,
            archive_rows       bigint,
            archive_checksum   text,
            columns            json,
            error              text
        );
        CREATE TABLE {s}.migration_archive (
            audit_id          bigint NOT NULL REFERENCES {s}.migration_audit (id),
            run_key           text NOT NULL,
            completed_workers bigint,
            failed_workers    bigint,
            PRIMARY KEY (audit_id, run_key)
        );
        """,
    ),
    (
        "the interval each check run was scheduled with; the gate settings of each migration",
        """
        -- NULL in rows written before this version: the gate judges those by today's setting.
        ALTER TABLE {s}.check_runs ADD COLUMN interval_seconds double precision;
        ALTER TABLE {s}.migration_audit ADD COLUMN gate_settings jsonb;
        """,
    ),
    (
        "per-statement pg_stat_statements counters, for the gate's reader coverage",
        """
        -- statements: how many were sampled (NULL: only pg_stat_statements_info was);
        -- lost: how many of the previous sample's were gone or counted fewer calls.
        ALTER TABLE {s}.pgss_samples ADD COLUMN statements integer,
            ADD COLUMN lost integer, ADD COLUMN lost_detail text;
        -- The latest sample only, one row per statement: bounded by pg_stat_statements.max.
        CREATE TABLE {s}.pgss_statements (
            dbid        bigint NOT NULL,
            userid      bigint NOT NULL,
            queryid     bigint NOT NULL,
            toplevel    boolean NOT NULL,
            calls       bigint NOT NULL,
            stats_since timestamptz,
            PRIMARY KEY (dbid, userid, queryid, toplevel)
        );
        """,
    ),
    (
        "check memory: per-key values a check keeps between runs (was the counter ledger)",
        """
        -- One row per check that keeps memory: the settings fingerprint its memory is valid
        -- for; a check whose fingerprint changed starts a new baseline.
        CREATE TABLE {s}.check_memory_baselines (
            check_name  text PRIMARY KEY,
            taken_at    timestamptz NOT NULL,
            fingerprint text NOT NULL
        );
        -- Rows, not one document per check: a cycle rewrites only the keys that changed.
        CREATE TABLE {s}.check_memory (
            check_name  text NOT NULL,
            key         text NOT NULL,
            value       jsonb NOT NULL,
            PRIMARY KEY (check_name, key)
        );
        -- A deployed monitor keeps its ledger: losing it would re-baseline and miss writes.
        INSERT INTO {s}.check_memory_baselines (check_name, taken_at, fingerprint)
            SELECT check_name, taken_at, fingerprint FROM {s}.ledger_baselines;
        INSERT INTO {s}.check_memory (check_name, key, value)
            SELECT check_name, run_key, jsonb_build_array(completed, failed)
            FROM {s}.counter_ledger;
        DROP TABLE {s}.counter_ledger;
        DROP TABLE {s}.ledger_baselines;
        """,
    ),
    (
        "migration plans: each audit row names the plan it applied or rolled back",
        """
        -- Every row written before plans existed was migration 005's.
        ALTER TABLE {s}.migration_audit
            ADD COLUMN plan text NOT NULL DEFAULT 'drop_counter_columns';
        CREATE INDEX migration_audit_plan_idx ON {s}.migration_audit (plan, id DESC);
        """,
    ),
    (
        "indexes for a year of history: the gate's window, each check's last full sweep, retention",
        """
        -- The gate reads its checks' runs since a horizon: without this it walked every run
        -- of each gating check through (check_name, id) and filtered on finished_at.
        CREATE INDEX check_runs_check_finished_idx ON {s}.check_runs (check_name, finished_at);
        -- A check's successful full sweeps (one a day): the last one is found at once, and
        -- retention keeps it however old.
        CREATE INDEX check_runs_full_sweeps_idx ON {s}.check_runs (check_name, id DESC)
            WHERE mode = 'full' AND status IN ('ok', 'violation');
        -- Retention walks the old runs in (started_at, id) order, so each batch starts where
        -- the last one ended; it replaces the index on started_at alone.
        CREATE INDEX check_runs_started_id_idx ON {s}.check_runs (started_at, id);
        DROP INDEX {s}.check_runs_started_at_idx;
        """,
    ),
    (
        "pg_stat_statements samples per server: the primary and each hot standby",
        """
        -- Statistics are per server, so is their coverage. Every existing row is the
        -- primary's; a standby's rows are named by its host:port.
        ALTER TABLE {s}.pgss_samples ADD COLUMN server text NOT NULL DEFAULT 'primary';
        ALTER TABLE {s}.pgss_samples DROP CONSTRAINT pgss_samples_pkey,
            ADD PRIMARY KEY (server, sampled_at);
        ALTER TABLE {s}.pgss_statements ADD COLUMN server text NOT NULL DEFAULT 'primary';
        ALTER TABLE {s}.pgss_statements DROP CONSTRAINT pgss_statements_pkey,
            ADD PRIMARY KEY (server, dbid, userid, queryid, toplevel);
        """,
    ),
)

LATEST_VERSION = len(MIGRATIONS)


def upgrade(conn: psycopg.Connection[Any], schema: str, to: int = LATEST_VERSION) -> int:
    """Bring the state schema to version `to` (LATEST_VERSION unless a test stops earlier);
    returns how many versions were applied.

    Safe when several monitors start at once: a transaction-level advisory lock keyed on the
    schema name makes them take turns, and each re-reads the version under the lock.
    Raises StoreError when the schema is newer than this code; psycopg errors otherwise.
    """
    s = sql.Identifier(schema)
    with conn.transaction():
        conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"dq-monitor:{schema}",)
        )
        exists = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,)
        ).fetchone()
        if not exists or not exists[0]:
            # Only when missing: CREATE SCHEMA IF NOT EXISTS needs the database's CREATE
            # privilege even when the schema exists, which a least-privilege role lacks.
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(s))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.schema_version ("
                " version integer PRIMARY KEY,"
                " description text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            ).format(s)
        )
        row = conn.execute(
            sql.SQL("SELECT coalesce(max(version), 0) FROM {}.schema_version").format(s)
        ).fetchone()
        current = int(row[0]) if row else 0
        if current > LATEST_VERSION:
            raise StoreError(
                f"state schema {schema} is at version {current}, newer than this dq-monitor "
                f"understands ({LATEST_VERSION}); upgrade dq-monitor"
            )
        for version in range(current + 1, to + 1):
            description, ddl = MIGRATIONS[version - 1]
            conn.execute(sql.SQL(ddl).format(s=s))
            conn.execute(
                sql.SQL(
                    "INSERT INTO {}.schema_version (version, description) VALUES (%s, %s)"
                ).format(s),
                (version, description),
            )
        return max(to - current, 0)


def installed_version(conn: psycopg.Connection[Any], schema: str) -> int | None:
    """The version the state schema is at, or None when it has no version table yet.

    Only reads (the doctor uses it). The table is looked up in the catalog by name, not with
    to_regclass(), which raises when the role lacks USAGE on the schema.
    """
    found = conn.execute(
        "SELECT c.oid FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = 'schema_version'"
        " AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
        (schema,),
    ).fetchone()
    if found is None:
        return None
    row = conn.execute(
        sql.SQL("SELECT coalesce(max(version), 0) FROM {}").format(
            qualified(schema, "schema_version")
        )
    ).fetchone()
    return int(row[0]) if row else 0
