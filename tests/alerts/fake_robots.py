"""Loopback stand-ins for 企业微信, 钉钉 and 飞书 group robots.

A :class:`FakeRobot` is a threaded HTTP server on 127.0.0.1 that checks each
request the way the real robot does. It checks the webhook key or token, the
钉钉 signature in the query, the 飞书 signature in the body, an optional
keyword, the payload's shape and its size limit. It responds as the robot
does, with HTTP 200 and errcode/errmsg (企业微信, 钉钉) or code/msg (飞书).
Replies queued with :meth:`FakeRobot.reply` are sent instead, in order, for
tests of error responses.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

WECOM_PATH = "/cgi-bin/webhook/send"
DINGTALK_PATH = "/robot/send"
FEISHU_PATH = "/open-apis/bot/v2/hook/"
SIGNATURE_WINDOW_SECONDS = 3600


@dataclass
class Reply:
    """A scripted response. A dict body is sent as JSON."""

    status: int = 200
    body: Any = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def encoded(self) -> bytes:
        if isinstance(self.body, (dict, list)):
            return json.dumps(self.body, ensure_ascii=False).encode()
        return self.body.encode() if isinstance(self.body, str) else self.body


@dataclass
class Received:
    """One request as the fake robot read it, with lower-case header names."""

    path: str
    raw_query: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    payload: Any


class FakeRobot:
    """One robot of ``kind`` with its token, optional secret and keyword."""

    def __init__(
        self,
        kind: str,
        *,
        token: str = "robot-token-0123456789",
        secret: str | None = None,
        keyword: str | None = None,
    ) -> None:
        self.kind = kind
        self.token = token
        self.secret = secret
        self.keyword = keyword
        self.received: list[Received] = []
        self._replies: list[Reply] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"fake-{kind}-robot",
            daemon=True,
        )

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        """The webhook URL, carrying the token as the real robot's does."""
        if self.kind == "wecom":
            return f"{self.base}{WECOM_PATH}?key={self.token}"
        if self.kind == "dingtalk":
            return f"{self.base}{DINGTALK_PATH}?access_token={self.token}"
        return f"{self.base}{FEISHU_PATH}{self.token}"

    def start(self) -> FakeRobot:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def reply(self, *replies: Reply) -> None:
        """Send ``replies`` to the next requests instead of checking them."""
        with self._lock:
            self._replies.extend(replies)

    def last(self) -> Received:
        with self._lock:
            return self.received[-1]

    def respond(self, request: Received) -> Reply:
        with self._lock:
            self.received.append(request)
            if self._replies:
                return self._replies.pop(0)
        if self.kind == "wecom":
            return Reply(body=self._check_wecom(request))
        if self.kind == "dingtalk":
            return Reply(body=self._check_dingtalk(request))
        return self._check_feishu(request)

    def _check_wecom(self, request: Received) -> dict[str, Any]:
        if request.path != WECOM_PATH or request.query.get("key") != self.token:
            return {"errcode": 93000, "errmsg": "invalid webhook url"}
        payload = request.payload
        content = _dig(payload, "markdown", "content")
        if _dig(payload, "msgtype") != "markdown" or not isinstance(content, str):
            return {"errcode": 40008, "errmsg": "invalid message type"}
        if len(content.encode("utf-8")) > 4096:
            return {"errcode": 40058, "errmsg": "markdown.content exceed max length"}
        return {"errcode": 0, "errmsg": "ok"}

    def _check_dingtalk(self, request: Received) -> dict[str, Any]:
        if request.path != DINGTALK_PATH or request.query.get("access_token") != (
            self.token
        ):
            return {"errcode": 300005, "errmsg": "token is not exist"}
        if self.secret is not None:
            problem = _dingtalk_signature_problem(request.query, self.secret)
            if problem:
                return {"errcode": 310000, "errmsg": problem}
        title = _dig(request.payload, "markdown", "title")
        text = _dig(request.payload, "markdown", "text")
        if _dig(request.payload, "msgtype") != "markdown" or not (
            isinstance(title, str) and isinstance(text, str)
        ):
            return {"errcode": 40035, "errmsg": "invalid markdown message"}
        if self.keyword and self.keyword not in title + text:
            return {"errcode": 310000, "errmsg": "keywords not in content"}
        return {"errcode": 0, "errmsg": "ok"}

    def _check_feishu(self, request: Received) -> Reply:
        if request.path != FEISHU_PATH + self.token:
            return Reply(body={"code": 19001, "msg": "param invalid: token"})
        if len(request.body) > 20 * 1024 or not isinstance(request.payload, dict):
            return Reply(400, {"code": 9499, "msg": "Bad Request"})
        if self.secret is not None and not _feishu_signature_ok(
            request.payload, self.secret
        ):
            return Reply(
                body={
                    "code": 19021,
                    "msg": "sign match fail or timestamp is not within one hour "
                    "from current time",
                }
            )
        card = request.payload.get("card")
        if request.payload.get("msg_type") != "interactive" or not _card_ok(card):
            return Reply(400, {"code": 9499, "msg": "Bad Request"})
        if self.keyword and self.keyword not in json.dumps(card, ensure_ascii=False):
            return Reply(body={"code": 19024, "msg": "Key Words Not Found"})
        return Reply(body={"code": 0, "msg": "success", "data": {}})


def _dingtalk_signature_problem(query: dict[str, str], secret: str) -> str | None:
    timestamp = query.get("timestamp", "")
    if not timestamp.isdigit():
        return "invalid timestamp"
    if abs(int(timestamp) / 1000 - time.time()) > SIGNATURE_WINDOW_SECONDS:
        return "invalid timestamp"
    message = f"{timestamp}\n{secret}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    expected = base64.b64encode(digest).decode()
    if not hmac.compare_digest(query.get("sign", ""), expected):
        return "sign not match"
    return None


def _feishu_signature_ok(payload: dict[str, Any], secret: str) -> bool:
    timestamp = str(payload.get("timestamp", ""))
    if not timestamp.isdigit():
        return False
    if abs(int(timestamp) - time.time()) > SIGNATURE_WINDOW_SECONDS:
        return False
    key = f"{timestamp}\n{secret}".encode()
    expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    return hmac.compare_digest(str(payload.get("sign", "")), expected)


def _card_ok(card: Any) -> bool:
    header = _dig(card, "header")
    elements = _dig(card, "elements")
    return (
        isinstance(_dig(header, "title", "content"), str)
        and isinstance(_dig(header, "template"), str)
        and isinstance(elements, list)
        and len(elements) > 0
    )


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _handler_for(robot: FakeRobot) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            split = urlsplit(self.path)
            try:
                payload = json.loads(body)
            except ValueError:
                payload = None
            request = Received(
                path=split.path,
                raw_query=split.query,
                query={k: v[0] for k, v in parse_qs(split.query).items()},
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                payload=payload,
            )
            reply = robot.respond(request)
            time.sleep(reply.delay)
            data = reply.encoded()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting, as in the timeout test

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
