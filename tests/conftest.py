"""Test suite wiring: the database plugin (real PostgreSQL) is loaded for every test."""

pytest_plugins = ["tests.plugins.database"]
