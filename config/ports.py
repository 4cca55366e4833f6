"""The service's default HTTP port, apart from the settings models so `--help` can name it."""

from __future__ import annotations

# Outside Prometheus's default port allocations (9090-9094 for its own components,
# 9100-9999 for exporters), so it collides with no well-known exporter.
DEFAULT_METRICS_PORT = 8477
