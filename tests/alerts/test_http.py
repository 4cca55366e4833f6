"""Every request dq-monitor makes names it: the User-Agent, read by real loopback servers."""

from __future__ import annotations

from pydantic import SecretStr
from pytest_httpserver import HTTPServer

from alerts import http_client, user_agent
from alerts.heartbeat import Heartbeat
from monitor import __version__
from tests.alerts.test_outbox import T0, Outbox, queued, sender
from tests.helpers import FakeClock

AGENT = f"dq-monitor/{__version__}"


def agents(server: HTTPServer) -> list[str | None]:
    return [request.headers.get("User-Agent") for request, _ in server.log]


def test_the_user_agent_is_the_package_version():
    assert user_agent() == AGENT


def test_outbox_deliveries_and_the_heartbeat_send_it(httpserver: HTTPServer):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    httpserver.expect_request("/slack", method="POST").respond_with_data("ok")
    httpserver.expect_request("/ping", method="GET").respond_with_data("OK")
    outbox = Outbox(queued("hook", id=1), queued("chat", id=2))
    routes = (
        {"name": "hook", "type": "webhook", "url": httpserver.url_for("/hook")},
        {"name": "chat", "type": "slack", "url": httpserver.url_for("/slack")},
    )
    delivering = sender(outbox, *routes)
    assert delivering.deliver_due().sent == 2
    url = SecretStr(httpserver.url_for("/ping"))
    assert Heartbeat(url, lambda: delivering.client, FakeClock(T0)).ping()
    assert [r.path for r, _ in httpserver.log] == ["/hook", "/slack", "/ping"]
    assert agents(httpserver) == [AGENT, AGENT, AGENT]


def test_the_factory_follows_no_redirect(httpserver: HTTPServer):
    moved = {"Location": "/elsewhere"}
    httpserver.expect_request("/moved").respond_with_data("", status=307, headers=moved)
    with http_client(5.0) as client:
        assert client.post(httpserver.url_for("/moved")).status_code == 307
    assert agents(httpserver) == [AGENT]
