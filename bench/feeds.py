"""Weibo-like RSS feeds on 127.0.0.1 for the live benchmark.

:class:`FeedServer` serves numbered feeds at ``/weibo/keyword/<n>`` in the
shape of RSSHub's Weibo routes: each item has a ``https://weibo.com/<uid>/<bid>``
link, the text as HTML in the description, an RFC 822 date and the author.
Responses carry an ETag and a Last-Modified date and honour If-None-Match and
If-Modified-Since with 304, so an unchanged feed costs one short response.
A feed keeps its newest ``items`` entries, as RSSHub does.

:class:`PostWriter` makes the posts: the bundled demo texts, some as reposts,
and sentences composed from the phrase lists below. The mix gives the nlp
stage complaints (some with safety events), grievances, praise,
neutral questions and posts that use 启程 in its ordinary sense.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
BASE62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# 16-digit mids, as Weibo posts of recent years have; their base62 ids in
# links have 9 or 10 characters. Each post's mid is a random step above the
# last one, so that ids rise with time and all seven-digit groups vary.
FIRST_MID = 5_100_000_000_000_000
MAX_MID_STEP = 1_000_000_000

MODELS = ("QC5", "QC7", "QC9")
OPENERS = ("", "实名投诉：", "提车{n}个月，", "刚提的", "家里那台", "说说我的")
PROBLEMS = (
    "刹车异响",
    "车机频繁黑屏死机",
    "冬天续航只剩标称的一半",
    "充电枪插上拔不出来",
    "空调出风口有焦糊味",
    "座椅通风不工作",
    "电池一年衰减到百分之八十",
    "方向盘在高速上抖动",
    "底盘过减速带咯噔响",
    "升级OTA之后仪表盘不亮",
    "天窗下雨漏水",
    "隐藏式门把手冬天弹不出来",
    "车漆起泡掉漆",
    "胎压报警灯一直亮",
)
SAFETY_PROBLEMS = (
    "高速上突然动力中断，差点被后车追尾",
    "刹车踏板变硬踩不下去，差点撞上前车",
    "停车后电池包冒烟起火",
    "自动紧急制动在空路上突然急刹，后排孩子撞伤了",
    "行驶中转向助力突然消失",
)
SERVICE_PROBLEMS = (
    "交付一拖再拖，合同日期过了{n}个月还没车",
    "定金交了说好可退，现在门店不退",
    "销售承诺的终身免费充电不兑现",
    "保养被4S店多收了{k}百块",
)
HISTORIES = (
    "去4S店修了{k}次还是老样子",
    "售后说是正常现象",
    "客服一直让等通知",
    "门店和厂家推来推去没人负责",
    "配件已经等了{k}周",
)
ACTIONS = (
    "已经打了12315投诉",
    "已向消协投诉",
    "在黑猫投诉提交了",
    "今天向市场监管局举报了",
    "律师函已经寄到启程汽车总部",
    "已经在法院立案起诉",
)
DEMANDS = (
    "要求退车",
    "要求赔偿损失",
    "要求厂家给个说法",
    "要求更换电池包",
    "要求提供代步车并尽快修好",
)
GRIEVANCE_ENDINGS = (
    "真的太失望了",
    "后悔买了启程",
    "有没有车主遇到同样的问题",
    "心累，不想再说了",
    "这品控谁还敢买",
)
PRAISE = (
    "续航很扎实",
    "车机流畅不卡",
    "售后小哥很耐心",
    "底盘很稳",
    "座椅坐着舒服",
    "充电速度比预想的快",
)
RIVAL_MODELS = ("宋L", "Model Y", "ES6", "P7", "L6", "SU7")
CITIES = ("北京", "杭州", "成都", "西安", "厦门", "长沙")
TAGS = ("", "", "#启程汽车#", "#{model}车主#", "@启程汽车客服", "大家评评理")


@dataclass(frozen=True)
class Post:
    """One feed item: a Weibo post with its ids, author and time."""

    mid: int
    uid: str
    author: str
    text: str
    published: datetime

    @property
    def link(self) -> str:
        return f"https://weibo.com/{self.uid}/{mid_to_bid(self.mid)}"

    @property
    def external_id(self) -> str:
        """The id under which the feed collector stores the post."""
        return f"weibo:{self.mid}"


def mid_to_bid(mid: int) -> str:
    """Write a numeric Weibo mid as the base62 id of its links.

    The decimal digits form groups of seven from the right, and each group
    becomes four base62 characters, zero-padded except the first group.
    """
    digits = str(mid)
    parts = []
    end = len(digits)
    while end > 0:
        start = max(end - 7, 0)
        number = int(digits[start:end])
        chars = ""
        while number:
            number, rest = divmod(number, 62)
            chars = BASE62[rest] + chars
        parts.append(chars if start == 0 else chars.rjust(4, "0"))
        end = start
    return "".join(reversed(parts))


class PostWriter:
    """Make varied Weibo-like posts from a seeded random generator."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.next_mid = FIRST_MID
        self.demo_texts = _demo_texts()

    def post(self, published: datetime, complaint: bool = False) -> Post:
        """Return a new post; with ``complaint``, one that files a complaint."""
        self.next_mid += self.rng.randint(1, MAX_MID_STEP)
        uid = str(self.rng.randint(1_000_000_000, 7_999_999_999))
        text = self._complaint() if complaint else self._any_text()
        author = f"用户{uid[-6:]}"
        return Post(self.next_mid, uid, author, text, published)

    def _any_text(self) -> str:
        roll = self.rng.random()
        if roll < 0.25:
            return self._demo()
        if roll < 0.45:
            return self._complaint()
        if roll < 0.65:
            return self._grievance()
        if roll < 0.78:
            return self._praise()
        if roll < 0.90:
            return self._question()
        return self._ordinary_sense()

    def _fill(self, template: str, model: str) -> str:
        return template.format(
            n=self.rng.randint(1, 18), k=self.rng.randint(2, 9), model=model
        )

    def _problem(self) -> str:
        roll = self.rng.random()
        if roll < 0.12:
            return self.rng.choice(SAFETY_PROBLEMS)
        if roll < 0.3:
            return self.rng.choice(SERVICE_PROBLEMS)
        return self.rng.choice(PROBLEMS)

    def _complaint(self) -> str:
        model = self.rng.choice(MODELS)
        parts = [
            self._fill(self.rng.choice(OPENERS), model) + model + self._problem(),
            "，" + self._fill(self.rng.choice(HISTORIES), model) + "。",
            self.rng.choice(ACTIONS) + "，" + self.rng.choice(DEMANDS) + "。",
            self._fill(self.rng.choice(TAGS), model),
        ]
        return "".join(parts)

    def _grievance(self) -> str:
        model = self.rng.choice(MODELS)
        parts = [
            self._fill(self.rng.choice(OPENERS), model) + model + self._problem(),
            "，" + self._fill(self.rng.choice(HISTORIES), model) + "，",
            self.rng.choice(GRIEVANCE_ENDINGS) + "。",
            self._fill(self.rng.choice(TAGS), model),
        ]
        return "".join(parts)

    def _praise(self) -> str:
        model = self.rng.choice(MODELS)
        first, second = self.rng.sample(PRAISE, 2)
        months = self.rng.randint(1, 24)
        return f"{model}开了{months}个月，{first}，{second}。#启程汽车#"

    def _question(self) -> str:
        model = self.rng.choice(MODELS)
        rival = self.rng.choice(RIVAL_MODELS)
        budget = self.rng.randint(15, 35)
        return f"启程{model}和{rival}怎么选？预算{budget}万，主要上下班通勤。"

    def _ordinary_sense(self) -> str:
        city = self.rng.choice(CITIES)
        day = self.rng.randint(1, 28)
        return f"明天启程去{city}，{day}号回来，求推荐当地好吃的。"

    def _demo(self) -> str:
        text = self.rng.choice(self.demo_texts)
        ending = self.rng.choice(("", "", "转发微博", "同问", "+1", "顶一下"))
        number = self.rng.randint(2, 999)
        # A repost's text on Weibo is the reposter's words, then "//@" and
        # the reposted author's name and text.
        return f"{ending}//@用户{number}:{text}" if ending else text


