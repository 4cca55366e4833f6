"""The demo: a simulated job system with the seed's race, on an embedded PostgreSQL the tests
and the benchmark use too."""

from __future__ import annotations

from .demo import Demo
from .embedded import EmbeddedPostgres, free_port

__all__ = ["Demo", "EmbeddedPostgres", "free_port"]
