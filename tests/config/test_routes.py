"""Route and heartbeat URLs: validated when settings load, so delivery can always send them."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from config import AlertsSettings, RouteSettings

SECRET = "tok-s3cr3t"
# Characters that matter to URL parsing, plus some that must be refused.
url_pieces = st.sampled_from([*"abc019.-_:/[]@%?#~ \t\n\x00\x7féü", "::1", "xn--"])
url_like = st.builds(
    lambda scheme, pieces: scheme + "".join(pieces),
    st.sampled_from(["http://", "https://", "HTTP://", "ftp://", "http:/", ""]),
    st.lists(url_pieces, max_size=25),
)
hosts = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z]{2,10}){0,3}", fullmatch=True)
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(lambda a: f"[{a}]")
paths = st.text(st.sampled_from("abcXYZ019-._~/%+="), max_size=30)


def webhook(url: str, **extra: object) -> RouteSettings:
    return RouteSettings.model_validate({"name": "hook", "type": "webhook", "url": url, **extra})


def refusal(build: Callable[[], object]) -> str:
    """The validation error's text, or "" when the settings were accepted."""
    try:
        build()
    except ValidationError as exc:
        return str(exc)
    return ""


@given(st.text() | url_like)
@example("http://[::1/x")
@example("http://h:0/")
@example("http://256.256.256.256/")
@example("http://xn--zz.de/")
@example("http://[v1.x]/")
def test_an_accepted_url_can_be_sent_and_a_refused_one_is_a_validation_error(url):
    try:
        route = webhook(url)
    except ValidationError:
        return
    assert route.url is not None
    parsed = httpx.URL(route.url.get_secret_value())
    assert parsed.scheme in {"http", "https"}
    assert parsed.raw_host
    httpx.Request("POST", parsed, json={})  # what delivery builds: no exception


@given(st.sampled_from(["http", "https"]), hosts | ipv4 | ipv6,
       st.none() | st.integers(1, 65535), paths)  # fmt: skip
def test_well_formed_urls_are_accepted(scheme, host, port, path):
    url = f"{scheme}://{host}{'' if port is None else f':{port}'}/{path}"
    assert webhook(url).url is not None
    assert AlertsSettings(heartbeat_url=url).heartbeat_url is not None


@given(url_like)
def test_a_refused_url_is_never_quoted(text):
    url = text + SECRET
    assert SECRET not in refusal(lambda: webhook(url))
    assert SECRET not in refusal(lambda: AlertsSettings(heartbeat_url=url))


@given(st.text(max_size=20), st.text(max_size=40))
def test_accepted_headers_can_be_sent(name, value):
    headers_given = {name: value + SECRET}
    problem = refusal(lambda: webhook("https://hooks.example.com/x", headers=headers_given))
    assert SECRET not in problem
    if problem:
        return
    route = webhook("https://hooks.example.com/x", headers=headers_given)
    headers = {k: v.get_secret_value() for k, v in route.headers.items()}
    httpx.Request("POST", "https://hooks.example.com/x", headers=headers)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://[::1/x", "url has no parseable host and port (an IPv6 address needs"),
        ("http:///hook", "url has no host"),
        ("http://hooks.example.com:0/x", "url's port must be between 1 and 65535"),
        ("http://hooks.example.com:99999/x", "url has no parseable host and port"),
        ("http://hooks example.com/x", "url must not contain spaces or control characters"),
        ("http://256.256.256.256/x", "url is not a valid URL (check its host and port)"),
        ("ftp://hooks.example.com/x", "url must start with https:// or http://"),
    ],
)
def test_refused_urls_say_why(url, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        webhook(url)


def alertmanager(**extra: object) -> RouteSettings:
    return RouteSettings.model_validate({"name": "am", "type": "alertmanager", **extra})


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({}, "an alertmanager route needs a url (or urls, for several Alertmanagers)"),
        ({"url": "http://a:9093", "urls": ["http://b:9093"]}, "give url (one Alertmanager) or"),
        ({"urls": ["http://a:9093", f"ftp://{SECRET}"]}, "urls[1]: url must start with"),
        ({"urls": ["http://a:9093", "http://a:9093/"]}, "urls[0] and urls[1] are the same"),
        ({"url": f"http://a:9093/?t={SECRET}"}, "is a base URL (/api/v2/alerts is added)"),
        ({"url": "http://a:9093/api/v2/alerts"}, "its base URL, without /api/v2/alerts"),
        ({"url": "http://a:9093", "resend_interval": "0s"}, "must be longer than 0s"),
        ({"url": "http://a:9093", "send_resolved": False}, "always sends resolved alerts"),
        ({"url": "http://a:9093", "digest": True}, "digest = true is for slack routes only"),
    ],
)
def test_a_bad_alertmanager_route_is_one_clear_line_without_its_secret(extra, error):
    text = refusal(lambda: alertmanager(**extra))
    assert error in text
    assert SECRET not in text


def test_urls_and_resend_interval_belong_to_alertmanager_routes():
    assert "urls is for alertmanager routes" in refusal(
        lambda: webhook("http://a/", urls=["http://b/"])
    )
    assert "resend_interval is for alertmanager routes" in refusal(
        lambda: webhook("http://a/", resend_interval="1m")
    )


def test_an_alertmanager_route_posts_to_its_urls_or_its_one_url_every_minute_by_default():
    several = alertmanager(urls=[f"http://dq:{SECRET}@a:9093", "http://b:9093/prefix"],
                           resend_interval="30s")  # fmt: skip
    assert [u.get_secret_value() for u in several.endpoints] == [
        f"http://dq:{SECRET}@a:9093", "http://b:9093/prefix"]  # fmt: skip
    assert several.resend_every.total_seconds() == 30
    one = alertmanager(url="http://a:9093")
    assert len(one.endpoints) == 1
    assert one.resend_every.total_seconds() == 60
    assert SECRET not in repr(several)
