"""Connection helpers: what a message may say about a database URL."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from monitor.db import safe_target, secrets_of


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("postgresql://dq:pw-1@db.example.com:5433/jobs", "db.example.com:5433/jobs"),
        (
            "host=db.example.com port=5433 dbname=jobs user=dq password=pw-1",
            "db.example.com:5433/jobs",
        ),
        ("user=dq password=pw-1", "localhost/(default)"),
    ],
)
def test_safe_target_names_host_port_and_database_only(url, target):
    assert safe_target(SecretStr(url)) == target
    assert "pw-1" in secrets_of(SecretStr(url))
