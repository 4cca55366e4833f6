"""`dq-monitor state prune`: one prune now, a one-line summary, the usual exit codes."""

from __future__ import annotations

from tests.helpers import run_cli


def test_prune_deletes_the_old_history_and_says_what(monkeypatch, capsys, db_url, db):
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    assert run_cli(capsys, "state", "prune")[0] == 0  # creates the state schema
    db.execute(
        "INSERT INTO dq_monitor.check_runs (check_name, started_at, finished_at, mode, status,"
        " severity, fingerprint) SELECT 'a', t, t, 'incremental', 'ok', 'warning', 'f'"
        " FROM generate_series(now() - interval '120 days', now(), interval '1 day') AS t"
    )
    monkeypatch.setenv("DQ_RETENTION__HISTORY", "30d")
    code, out, err = run_cli(capsys, "state", "prune")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("pruned 91 rows older than ")
    assert "(91 check_runs) in 1 batch" in lines[0]
    left = db.execute("SELECT count(*) FROM dq_monitor.check_runs").fetchone()[0]
    assert left == 30  # the run exactly 30 days old by the insert went too
    assert err == ""  # progress goes to a terminal only


def test_prune_with_a_bad_setting_is_a_config_error(monkeypatch, capsys, db_url):
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    monkeypatch.setenv("DQ_RETENTION__HISTORY", "1d")
    code, out, err = run_cli(capsys, "state", "prune")
    assert code == 2
    assert out == ""
    assert err.strip().splitlines()[-1].endswith("set it to at least that")
