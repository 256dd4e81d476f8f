"""The polite HTTP client that every collector fetching over HTTP shares.

Requests to one host through one client take turns across threads. At most
``max_concurrency`` are in flight, and their starts are at least
``min_interval_seconds`` apart, because public RSSHub instances block clients
that ask too fast. The default half second is an estimate of what they
accept. :func:`shared_client` gives all sources of a process one client. A
429 or 5xx answer and a transport error are retried with exponential back-off
and jitter, and a 429 holds back every request to that host for the wait.
Each run of a source has a deadline, after which its requests stop.

Exceptions::

    CollectorError              (collectors.base)
     +-- DeadlineExceeded       the run's deadline passed; stored batches stay
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime

import httpcore
import httpx

from collectors.base import CollectorError
from config import HostLimit, Http

logger = logging.getLogger(__name__)

# A Retry-After longer than this is cut to it: a server asking for an hour
# would otherwise hold the run until its deadline for nothing.
MAX_RETRY_AFTER_SECONDS = 120.0
# Larger bodies (after content decoding, so a gzip bomb counts in full) fail
# the request: no feed or API page of posts comes near this size.
MAX_BODY_BYTES = 32 * 1024 * 1024

_KEPT = "the posts stored so far are kept and the rest is read at the next run"

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class DeadlineExceeded(CollectorError):
    """The run's deadline passed; the batches already yielded are kept."""


@dataclass(frozen=True, slots=True)
class Response:
    """A fully read response: the final URL after redirects, status and body."""

    url: str
    status_code: int
    headers: httpx.Headers
    content: bytes

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower case ("" when absent)."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def charset(self) -> str | None:
        """The charset parameter of Content-Type, or None."""
        match = _CHARSET.search(self.headers.get("content-type", ""))
        return match.group(1) if match else None


_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.IGNORECASE)