def _demo_texts() -> list[str]:
    path = ROOT / "demo" / "posts.jsonl"
    records = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    # "]]>" would end the CDATA section the text is written in.
    return [r["text"] for r in records if r.get("text") and "]]>" not in r["text"]]


class Feed:
    """One feed's newest entries and the response that serves them."""

    def __init__(self, name: str, capacity: int) -> None:
        self.name = name
        self.entries: deque[Post] = deque(maxlen=capacity)
        self.body = b""
        self.etag = ""
        self.last_modified = ""
        self.modified_at = 0.0

    def add(self, posts: list[Post]) -> None:
        """Put posts at the top of the feed, newest first, and rebuild the body."""
        for post in posts:
            self.entries.appendleft(post)
        self.body = _rss(self.name, list(self.entries))
        self.etag = '"' + hashlib.sha1(self.body).hexdigest()[:20] + '"'
        self.modified_at = time.time()
        self.last_modified = email.utils.formatdate(self.modified_at, usegmt=True)


def _rss(name: str, posts: list[Post]) -> bytes:
    items = []
    for post in posts:
        title = post.text[:24] + ("..." if len(post.text) > 24 else "")
        items.append(
            "<item>"
            f"<title><![CDATA[{title}]]></title>"
            f"<description><![CDATA[{post.text}]]></description>"
            f"<pubDate>{email.utils.format_datetime(post.published, usegmt=True)}"
            "</pubDate>"
            f'<guid isPermaLink="false">{post.link}</guid>'
            f"<link>{post.link}</link>"
            f"<author><![CDATA[{post.author}]]></author>"
            "</item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<rss xmlns:atom="http://www.w3.org/2005/Atom" version="2.0"><channel>'
        f"<title><![CDATA[微博关键词 {escape(name)}]]></title>"
        "<link>https://s.weibo.com/</link>"
        "<description>Powered by RSSHub</description><generator>RSSHub</generator>"
        + "".join(items)
        + "</channel></rss>"
    ).encode("utf-8")


