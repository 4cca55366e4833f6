"""Every form a route's secret can take when a receiver echoes it back, for redaction."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, unquote, urlsplit

from config import RouteSettings

# Shorter fragments ("v1", "api") are not secret on their own and would shred the message.
_MIN_FRAGMENT = 4
# Authorization schemes name the kind of credential, not the credential.
_SCHEMES = {"bearer", "basic", "token", "digest"}


def url_secrets(url: str) -> list[str]:
    """The URL and what a receiver may echo of it: userinfo, path, its segments, the query
    and its values, each as sent and percent-decoded."""
    found = [url]
    try:
        parts = urlsplit(url)
        userinfo = [parts.username or "", parts.password or ""]
    except ValueError:
        return found
    path = parts.path.strip("/")
    found += [parts.path, path, *path.split("/"), *userinfo]
    if parts.query:
        found.append(parts.query)
        found += [value for _, value in parse_qsl(parts.query, keep_blank_values=True)]
    if parts.fragment:
        found.append(parts.fragment)
    return _variants(found)


def header_secrets(value: str) -> list[str]:
    """A header value and each of its words: `Bearer abc` may come back as just `abc`."""
    return _variants([value, *(w for w in value.split() if w.lower() not in _SCHEMES)])


def route_secrets(route: RouteSettings) -> list[str]:
    """Everything of `route` that must never be shown: URL fragments and header values."""
    found = [part for url in route.endpoints for part in url_secrets(url.get_secret_value())]
    for header in route.headers.values():
        found += header_secrets(header.get_secret_value())
    return found


def _variants(fragments: list[str]) -> list[str]:
    out: set[str] = set()
    for fragment in fragments:
        if len(fragment) < _MIN_FRAGMENT:
            continue
        out.update({fragment, unquote(fragment), quote(fragment, safe="")})
    # Longest first, so a whole URL is replaced before one of its segments.
    return sorted((s for s in out if len(s) >= _MIN_FRAGMENT), key=len, reverse=True)
