"""Monitored databases: DQ_DATABASE_URL's one `default`, or several named ones."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from config import DEFAULT_DATABASE, CheckOn, Settings, format_validation_error, load_settings

SECRET = "s3cr3t-pw"


def refusal(**fields: object) -> str:
    with pytest.raises(ValidationError) as caught:
        Settings(**fields)
    return format_validation_error(caught.value)


def test_database_url_alone_is_one_database_named_default():
    (only,) = Settings(database_url=f"postgresql://u:{SECRET}@h/db").monitored()
    assert only.name == DEFAULT_DATABASE
    assert only.url.get_secret_value() == f"postgresql://u:{SECRET}@h/db"
    assert only.check_on is CheckOn.PRIMARY
    assert only.standby_urls == ()


def test_neither_set_is_no_database():
    assert Settings().monitored() == ()


def test_several_databases_from_the_environment_as_json(monkeypatch):
    monkeypatch.setenv("DQ_DATABASES", json.dumps([
        {"name": "eu", "url": "postgresql://a/eu", "standby_urls": ["postgresql://b/eu"]},
        {"name": "us_1", "url": "postgresql://a/us", "check_on": "primary"},
    ]))  # fmt: skip
    names = [d.name for d in load_settings().monitored()]
    assert names == ["eu", "us_1"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"databases": [{"name": "EU", "url": "postgresql://a/b"}]},
         "must be lower-case letters, digits and underscores, starting with a letter"),
        ({"databases": [{"name": "a", "url": "postgresql://a/b"},
                        {"name": "a", "url": "postgresql://a/c"}]},
         "database names must be unique; repeated: a"),
        ({"database_url": f"postgresql://u:{SECRET}@h/db",
          "databases": [{"name": "a", "url": "postgresql://a/b"}]},
         "set database_url (DQ_DATABASE_URL, one database) or databases (several), not both"),
        ({"databases": [{"name": "a", "url": "postgresql://a/b", "check_on": "standby"}]},
         "database 'a' has check_on = \"standby\" but no standby_urls"),
        ({"databases": [{"name": "a", "url": "postgresql://a/b", "max_replay_lag": "0s"}]},
         "databases.0.max_replay_lag"),
    ],
)  # fmt: skip
def test_bad_databases_are_one_line_without_their_secrets(fields, message):
    text = refusal(**fields)
    assert message in text
    assert SECRET not in text


def two(**first: object) -> Settings:
    return Settings(databases=[
        {"name": "eu", "url": "postgresql://a/eu", **first},
        {"name": "us", "url": f"postgresql://u:{SECRET}@a/us"},
    ])  # fmt: skip


def test_state_schema_for_keeps_default_and_suffixes_the_others():
    from config import state_schema_for

    assert state_schema_for("dq_monitor", "default") == "dq_monitor"
    assert state_schema_for("dq_monitor", "eu") == "dq_monitor_eu"
    with pytest.raises(ValueError, match="longer than 63 characters"):
        state_schema_for("dq_monitor", "x" * 60)


def test_each_database_gets_its_url_schema_tables_and_check_overrides():
    import datetime as dt

    settings = two(
        tables={"schema_name": "jobs"},
        checks={"stale_partitions": {"interval": "10m", "severity": "critical"}},
    )
    eu, us = settings.for_database("eu"), settings.for_database("us")
    assert eu.database.name == "eu"
    assert eu.database_url is not None
    assert eu.database_url.get_secret_value() == "postgresql://a/eu"
    assert (eu.state_schema, us.state_schema) == ("dq_monitor_eu", "dq_monitor_us")
    assert (eu.tables.schema_name, us.tables.schema_name) == ("jobs", "public")
    stale = eu.checks.builtin("stale_partitions")
    assert stale.interval == dt.timedelta(minutes=10)
    assert stale.severity.value == "critical"
    assert us.checks.builtin("stale_partitions").interval == dt.timedelta(minutes=5)
    # One state store: a database without state_database_url keeps its state with the first.
    assert eu.state_database_url is None
    assert us.state_database_url is not None
    assert us.state_database_url.get_secret_value() == "postgresql://a/eu"


def test_database_url_alone_keeps_its_settings_for_default():
    settings = Settings(database_url="postgresql://a/b")
    mine = settings.for_database(DEFAULT_DATABASE)
    assert mine.state_schema == "dq_monitor"
    assert mine.state_database_url is None
    assert mine.checks == settings.checks
    assert mine.database.name == DEFAULT_DATABASE


def test_an_unknown_database_is_one_line_listing_the_names():
    from config import ConfigError

    with pytest.raises(ConfigError, match=r"^unknown database 'asia'; databases: eu, us$"):
        two().for_database("asia")
    with pytest.raises(ConfigError, match=r"several databases are configured \(eu, us\)"):
        _ = two().database


def test_overrides_from_toml_merge_over_the_top_level(tmp_path):
    path = tmp_path / "dq.toml"
    path.write_text(
        '[checks.stale_partitions]\nthreshold = "3h"\n\n'
        '[[databases]]\nname = "eu"\nurl = "postgresql://a/eu"\n\n'
        '[databases.checks.stale_partitions]\ninterval = "10m"\n\n'
        '[databases.tables]\nschema_name = "jobs"\n\n'
        '[[databases]]\nname = "us"\nurl = "postgresql://a/us"\n'
    )
    settings = load_settings(path)
    eu = settings.for_database("eu").checks.builtin("stale_partitions")
    top = settings.checks.builtin("stale_partitions")
    assert eu.interval.total_seconds() == 600
    assert eu.model_dump(exclude={"interval"}) == top.model_dump(exclude={"interval"})
    assert settings.for_database("eu").tables.schema_name == "jobs"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"stale_partitions": {"interval": "0s"}},
         "database 'eu': checks.stale_partitions.interval: Value error, must be at least 1s"),
        ({"stale_partitions": {"colour": "red"}},
         "database 'eu': checks.stale_partitions.colour: Extra inputs are not permitted"),
        ({"no_such": {"enabled": False}}, "database 'eu': checks names an unknown check 'no_such'"),
    ],
)  # fmt: skip
def test_a_bad_override_is_one_line_naming_the_database_and_field(override, message):
    text = refusal(databases=[{"name": "eu", "url": f"postgresql://u:{SECRET}@a/eu",
                               "checks": override}])  # fmt: skip
    assert message in text
    assert len(text.splitlines()) == 1
    assert SECRET not in text


def test_a_custom_check_is_overridden_by_its_name():
    settings = Settings(
        checks={"custom": [{"name": "mine", "sql": "SELECT 1"}]},
        databases=[{"name": "eu", "url": "postgresql://a/eu",
                    "checks": {"mine": {"enabled": False}}}],
    )  # fmt: skip
    (mine,) = settings.for_database("eu").checks.custom
    assert (mine.name, mine.enabled) == ("mine", False)
    text = refusal(
        checks={"custom": [{"name": "mine", "sql": "SELECT 1"}]},
        databases=[{"name": "eu", "url": "postgresql://a/eu",
                    "checks": {"mine": {"interval": "0s"}}}],
    )  # fmt: skip
    assert "database 'eu': checks.mine.interval: Value error, must be at least 1s" in text


def test_more_databases_than_slots_are_fine_but_the_connections_must_fit():
    dbs = [{"name": f"d{i}", "url": "postgresql://a/b"} for i in range(3)]
    # Issue 16: the cap is global; three databases share two slots (one each at most).
    assert Settings(databases=dbs, max_concurrent_checks=2).max_concurrent_checks == 2
    text = refusal(databases=dbs, max_connections=10)
    assert "is too small: 3 databases with max_concurrent_checks 4 need" in text
    assert "need 18" in text  # 4 + 5 state, 4 + 1 monitored, 3 + 1 lock sessions
    assert Settings(databases=dbs).max_concurrent_checks == 4


def test_fifty_databases_fit_the_default_connection_cap_and_eighty_six_do_not():
    fifty = [{"name": f"d{i}", "url": "postgresql://a/b"} for i in range(50)]
    assert len(Settings(databases=fifty).monitored()) == 50
    text = refusal(databases=[{"name": f"d{i}", "url": "postgresql://a/b"} for i in range(86)])
    assert "max_connections (100) is too small: 86 databases" in text
    assert "need 101" in text
    assert len(text.strip().splitlines()) == 1


def test_one_database_counts_its_pools():
    from config.capacity import check_slots, connections_needed

    assert [check_slots(4, n) for n in (1, 2, 3, 4, 5, 50)] == [4, 2, 2, 1, 1, 1]
    # state 4 + 5, pool 4 + 1, one lock and the membership's
    assert connections_needed(4, 1) == 16
    assert connections_needed(4, 1, standby_pool=True, standby_reads=True) == 22
    # several: what runs at once, whatever their number
    assert connections_needed(4, 2) == connections_needed(4, 50) - 48


@pytest.mark.parametrize(
    ("n", "words"),
    [(1, "1 database with max_concurrent_checks 4 needs"),
     (2, "2 databases with max_concurrent_checks 4 need")],
)  # fmt: skip
def test_the_connection_refusal_counts_databases(n, words):
    dbs = [{"name": f"d{i}", "url": "postgresql://a/b"} for i in range(n)]
    assert f"is too small: {words} " in refusal(databases=dbs, max_connections=5)
