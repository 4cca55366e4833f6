"""The HTTP client behind every request dq-monitor makes: timeout, no redirects, a User-Agent."""

from __future__ import annotations

import functools
import importlib.metadata
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # loaded by http_client(): only a request needs it
    import httpx

#: The distribution whose version names dq-monitor on the wire (pyproject.toml's `name`).
DISTRIBUTION = "dq-monitor"


@functools.cache
def user_agent() -> str:
    """`dq-monitor/<version>`, the installed package's version (monitor.__version__ is the
    same number; the alerts layer may not import the application above it)."""
    try:
        version = importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        version = "unknown"
    return f"{DISTRIBUTION}/{version}"


def http_client(timeout: float) -> httpx.Client:
    """A client for receivers, heartbeats and reachability probes.

    Redirects are not followed: a webhook URL is a secret, and a redirect would carry its
    body (and the route's headers) to wherever the receiver points.
    """
    import httpx

    return httpx.Client(
        timeout=timeout, follow_redirects=False, headers={"User-Agent": user_agent()}
    )