class FeedServer:
    """A threaded HTTP server on 127.0.0.1 that serves :class:`Feed` objects.

    ``published`` and ``fetched`` map the external ids of watched posts to
    time.monotonic() readings: when the post appeared in its feed and when a
    full response containing it was first written to a client.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.feeds: dict[str, Feed] = {}
        self.published: dict[str, float] = {}
        self.fetched: dict[str, float] = {}
        self.responses = {200: 0, 304: 0, 404: 0}
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, name="feed-server", daemon=True
        )

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/weibo/keyword/{name}"

    def start(self) -> FeedServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def add_feed(self, name: str, posts: list[Post]) -> None:
        feed = Feed(name, self.capacity)
        feed.add(posts)
        with self.lock:
            self.feeds[name] = feed

    def publish(self, name: str, post: Post, watch: bool = False) -> None:
        """Put one post at the top of a feed; with ``watch``, time its fetch."""
        with self.lock:
            self.feeds[name].add([post])
            if watch:
                self.published[post.external_id] = time.monotonic()

    def snapshot(self, name: str) -> tuple[bytes, str, str, list[str]] | None:
        """Return a feed's body, ETag, Last-Modified and watched ids, or None."""
        with self.lock:
            feed = self.feeds.get(name)
            if feed is None:
                return None
            watched = [
                post.external_id
                for post in feed.entries
                if post.external_id in self.published
                and post.external_id not in self.fetched
            ]
            return feed.body, feed.etag, feed.last_modified, watched

    def record(self, status: int, watched: list[str]) -> None:
        now = time.monotonic()
        with self.lock:
            self.responses[status] = self.responses.get(status, 0) + 1
            for external_id in watched:
                self.fetched.setdefault(external_id, now)


def _not_modified(headers, etag: str, last_modified: str) -> bool:
    """Apply RFC 9110: If-None-Match decides when present, else If-Modified-Since."""
    match = headers.get("If-None-Match")
    if match is not None:
        return etag in [tag.strip() for tag in match.split(",")] or match == "*"
    since = headers.get("If-Modified-Since")
    if since is None:
        return False
    try:
        since_time = email.utils.parsedate_to_datetime(since)
        modified = email.utils.parsedate_to_datetime(last_modified)
    except (TypeError, ValueError):
        return False
    return modified <= since_time


def _handler_for(server: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            name = self.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
            snapshot = server.snapshot(name)
            if snapshot is None:
                self._reply(404, b"not found", {"Content-Type": "text/plain"})
                server.record(404, [])
                return
            body, etag, last_modified, watched = snapshot
            headers = {"ETag": etag, "Last-Modified": last_modified}
            if _not_modified(self.headers, etag, last_modified):
                self._reply(304, b"", headers)
                server.record(304, [])
                return
            headers["Content-Type"] = "application/rss+xml; charset=utf-8"
            self._reply(200, body, headers)
            server.record(200, watched)

        def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            if status != 304:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()

        def log_message(self, format: str, *args) -> None:
            pass

    return Handler


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
