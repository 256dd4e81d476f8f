"""A scripted HTTP server on 127.0.0.1 for collector tests.

Each path responds with a list of replies, given in order, the last one
repeating, or with a function of the request. The server records every
request it gets, with its arrival time, so that tests can check headers,
query parameters and the spacing of requests. :class:`SilentServer` accepts
connections and never responds at all.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Reply:
    """One scripted response; ``delay`` seconds pass before the status line."""

    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def encoded(self) -> bytes:
        return self.body.encode("utf-8") if isinstance(self.body, str) else self.body


@dataclass
class Request:
    """A request as the server saw it; header names are lower case.

    ``arrived`` and ``finished`` are time.monotonic() readings: when the
    request line was read and when the reply was written.
    """

    arrived: float
    finished: float
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


Responder = Callable[[Request], Reply]


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 and a free port."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._routes: dict[str, Responder] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._server.block_on_close = False
        # A short poll interval makes stop() quick; the default waits 0.5 s.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="loopback-http",
            daemon=True,
        )

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def url(self, path: str) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def route(self, path: str, *replies: Reply) -> None:
        """Respond to ``path`` with ``replies`` in order, repeating the last one."""
        queue = list(replies)

        def scripted(request: Request) -> Reply:
            with self._lock:
                return queue.pop(0) if len(queue) > 1 else queue[0]

        self._routes[path] = scripted

    def respond(self, path: str, responder: Responder) -> None:
        """Respond to ``path`` with what ``responder`` returns for each request."""
        self._routes[path] = responder

    def requests_to(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _answer(self, request: Request) -> Reply:
        responder = self._routes.get(request.path)
        if responder is None:
            return Reply(404, "not found")
        return responder(request)

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)


class SilentServer:
    """A TCP listener on 127.0.0.1 that accepts connections and never responds.

    Clients connect and send their request, then wait for a status line that
    never comes, as with a hung upstream behind a proxy. ``accepted`` counts
    the connections taken. Every connection is closed at stop().
    """

    def __init__(self) -> None:
        self.accepted = 0
        self._connections: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._accept_forever, name="loopback-silent", daemon=True
        )

    def start(self) -> SilentServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        for connection in self._connections:
            connection.close()
        self._listener.close()

    def __enter__(self) -> SilentServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def url(self, path: str = "") -> str:
        host, port = self._listener.getsockname()[:2]
        return f"http://{host}:{port}{path}"

    def _accept_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            self._connections.append(connection)
            self.accepted += 1


def fixture(name: str) -> bytes:
    """Return the bytes of a file under tests/collectors/fixtures."""
    return (FIXTURES / name).read_bytes()


def feed_reply(name: str, content_type: str = "application/rss+xml", **headers):
    """A 200 reply with a fixture file as its body."""
    return Reply(200, fixture(name), {"Content-Type": content_type, **headers})


def conditional(body: bytes, etag: str, last_modified: str, content_type: str):
    """Return a responder that returns 304 to a request with matching validators."""

    def answer(request: Request) -> Reply:
        validators = {"ETag": etag, "Last-Modified": last_modified}
        if request.headers.get("if-none-match") == etag:
            return Reply(304, b"", validators)
        return Reply(200, body, {"Content-Type": content_type, **validators})

    return answer


def _handler_for(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            arrived = time.monotonic()
            parts = urlsplit(self.path)
            request = Request(
                arrived=arrived,
                finished=arrived,
                method="GET",
                path=parts.path,
                query=parse_qs(parts.query),
                headers={k.lower(): v for k, v in self.headers.items()},
            )
            server._record(request)
            reply = server._answer(request)
            if reply.delay:
                time.sleep(reply.delay)
            body = reply.encoded()
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if reply.status != 304:
                    self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass
            request.finished = time.monotonic()

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler
