"""The polite HTTP client against a loopback server: turns, retries, deadlines."""

from __future__ import annotations

import socket
import threading
import time
from itertools import pairwise

import pytest
from loopback import Reply

from collectors.base import CollectorError
from collectors.http import (
    MAX_RETRY_AFTER_SECONDS,
    DeadlineExceeded,
    HttpClient,
    shared_client,
)
from config import HostLimit, Http


class FakeClock:
    """A monotonic clock that only moves when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(round(seconds, 6))
            self.now += seconds


def fake_client(clock: FakeClock, **settings) -> HttpClient:
    settings.setdefault("default_host", HostLimit(min_interval_seconds=0))
    return HttpClient(
        Http(**settings), clock=clock, sleep=clock.sleep, jitter=lambda: 0.5
    )


def test_user_agent_and_params_sent(server):
    server.route("/api", Reply(200, "{}"))
    with HttpClient(Http(user_agent="Fenghuo-test/1 (+https://example.com)")) as client:
        response = client.start_run("s").get(
            server.url("/api?fixed=1"), params={"page": "2"}
        )

    request = server.requests_to("/api")[0]
    assert response.status_code == 200
    assert request.headers["user-agent"] == "Fenghuo-test/1 (+https://example.com)"
    assert request.param("fixed") == "1"
    assert request.param("page") == "2"


def test_429_retry_after_honoured(server):
    clock = FakeClock()
    server.route(
        "/feed", Reply(429, "slow down", {"Retry-After": "3"}), Reply(200, "ok")
    )

    with fake_client(clock) as client:
        response = client.start_run("s").get(server.url("/feed"))

    assert response.status_code == 200
    assert response.content == b"ok"
    assert len(server.requests_to("/feed")) == 2
    assert clock.sleeps == [3.0]


def test_429_holds_other_requests_to_host(server):
    limited = threading.Event()
    replies = iter([Reply(429, "", {"Retry-After": "0.4"}), Reply(200, "a")])

    def answer_a(request):
        reply = next(replies)
        limited.set()
        return reply

    server.respond("/a", answer_a)
    server.route("/b", Reply(200, "b"))
    limit = HostLimit(min_interval_seconds=0, max_concurrency=2)

    def fetch_b(client: HttpClient) -> None:
        limited.wait(timeout=5)
        time.sleep(0.1)
        client.start_run("other").get(server.url("/b"))

    with HttpClient(Http(default_host=limit)) as client:
        other = threading.Thread(target=fetch_b, args=(client,))
        other.start()
        client.start_run("s").get(server.url("/a"))
        other.join(timeout=10)

    first_a = server.requests_to("/a")[0]
    b = server.requests_to("/b")[0]
    # /b was sent 0.1 s after the 429, but waits out the host's 0.4 s.
    assert b.arrived - first_a.arrived >= 0.4 - 0.02


def test_retry_after_is_capped(server):
    clock = FakeClock()
    server.route("/feed", Reply(429, "", {"Retry-After": "86400"}), Reply(200, "ok"))

    with fake_client(clock, run_deadline_seconds=3600) as client:
        response = client.start_run("s").get(server.url("/feed"))

    assert response.status_code == 200
    assert clock.sleeps == [MAX_RETRY_AFTER_SECONDS]


def test_server_errors_back_off_exponentially(server):
    clock = FakeClock()
    server.route("/feed", Reply(500), Reply(502), Reply(503), Reply(200, "ok"))

    with fake_client(clock, retries=3, backoff_seconds=2.0) as client:
        response = client.start_run("s").get(server.url("/feed"))

    assert response.status_code == 200
    # random() is 0.5, so the jitter factor is exactly 1.
    assert clock.sleeps == [2.0, 4.0, 8.0]


def test_jitter_spreads_waits(server):
    clock = FakeClock()
    server.route("/feed", Reply(503), Reply(200))
    draws = iter([0.0])
    settings = Http(retries=1, backoff_seconds=2.0, default_host=HostLimit(0, 2))

    client = HttpClient(
        settings, clock=clock, sleep=clock.sleep, jitter=lambda: next(draws)
    )
    with client:
        client.start_run("s").get(server.url("/feed"))

    assert clock.sleeps == [1.0]


def test_retries_used_up_return_last_response(server):
    clock = FakeClock()
    server.route("/feed", Reply(503, "down"))

    with fake_client(clock, retries=2) as client:
        response = client.start_run("s").get(server.url("/feed"))

    assert response.status_code == 503
    assert len(server.requests_to("/feed")) == 3


def test_client_errors_not_retried(server):
    clock = FakeClock()
    server.route("/feed", Reply(404), Reply(200))

    with fake_client(clock) as client:
        response = client.start_run("s").get(server.url("/feed"))

    assert response.status_code == 404
    assert len(server.requests_to("/feed")) == 1
    assert clock.sleeps == []


def test_refused_connection_fails_after_retries():
    clock = FakeClock()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with fake_client(clock, retries=2, backoff_seconds=1.0) as client:
        with pytest.raises(CollectorError, match="failed after 3 attempts") as error:
            client.start_run("src").get(f"http://127.0.0.1:{port}/feed")

    assert "source src" in str(error.value)
    assert f"127.0.0.1:{port}/feed" in str(error.value)
    assert clock.sleeps == [1.0, 2.0]


def test_invalid_url_rejected():
    with HttpClient(Http()) as client:
        with pytest.raises(CollectorError, match="invalid URL"):
            client.start_run("s").get("ftp://127.0.0.1/feed")


def test_host_interval_with_fake_clock(server):
    clock = FakeClock()
    server.route("/feed", Reply(200))
    limit = HostLimit(min_interval_seconds=0.5, max_concurrency=2)

    with fake_client(clock, default_host=limit) as client:
        run = client.start_run("s")
        for _ in range(3):
            run.get(server.url("/feed"))

    assert clock.sleeps == [0.5, 0.5]


def test_host_override_by_name_and_port(server):
    clock = FakeClock()
    server.route("/feed", Reply(200))
    host_port = server.url("").removeprefix("http://")
    settings = {
        "default_host": HostLimit(min_interval_seconds=0.5),
        "hosts": {host_port: HostLimit(min_interval_seconds=2.0)},
    }

    with fake_client(clock, **settings) as client:
        run = client.start_run("s")
        run.get(server.url("/feed"))
        run.get(server.url("/feed"))

    assert clock.sleeps == [2.0]


def test_host_interval_across_threads(server):
    server.route("/feed", Reply(200, "ok"))
    interval = 0.1
    limit = HostLimit(min_interval_seconds=interval, max_concurrency=2)

    def fetch(client: HttpClient, name: str) -> None:
        run = client.start_run(name)
        for _ in range(3):
            run.get(server.url("/feed"))

    with HttpClient(Http(default_host=limit)) as client:
        threads = [
            threading.Thread(target=fetch, args=(client, f"source-{n}"))
            for n in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)

    arrivals = sorted(r.arrived for r in server.requests_to("/feed"))
    gaps = [later - earlier for earlier, later in pairwise(arrivals)]
    assert len(arrivals) == 6
    # The server reads a request a little after the client starts it, so the
    # gaps between arrivals may be a few milliseconds shorter than the interval.
    assert min(gaps) >= interval - 0.02


def test_concurrency_limit_across_threads(server):
    server.route("/slow", Reply(200, "ok", delay=0.15))
    limit = HostLimit(min_interval_seconds=0, max_concurrency=1)

    def fetch(client: HttpClient) -> None:
        client.start_run("s").get(server.url("/slow"))

    with HttpClient(Http(default_host=limit)) as client:
        threads = [threading.Thread(target=fetch, args=(client,)) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)

    requests = sorted(server.requests_to("/slow"), key=lambda r: r.arrived)
    assert len(requests) == 3
    for earlier, later in pairwise(requests):
        assert later.arrived >= earlier.finished - 0.01


def test_deadline_stops_before_request(server):
    clock = FakeClock()
    server.route("/feed", Reply(200))

    with fake_client(clock, run_deadline_seconds=10) as client:
        run = client.start_run("src")
        clock.sleep(11)
        with pytest.raises(DeadlineExceeded, match="source src: run deadline"):
            run.get(server.url("/feed"))

    assert server.requests_to("/feed") == []


def test_retry_wait_past_deadline_stops(server):
    clock = FakeClock()
    server.route("/feed", Reply(429, "", {"Retry-After": "50"}), Reply(200))

    with fake_client(clock, run_deadline_seconds=30) as client:
        with pytest.raises(DeadlineExceeded, match="past the run deadline"):
            client.start_run("s").get(server.url("/feed"))

    assert len(server.requests_to("/feed")) == 1


def test_slow_response_ends_at_deadline(server):
    server.route("/slow", Reply(200, "late", delay=3))

    started = time.monotonic()
    with HttpClient(Http(run_deadline_seconds=0.3, retries=3)) as client:
        with pytest.raises(DeadlineExceeded):
            client.start_run("s").get(server.url("/slow"))

    assert time.monotonic() - started < 2
    assert len(server.requests_to("/slow")) == 1


def test_shared_client_per_settings():
    first = shared_client(Http(user_agent="Fenghuo-shared-test/1"))
    again = shared_client(Http(user_agent="Fenghuo-shared-test/1"))
    other = shared_client(Http(user_agent="Fenghuo-shared-test/2"))

    assert first is again
    assert first is not other


class TrickleServer:
    """Sends a response's status line and headers one byte every 0.1 s."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def url(self) -> str:
        host, port = self.listener.getsockname()[:2]
        return f"http://{host}:{port}/feed"

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            connection.recv(65536)
            head = b"HTTP/1.1 200 OK\r\n" + b"X-Padding: " + b"a" * 500 + b"\r\n"
            for byte in head:
                if self.stop.wait(0.1):
                    return
                connection.sendall(bytes([byte]))

    def __enter__(self) -> TrickleServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.listener.close()


def test_trickled_headers_end_at_deadline():
    settings = Http(run_deadline_seconds=1.0, read_timeout_seconds=5.0, retries=0)

    started = time.monotonic()
    with TrickleServer() as trickle, HttpClient(settings) as client:
        with pytest.raises(DeadlineExceeded):
            client.start_run("s").get(trickle.url())

    assert time.monotonic() - started < 2.5
