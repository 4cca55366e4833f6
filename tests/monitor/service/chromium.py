"""Headless Chromium driven over the DevTools protocol: open a page, evaluate, screenshot."""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import websocket

_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")
# Chromium reaches out on its own (component updates, safe browsing, DNS prefetch); these
# flags and the resolver rule keep every byte on loopback.
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
    "--no-default-browser-check", "--disable-background-networking", "--disable-sync",
    "--disable-component-update", "--disable-default-apps", "--disable-extensions",
    "--disable-domain-reliability", "--no-pings", "--disable-breakpad",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
)  # fmt: skip


def chromium_binary() -> str | None:
    return shutil.which("chromium")


def browser_env() -> dict[str, str]:
    """The environment Chromium runs in: ours without libfaketime.

    Under the clock-shifted CI run LD_PRELOAD carries libfaketime, which Chromium's
    multi-process start (zygote, its own clock checks, the GPU and network services) does not
    survive reliably; nothing the page shows comes from the browser's clock (every time is
    rendered on the server from the injected clock), so the browser keeps the real one.
    """
    env = dict(os.environ)
    for name in list(env):
        if name == "LD_PRELOAD" or name.startswith("FAKETIME"):
            del env[name]
    return env


class Page:
    """One DevTools page session: send commands, wait for events."""

    def __init__(self, ws: websocket.WebSocket) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self.ids)
        self.ws.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == number:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def wait_for(self, event: str) -> None:
        while json.loads(self.ws.recv()).get("method") != event:
            pass

    def open(self, url: str, width: int, height: int) -> None:
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=width < 600)  # fmt: skip
        self.send("Page.enable")
        self.send("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str, *, awaited: bool = False) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=awaited)  # fmt: skip
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluating in the page: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path, *, full: bool = False) -> bytes:
        """The viewport as a PNG, or (`full`) the whole page, to look at by eye."""
        params: dict[str, Any] = {"format": "png"}
        if full:
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params |= {"captureBeyondViewport": True, "clip": {
                "x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}}
        data = base64.b64decode(self.send("Page.captureScreenshot", **params)["data"])
        path.write_bytes(data)
        return data


@contextmanager
def chromium(profile: Path) -> Iterator[Page]:
    """A headless Chromium with a fresh profile in `profile`, its first page's session; the
    browser and every process it started are killed on exit."""
    binary = chromium_binary()
    assert binary is not None
    proc = subprocess.Popen(
        [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, env=browser_env(), start_new_session=True,
    )  # fmt: skip
    reader: threading.Thread | None = None
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:  # ends if Chromium exits before listening
            seen.append(line)
            found = _LISTENING.search(line)
            if found:
                break
        else:
            raise RuntimeError("chromium exited before listening: " + "".join(seen[-5:]))
        # Keep reading stderr so Chromium never blocks writing to it.
        reader = threading.Thread(target=proc.stderr.read, daemon=True)
        reader.start()
        port = int(found.group(1).split(":")[2].split("/")[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as r:
            targets = json.load(r)
        url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        ws = websocket.create_connection(url, timeout=60, suppress_origin=True)
        try:
            yield Page(ws)
        finally:
            ws.close()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        if reader is not None:
            reader.join(timeout=30)  # stderr ends with the last process of the group
        if proc.stderr is not None:
            proc.stderr.close()


def png_size(data: bytes) -> tuple[int, int]:
    """A PNG's width and height from its header (IHDR)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height
