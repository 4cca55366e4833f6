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
