"""A loopback fake of the parts of Reddit's API that the Reddit collector uses.

It serves the OAuth token endpoint, subreddit listings, search, comment trees
with "load more comments" stubs, /api/morechildren and /api/info in Reddit's
JSON shapes, from posts the test adds. It can respond with 429 to chosen
requests and records every request it receives. It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

CLIENT_ID = "fake-client-id"
CLIENT_SECRET = "fake-client-secret"
ACCESS_TOKEN = "fake-access-token"
INSTALLED_GRANT = "https://oauth.reddit.com/grants/installed_client"

# Sent with every successful API response: a budget far from exhausted, so
# prawcore's own rate limiter never sleeps.
RATE_LIMIT_HEADERS = {
    "x-ratelimit-remaining": "595.0",
    "x-ratelimit-used": "5",
    "x-ratelimit-reset": "300",
}

Predicate = Callable[[str, str, dict[str, str]], bool]


@dataclass
class Request:
    """One request the fake received, with its query or form values."""

    method: str
    path: str
    params: dict[str, str]
    user_agent: str


@dataclass
class Throttle:
    """Respond with 429 to ``count`` requests matching ``when`` (None: all)."""

    count: int
    when: Predicate | None = None
    retry_after: str | None = None

    def matches(self, method: str, path: str, params: dict[str, str]) -> bool:
        return self.count > 0 and (self.when is None or self.when(method, path, params))


@dataclass
class FakeReddit:
    """Posts, comments and behaviour of the fake API.

    ``page_size`` caps every listing page, as Reddit caps them at 100.
    Listings of ``private_subreddits`` return 403, as Reddit's do.
    Comments whose ``more`` value is set are left out of the comment tree and
    stand behind a "load more comments" stub of that name.
    """

    page_size: int = 100
    things: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    throttle: Throttle | None = None
    private_subreddits: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _clock: int = field(default_factory=lambda: int(time.time()) - 6 * 3600)

    def add_submission(
        self, id: str, subreddit: str, title: str, selftext: str = "", **data: Any
    ) -> str:
        """Add a submission; return its fullname. ``data`` overrides any field."""
        self._clock += 60
        thing = {
            "id": id,
            "name": f"t3_{id}",
            "title": title,
            "selftext": selftext,
            "author": "qc_owner",
            "author_fullname": "t2_owner",
            "subreddit": subreddit,
            "created_utc": float(self._clock),
            "score": 1,
            "num_comments": 0,
            "num_crossposts": 0,
            "is_self": True,
            "url": f"https://www.reddit.com/r/{subreddit}/comments/{id}/",
            "permalink": f"/r/{subreddit}/comments/{id}/{title[:20]}/",
            "removed_by_category": None,
        }
        thing.update(data)
        self.things[thing["name"]] = thing
        return thing["name"]

    def add_comment(
        self, id: str, parent: str, body: str, more: str | None = None, **data: Any
    ) -> str:
        """Add a comment under a submission or comment fullname; return its fullname."""
        self._clock += 30
        submission = self._submission_of(parent)
        thing = {
            "id": id,
            "name": f"t1_{id}",
            "body": body,
            "author": "qc_reader",
            "author_fullname": "t2_reader",
            "subreddit": submission["subreddit"],
            "link_id": submission["name"],
            "parent_id": parent,
            "created_utc": float(self._clock),
            "score": 1,
            "permalink": f"{submission['permalink']}{id}/",
            "more": more,
        }
        thing.update(data)
        self.things[thing["name"]] = thing
        submission["num_comments"] += 1
        return thing["name"]

    def remove(self, fullname: str, placeholder: str = "[removed]") -> None:
        """Show a post as removed by a moderator or deleted by its author."""
        thing = self.things[fullname]
        if fullname.startswith("t3_"):
            thing["selftext"] = placeholder
            thing["removed_by_category"] = (
                "moderator" if placeholder == "[removed]" else "deleted"
            )
        else:
            thing["body"] = placeholder
        if placeholder == "[deleted]":
            thing["author"] = "[deleted]"

    # Responses

    def listing(self, subreddits: str, params: dict[str, str], query: str | None):
        names = {name.lower() for name in subreddits.split("+")}
        found = [
            thing
            for thing in self.things.values()
            if thing["name"].startswith("t3_")
            and ("all" in names or thing["subreddit"].lower() in names)
            and (query is None or _matches(thing, query))
        ]
        # Reddit lists by submission time. A test whose post has a created_utc
        # that cannot be sorted gives "order" in its place.
        found.sort(
            key=lambda thing: (thing.get("order", thing["created_utc"]), thing["id"]),
            reverse=True,
        )
        return self._page(found, params)

    def comment_tree(self, submission_id: str) -> list[dict[str, Any]]:
        submission = self.things[f"t3_{submission_id}"]
        children = self._replies(submission["name"])
        stubs: dict[str, list[str]] = {}
        for thing in self.things.values():
            if thing["name"].startswith("t1_") and thing["more"]:
                if thing["link_id"] == submission["name"]:
                    stubs.setdefault(thing["more"], []).append(thing["id"])
        for name, ids in stubs.items():
            children.append(_more_stub(name, submission["name"], ids))
        return [
            _listing([_kind("t3", submission)], None),
            _listing(children, None),
        ]

    def more_children(self, ids: list[str]) -> dict[str, Any]:
        things = [_kind("t1", self.things[f"t1_{id}"]) for id in ids]
        for thing in things:
            thing["data"]["replies"] = ""
        return {"json": {"errors": [], "data": {"things": things}}}

    def info(self, fullnames: list[str]) -> dict[str, Any]:
        children = []
        for name in fullnames:
            if name in self.things:
                thing = _kind(name[:2], self.things[name])
                if name.startswith("t1_"):
                    thing["data"]["replies"] = ""
                children.append(thing)
        return _listing(children, None)

    def _replies(self, parent: str) -> list[dict[str, Any]]:
        replies = []
        for thing in self.things.values():
            if thing["name"].startswith("t1_") and thing["parent_id"] == parent:
                if thing["more"]:
                    continue
                child = _kind("t1", thing)
                nested = self._replies(thing["name"])
                child["data"]["replies"] = _listing(nested, None) if nested else ""
                replies.append(child)
        return replies

    def _page(self, found: list[dict[str, Any]], params: dict[str, str]):
        start = 0
        after = params.get("after")
        if after:
            names = [thing["name"] for thing in found]
            start = names.index(after) + 1 if after in names else len(found)
        size = min(int(params.get("limit", 25)), self.page_size)
        page = found[start : start + size]
        more = start + size < len(found)
        return _listing(
            [_kind("t3", thing) for thing in page], page[-1]["name"] if more else None
        )

    def _submission_of(self, parent: str) -> dict[str, Any]:
        thing = self.things[parent]
        return thing if parent.startswith("t3_") else self.things[thing["link_id"]]

    def take_throttle(self, method: str, path: str, params: dict[str, str]) -> bool:
        with self._lock:
            throttle = self.throttle
            if throttle is None or not throttle.matches(method, path, params):
                return False
            throttle.count -= 1
            return True


def after_pages(path: str, pages: int) -> Predicate:
    """Return a throttle predicate that matches the listing ``path`` after ``pages``.

    With ``Throttle(count, after_pages(path, pages))`` the fake serves the
    first ``pages`` pages of that listing and then responds with 429.
    """
    served = 0

    def later_page(method: str, request_path: str, params: dict[str, str]) -> bool:
        nonlocal served
        if method != "GET" or request_path != path:
            return False
        served += 1
        return served > pages

    return later_page


def _matches(thing: dict[str, Any], query: str) -> bool:
    text = f"{thing['title']}\n{thing['selftext']}".lower()
    return query.lower() in text


def _kind(kind: str, thing: dict[str, Any]) -> dict[str, Any]:
    data = {key: value for key, value in thing.items() if key != "more"}
    return {"kind": kind, "data": data}


def _listing(children: list[dict[str, Any]], after: str | None) -> dict[str, Any]:
    return {
        "kind": "Listing",
        "data": {"after": after, "before": None, "children": children},
    }


def _more_stub(name: str, parent: str, ids: list[str]) -> dict[str, Any]:
    return {
        "kind": "more",
        "data": {
            "count": len(ids),
            "name": f"t1_{name}",
            "id": name,
            "parent_id": parent,
            "depth": 0,
            "children": ids,
        },
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one write: written apart, they wait on the
    # client's delayed ACK (about 40 ms) on every kept-alive request.
    wbufsize = 1 << 16
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        params = _single(parse_qs(url.query))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            params.update(_single(parse_qs(self.rfile.read(length).decode())))
        path = url.path.rstrip("/")
        fake = self.server.fake
        fake.requests.append(
            Request(method, path, params, self.headers.get("User-Agent", ""))
        )

        if path == "/api/v1/access_token":
            self._token(params)
        elif self.headers.get("Authorization") != f"bearer {ACCESS_TOKEN}":
            self._send(401, {"message": "Unauthorized", "error": 401})
        elif fake.take_throttle(method, path, params):
            self._too_many(fake.throttle)
        else:
            self._route(method, path, params)

    def _token(self, params: dict[str, str]) -> None:
        expected = CLIENT_SECRET
        if params.get("grant_type") == INSTALLED_GRANT:
            expected = ""
        header = self.headers.get("Authorization", "")
        credentials = base64.b64decode(header.removeprefix("Basic ")).decode()
        if credentials != f"{CLIENT_ID}:{expected}":
            self._send(401, {"message": "Unauthorized", "error": 401}, limits=False)
            return
        token = {
            "access_token": ACCESS_TOKEN,
            "token_type": "bearer",
            "expires_in": 86400,
            "scope": "*",
        }
        self._send(200, token, limits=False)

    def _route(self, method: str, path: str, params: dict[str, str]) -> None:
        fake = self.server.fake
        parts = path.strip("/").split("/")
        if method == "GET" and len(parts) == 3 and parts[0] == "r":
            if set(parts[1].lower().split("+")) & fake.private_subreddits:
                self._send(403, {"message": "Forbidden", "error": 403})
                return
            query = params.get("q") if parts[2] == "search" else None
            if parts[2] == "new" or query is not None:
                self._send(200, fake.listing(parts[1], params, query))
                return
        if method == "GET" and parts == ["search"]:
            self._send(200, fake.listing("all", params, params.get("q", "")))
        elif method == "GET" and len(parts) == 2 and parts[0] == "comments":
            self._send(200, fake.comment_tree(parts[1]))
        elif method == "POST" and path == "/api/morechildren":
            self._send(200, fake.more_children(params["children"].split(",")))
        elif method == "GET" and path == "/api/info":
            self._send(200, fake.info(params.get("id", "").split(",")))
        else:
            self._send(404, {"message": "Not Found", "error": 404})

    def _too_many(self, throttle: Throttle | None) -> None:
        headers = {}
        if throttle is not None and throttle.retry_after is not None:
            headers["retry-after"] = throttle.retry_after
        self._send(429, {"message": "Too Many Requests", "error": 429}, False, headers)

    def _send(
        self,
        status: int,
        body: Any,
        limits: bool = True,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            # prawcore sends "Connection: close" with the token request, and
            # the client reuses the connection unless the response has it too.
            self.send_header("Connection", "close")
        for name, value in {
            **(RATE_LIMIT_HEADERS if limits else {}),
            **(headers or {}),
        }.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeReddit) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


def _single(values: dict[str, list[str]]) -> dict[str, str]:
    return {key: items[-1] for key, items in values.items()}


class FakeRedditServer:
    """Serve a :class:`FakeReddit` on 127.0.0.1 from a thread, on a free port."""

    def __init__(self, fake: FakeReddit) -> None:
        self.fake = fake
        self._server = _Server(fake)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeRedditServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def seed_qicheng(fake: FakeReddit) -> None:
    """Add invented posts about the brand 启程 (Qicheng) and its QC5, QC7 and QC9.

    r/qicheng contains four readable submissions and one removed before anyone
    saw it. r/chinacars contains one about Qicheng and one about something else.
    The QC7 submission has a comment tree with a deleted comment that has a
    reply, and two "load more comments" stubs: "more_big" with two comments
    and "more_small" with one.
    """
    fake.add_submission(
        "qc7ota",
        "qicheng",
        "QC7 OTA update broke lane keeping",
        "Since the 2.3 OTA my Qicheng QC7 drifts out of lane. Dealer says wait.",
        author="lane_drifter",
        author_fullname="t2_drifter",
        score=42,
        num_crossposts=2,
    )
    fake.add_comment("c_same", "t3_qc7ota", "Same on mine, QC7 2024 build.", score=9)
    fake.add_comment("c_reply", "t1_c_same", "Rolled back? 启程客服 said no.")
    fake.add_comment("c_gone", "t3_qc7ota", "[deleted]", author="[deleted]")
    fake.add_comment("c_under", "t1_c_gone", "Whatever they said, file a report.")
    fake.add_comment(
        "c_more1", "t3_qc7ota", "QC7 owners group is tracking it.", "more_big"
    )
    fake.add_comment("c_more2", "t3_qc7ota", "Mine got fixed by 2.3.1.", "more_big")
    fake.add_comment("c_more3", "t3_qc7ota", "启程 should recall this.", "more_small")
    fake.add_submission(
        "qc5week",
        "qicheng",
        "启程QC5 提车一周感受",
        "续航比宣传的少了快一百公里，冬天更明显。车机倒是很流畅。",
        author="北京车主小王",
        author_fullname="t2_xiaowang",
        score=15,
    )
    fake.add_submission(
        "qc9brake",
        "qicheng",
        "QC9 brake noise after 3000 km",
        "Squeal at low speed, 启程 service centre could not reproduce.",
        author="[deleted]",
        author_fullname=None,
        score=7,
    )
    fake.add_submission(
        "qc7scam",
        "qicheng",
        "QC7 deposit refund??",
        "[removed]",
        removed_by_category="moderator",
    )
    fake.add_submission(
        "qc9link",
        "qicheng",
        "Review: 启程QC9 long-range test",
        is_self=False,
        url="https://example.com/qc9-review",
        score=-3,
    )
    fake.add_submission(
        "vsseal",
        "chinacars",
        "Qicheng QC7 vs BYD Seal for a family of four",
        "Test drove both. The Qicheng is quieter, the Seal charges faster.",
        author="family_ev",
    )
    fake.add_submission(
        "tyres",
        "chinacars",
        "Best winter tyres for a compact EV",
        "Looking for recommendations, not brand specific.",
    )