class HttpClient:
    """An httpx client with per-host turns, retries and run deadlines.

    ``clock`` (monotonic seconds), ``sleep`` and ``jitter`` (uniform in
    [0, 1)) are injectable so that tests run without real waiting. Redirects
    are followed within one turn.
    """

    def __init__(
        self,
        settings: Http,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self.jitter = jitter
        self._gates: dict[str, _HostGate] = {}
        self._gates_lock = threading.Lock()
        self._client = httpx.Client(
            headers={"User-Agent": settings.user_agent},
            timeout=_timeout(settings, settings.read_timeout_seconds),
            follow_redirects=True,
            transport=_deadline_transport(),
        )

    def start_run(self, source_name: str) -> HttpRun:
        """Start the clock of one source's run; its requests share the deadline."""
        deadline = self.clock() + self.settings.run_deadline_seconds
        return HttpRun(self, source_name, deadline)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def stream(
        self,
        url: httpx.URL,
        headers: Mapping[str, str] | None,
        timeout: httpx.Timeout,
    ) -> AbstractContextManager[httpx.Response]:
        """Open one GET as a stream, without turns or retries."""
        return self._client.stream("GET", url, headers=headers, timeout=timeout)

    def gate(self, url: httpx.URL) -> _HostGate:
        """Return the turn-taking gate of the URL's host, created on first use."""
        host = (url.host or "").lower()
        key = f"{host}:{url.port}" if url.port else host
        with self._gates_lock:
            gate = self._gates.get(key)
            if gate is None:
                limit = self._host_limit(host, key)
                gate = _HostGate(limit, self.clock, self.sleep)
                self._gates[key] = gate
            return gate

    def _host_limit(self, host: str, key: str) -> HostLimit:
        hosts = self.settings.hosts
        return hosts.get(key) or hosts.get(host) or self.settings.default_host


class HttpRun:
    """The requests of one run of one source, bounded by the run's deadline."""

    def __init__(self, client: HttpClient, source_name: str, deadline: float):
        self.client = client
        self.source_name = source_name
        self.deadline = deadline

    def remaining(self) -> float:
        """Seconds left before the deadline (negative once it has passed)."""
        return self.deadline - self.client.clock()

    def check_deadline(self) -> None:
        """Raise DeadlineExceeded when the run's deadline has passed."""
        if self.remaining() <= 0:
            raise DeadlineExceeded(
                f"source {self.source_name}: run deadline of "
                f"{self.client.settings.run_deadline_seconds:g} s reached; {_KEPT}"
            )

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """GET ``url`` politely, retrying 429, 5xx and transport errors.

        Returns the last response, whatever its status, once it is final or
        the retries are used up. Raises DeadlineExceeded when the deadline
        passes before or between attempts, and CollectorError when the
        request cannot be sent or every attempt failed without a response.
        """
        request_url = _parse_url(url, params, self.source_name)
        gate = self.client.gate(request_url)
        retries = self.client.settings.retries
        for attempt in range(retries + 1):
            response, error = self._attempt(gate, request_url, headers)
            if response is not None and not _retryable(response.status_code):
                return response
            if attempt == retries:
                break
            self._wait_before_retry(gate, request_url, response, error, attempt)
        if response is not None:
            return response
        raise CollectorError(
            f"source {self.source_name}: GET {_show(request_url)} failed after "
            f"{retries + 1} attempts: {error}"
        )

    def _attempt(
        self,
        gate: _HostGate,
        url: httpx.URL,
        headers: Mapping[str, str] | None,
    ) -> tuple[Response | None, str | None]:
        """Send one request in the host's turn; return the response or the error."""
        self.check_deadline()
        if not gate.enter(self.deadline):
            raise DeadlineExceeded(
                f"source {self.source_name}: the next turn at {url.host} starts "
                "after the run deadline of "
                f"{self.client.settings.run_deadline_seconds:g} s; {_KEPT}"
            )
        try:
            return self._send(url, headers), None
        except httpx.TransportError as exc:
            if isinstance(exc, httpx.UnsupportedProtocol):
                raise CollectorError(
                    f"source {self.source_name}: GET {_show(url)} failed: {exc}"
                ) from None
            self.check_deadline()
            return None, f"{type(exc).__name__}: {exc}"
        except httpx.HTTPError as exc:
            raise CollectorError(
                f"source {self.source_name}: GET {_show(url)} failed: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        finally:
            gate.leave()

    def _send(self, url: httpx.URL, headers: Mapping[str, str] | None) -> Response:
        remaining = max(self.remaining(), 0.001)
        timeout = _timeout(
            self.client.settings,
            min(self.client.settings.read_timeout_seconds, remaining),
        )
        _request_deadline.value = time.monotonic() + remaining
        try:
            return self._read(url, headers, timeout)
        finally:
            _request_deadline.value = None

    def _read(
        self, url: httpx.URL, headers: Mapping[str, str] | None, timeout: httpx.Timeout
    ) -> Response:
        with self.client.stream(url, headers, timeout) as answer:
            body = bytearray()
            for chunk in answer.iter_bytes():
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    raise CollectorError(
                        f"source {self.source_name}: GET {_show(url)} failed: "
                        f"response larger than {MAX_BODY_BYTES} bytes"
                    )
                self.check_deadline()
            return Response(
                str(answer.url), answer.status_code, answer.headers, bytes(body)
            )

    def _wait_before_retry(
        self,
        gate: _HostGate,
        url: httpx.URL,
        response: Response | None,
        error: str | None,
        attempt: int,
    ) -> None:
        settings = self.client.settings
        wait = settings.backoff_seconds * 2**attempt * (0.5 + self.client.jitter())
        requested = _retry_after(response) if response is not None else None
        if requested is not None:
            wait = min(requested, MAX_RETRY_AFTER_SECONDS)
        if wait >= self.remaining():
            raise DeadlineExceeded(
                f"source {self.source_name}: GET {_show(url)} needs a wait of "
                f"{wait:.1f} s before its next attempt, past the run deadline of "
                f"{settings.run_deadline_seconds:g} s; {_KEPT}"
            )

        logger.warning(
            "request retried source=%s host=%s status=%s error=%s attempt=%s wait=%.1f",
            self.source_name,
            url.host,
            response.status_code if response is not None else None,
            error,
            attempt + 1,
            wait,
        )
        if response is not None and response.status_code == 429:
            # The host asked this client as a whole to slow down, so every
            # thread waits, not only this request.
            gate.hold(self.client.clock() + wait)
        else:
            self.client.sleep(wait)


class _HostGate:
    """Turn-taking for one host: a concurrency limit and spaced starts.

    A caller reserves the next start time under the lock and then sleeps
    until it outside the lock, so the injected sleep is the only wait when
    requests are not concurrent.
    """

    def __init__(self, limit: HostLimit, clock: Clock, sleep: Sleep) -> None:
        self.limit = limit
        self.clock = clock
        self.sleep = sleep
        self.in_flight = 0
        self.next_start = float("-inf")
        self.condition = threading.Condition()

    def enter(self, deadline: float) -> bool:
        """Wait for this host's next turn and take it.

        Returns False, without taking a turn, when the turn would start at or
        after ``deadline``.
        """
        with self.condition:
            while self.in_flight >= self.limit.max_concurrency:
                remaining = deadline - self.clock()
                if remaining <= 0:
                    return False
                # Real time: another thread's leave() ends the wait early.
                self.condition.wait(timeout=min(remaining, 1.0))
            now = self.clock()
            start = max(now, self.next_start)
            if start >= deadline:
                return False
            self.next_start = start + self.limit.min_interval_seconds
            self.in_flight += 1
        if start > now:
            self.sleep(start - now)
        return True

    def leave(self) -> None:
        with self.condition:
            self.in_flight -= 1
            self.condition.notify()

    def hold(self, until: float) -> None:
        """Start no request to this host before ``until``."""
        with self.condition:
            self.next_start = max(self.next_start, until)


_SHARED: dict[str, HttpClient] = {}
_SHARED_LOCK = threading.Lock()


def shared_client(settings: Http) -> HttpClient:
    """Return the process-wide client for these settings, created on first use.

    Sources that run in parallel threads share it, and so share each host's
    turns.
    """
    key = repr(settings)
    with _SHARED_LOCK:
        client = _SHARED.get(key)
        if client is None:
            client = HttpClient(settings)
            _SHARED[key] = client
        return client


# The run deadline of the request this thread is sending, as a time.monotonic()
# reading, or None. httpx's timeouts bound each read alone, so a server that
# sends its headers a byte at a time would otherwise outlast any deadline.
_request_deadline = threading.local()


def _time_left(timeout: float | None) -> float | None:
    """Cut a socket operation's timeout to the time left before the deadline."""
    deadline = getattr(_request_deadline, "value", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the run deadline passed during the request")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every read and write ends by the request's deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _time_left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _time_left(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        stream = self._stream.start_tls(
            ssl_context, server_hostname, _time_left(timeout)
        )
        return _DeadlineStream(stream)

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's socket backend, with connections bounded by the request's deadline."""

    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self, host, port, timeout=None, local_address=None, socket_options=None
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(
            host, port, _time_left(timeout), local_address, socket_options
        )
        return _DeadlineStream(stream)

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        stream = self._backend.connect_unix_socket(
            path, _time_left(timeout), socket_options
        )
        return _DeadlineStream(stream)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def _deadline_transport() -> httpx.HTTPTransport:
    """Return httpx's transport with its sockets bounded by the request's deadline.

    NOTE: httpx 0.28 takes no network backend, so the transport's connection
    pool (the private ``_pool``) is replaced by an equal one that has it.
    """
    transport = httpx.HTTPTransport()
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=100,
        max_keepalive_connections=20,
        keepalive_expiry=5.0,
        network_backend=_DeadlineBackend(),
    )
    return transport


def _timeout(settings: Http, read_seconds: float) -> httpx.Timeout:
    return httpx.Timeout(
        connect=min(settings.connect_timeout_seconds, read_seconds),
        read=read_seconds,
        write=read_seconds,
        pool=read_seconds,
    )


def _parse_url(
    url: str, params: Mapping[str, str] | None, source_name: str
) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
        if params:
            parsed = parsed.copy_merge_params(dict(params))
    except (httpx.InvalidURL, TypeError) as exc:
        raise CollectorError(
            f"source {source_name}: invalid URL {url!r}: {exc}"
        ) from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise CollectorError(
            f"source {source_name}: invalid URL {url!r}; expected http:// or "
            "https:// and a host"
        )
    return parsed


def _retryable(status: int) -> bool:
    return status == 429 or 500 <= status <= 599


def _retry_after(response: Response) -> float | None:
    """Read Retry-After as seconds (a number or an HTTP date); None if absent."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def _show(url: httpx.URL) -> str:
    """Return the URL without its query, for messages and logs."""
    return str(url.copy_with(query=None, fragment=None))
