"""Test suite wiring: the database plugin (real PostgreSQL) is loaded for every test."""

from hypothesis import settings

# Registers the built-in checks, which validating settings needs (see checks/registry.py).
import checks  # noqa: F401

pytest_plugins = ["tests.plugins.database", "tests.plugins.alertmanager", "tests.plugins.standby"]

# Two cores shared with other work: a slow example is the machine, not the code under test.
settings.register_profile("dq-monitor", deadline=None)
# `pytest --hypothesis-profile=thorough` searches the property tests much harder.
settings.register_profile("thorough", deadline=None, max_examples=20_000)
settings.load_profile("dq-monitor")
