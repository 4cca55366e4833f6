"""Remove secret values (passwords, webhook URLs) from any text before anyone sees it."""

from __future__ import annotations


def redact(text: str, secrets: list[str]) -> str:
    """Replace every secret in `text` with ***; longer secrets first (one may contain another)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
