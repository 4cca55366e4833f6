"""A loopback TCP proxy for hang tests: forwards to one server and can be told to stall.

A stall is what a wedged middlebox, a frozen VM or a half-dead network path looks like to a
client: every socket stays open and the kernel keeps acknowledging what is sent, but nothing
comes back. `stall()` stops forwarding in both directions without closing anything or
sending a reset; `resume()` forwards whatever piled up in the meantime.
"""

from __future__ import annotations

import select
import socket
import threading
from contextlib import suppress

import psycopg


class StallingProxy:
    """Listens on 127.0.0.1 (a free port) and pipes every connection to `upstream`."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._cond = threading.Condition()
        self._stalled = False
        self._forwarding = 0  # pumps between recv() and the end of sendall()
        self._closed = False
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._start(self._accept, "proxy-accept")

    @classmethod
    def for_url(cls, url: str) -> StallingProxy:
        params = psycopg.conninfo.conninfo_to_dict(url)
        return cls((str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432)))

    def url(self, url: str) -> str:
        """`url` (a database on the upstream server) reached through this proxy."""
        return psycopg.conninfo.make_conninfo(url, host="127.0.0.1", port=str(self.port))

    def stall(self) -> None:
        """Stop forwarding; returns once no byte is in transit through the proxy."""
        with self._cond:
            self._stalled = True
            self._cond.wait_for(lambda: self._forwarding == 0, timeout=5)

    def resume(self) -> None:
        with self._cond:
            self._stalled = False
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._stalled = False
            self._cond.notify_all()
            sockets = list(self._sockets)
        for sock in [self._listener, *sockets]:
            with suppress(OSError):
                sock.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> StallingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self, target: object, name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._cond:
                if self._closed:
                    client.close()
                    server.close()
                    return
                self._sockets += [client, server]
            self._start(self._pump, "proxy-up", client, server)
            self._start(self._pump, "proxy-down", server, client)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        while True:
            try:
                readable, _, _ = select.select([src], [], [], 0.05)
            except (OSError, ValueError):
                return
            if not readable:
                if self._closed:
                    return
                continue
            with self._cond:
                self._cond.wait_for(lambda: not self._stalled or self._closed)
                if self._closed:
                    return
                self._forwarding += 1
            try:
                data = src.recv(65536)
                if not data:
                    with suppress(OSError):
                        dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(data)
            except OSError:
                for sock in (src, dst):
                    with suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                return
            finally:
                with self._cond:
                    self._forwarding -= 1
                    self._cond.notify_all()
