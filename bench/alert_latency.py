"""Alert latency: from a critical post appearing on a feed to its mail accepted.

Serves one Weibo-like RSS feed from 127.0.0.1 (bench/feeds.py) and an SMTP
server (aiosmtpd) on 127.0.0.1, and runs `pipeline.py run` in a child process
with the feed polled every 10 seconds and alerts sent through that server.
Twenty critical posts appear one at a time at random moments. Each is timed
from appearing on the feed, and from the response that carried it, to the
moment the SMTP server accepted the first mail that quotes it. The target: the median exceeds the poll interval by no
more than 3 seconds.

    .venv/bin/python bench/alert_latency.py [--posts N] [--keep]
"""

from __future__ import annotations

import argparse
import random
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import yaml
from aiosmtpd.controller import Controller
from feeds import FeedServer, Post, PostWriter
from live import (
    LIVE_INTERVAL_MINUTES,
    START_TIMEOUT_SECONDS,
    Database,
    backlog,
    child_prefix,
    print_problems,
    start_child,
    stop_child,
    write_config,
)
from replay import train_model

TARGET_EXCESS_SECONDS = 3.0
MAIL_TIMEOUT_SECONDS = 90.0
# Each post is its own incident, so that each one opens an alert: copies of
# one post would update a single alert after its cooldown instead. Each text
# is graded critical by the trained model.
FAULTS = (
    "QC7高速上刹车突然失灵，差点追尾",
    "QC9充电时电池包冒烟起火，消防来了才扑灭",
    "QC7安全气囊在碰撞时没有弹出，我妻子受了伤",
    "QC5自动泊车直接撞上了后面的柱子，保险杠全碎",
    "QC9仪表盘夜间突然全黑，高架上什么都看不见",
    "QC5雨天底盘进水，高压电报警后整车断电",
    "QC5大灯线束短路起火，引擎盖被烧穿",
    "QC9 OTA升级后刹车踏板变硬，两次险些追尾",
    "QC5停在地库里自燃，旁边两辆车也被烧了",
    "QC7倒车时刹车失灵，撞伤了一位老人",
    "QC9在隧道里突然断电，后车差点撞上来",
    "QC5刹车异响半年没修好，昨天在路口刹不住撞了电动车",
    "QC7电池包底部被石头磕破后冒烟，全家人赶紧下车",
    "QC9在高速上突然失去动力，后车险些追尾",
    "QC5高速巡航时突然急刹，后面的货车险些追尾",
    "QC7充电桩充电时插头熔化起火，车库墙都熏黑了",
    "QC9方向盘助力失效，在环岛撞上了隔离带",
    "QC5安全带卡扣断裂，急刹时我整个人撞到了方向盘上",
    "QC7行驶中中控屏黑屏死机，导航和车速全看不到，在高架上追尾了",
    "QC9后备箱线束短路起火，烧着了里面的行李",
)
CRITICAL_TEXT = "启程{fault}，已经报警并向12315投诉，要求召回。编号{n}"


class Inbox:
    """An SMTP handler that keeps the time each message was accepted."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.accepted: list[tuple[float, str]] = []

    async def handle_DATA(self, server, session, envelope):
        parsed = message_from_bytes(envelope.content, policy=default_policy)
        body = parsed.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        with self.lock:
            self.accepted.append((time.monotonic(), text))
        return "250 OK"

    def first_quoting(self, marker: str) -> float | None:
        with self.lock:
            times = [at for at, text in self.accepted if marker in text]
        return min(times) if times else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def add_smtp(config: Path, port: int) -> None:
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["alerts"]["smtp"] = {"host": "127.0.0.1", "port": port, "security": "none"}
    # The hourly cap per recipient would hold the eleventh alert of the hour,
    # and this measures the pipeline's delay, not the cap.
    data["alerts"]["max_per_recipient_hour"] = 1000
    config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def critical_post(writer: PostWriter, number: int) -> Post:
    post = writer.post(datetime.now(UTC))
    text = CRITICAL_TEXT.format(fault=FAULTS[number % len(FAULTS)], n=number)
    return Post(post.mid, post.uid, post.author, text, post.published)


def measure(args, prefix: list[str], model: Path | None, work: Path) -> bool:
    writer = PostWriter(args.seed)
    server = FeedServer(50).start()
    server.add_feed("live", backlog(writer, 50, datetime.now(UTC), 20))
    inbox = Inbox()
    port = free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    config = write_config(
        work / "alerts", [("live", server.url("live"))], LIVE_INTERVAL_MINUTES, model
    )
    add_smtp(config, port)
    database = Database(config.parent / "bench.db")
    child = start_child(prefix, config, "run")
    ready = _wait_first_run(database, child)
    spans: list[tuple[float, float | None]] = []
    if ready:
        spans = _time_posts(args.posts, writer, server, inbox, child)
    stop_seconds, status = stop_child(child)
    smtp.stop()
    server.stop()
    database.close()
    _report(args, spans, ready, status, stop_seconds, child)
    return ready and status == 0 and len(spans) == args.posts


def _wait_first_run(database: Database, child) -> bool:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    sql = "SELECT count(*) FROM source_runs WHERE finished_at IS NOT NULL"
    while time.monotonic() < deadline and child.process.poll() is None:
        if database.count(sql) > 0:
            return True
        time.sleep(0.1)
    return False


def _time_posts(count, writer, server, inbox, child) -> list[float]:
    rng = random.Random(writer.rng.random())
    interval = LIVE_INTERVAL_MINUTES * 60
    spans = []
    for number in range(count):
        time.sleep(rng.uniform(0, interval))
        post = critical_post(writer, number)
        server.publish("live", post, watch=True)
        appeared = server.published[post.external_id]
        marker = f"编号{number}"
        deadline = appeared + MAIL_TIMEOUT_SECONDS
        while time.monotonic() < deadline and child.process.poll() is None:
            accepted = inbox.first_quoting(marker)
            if accepted is not None:
                fetched = server.fetched.get(post.external_id)
                spans.append((accepted - appeared, fetched and accepted - fetched))
                break
            time.sleep(0.02)
        if child.process.poll() is not None:
            break
    return spans


def _report(args, spans, ready, status, stop_seconds, child) -> None:
    poll = LIVE_INTERVAL_MINUTES * 60
    print(
        f"alert latency under run: {args.posts} critical posts, one feed polled every {poll:.0f} s"
    )
    if not ready:
        print("  the service did not finish its first run; see the log")
    if spans:
        appear = [span for span, _ in spans]
        fetch = [span for _, span in spans if span is not None]
        median, worst = statistics.median(appear), max(appear)
        print(
            f"  appear to mail accepted: median {median:.2f} s, worst {worst:.2f} s, {len(spans)} of {args.posts} mailed"
        )
        if fetch:
            print(
                f"  fetch to mail accepted:  median {statistics.median(fetch):.2f} s, "
                f"worst {max(fetch):.2f} s"
            )
        print(f"  poll interval:           {poll:.2f} s")
        verdict = "met" if median - poll <= TARGET_EXCESS_SECONDS else "missed"
        print(
            f"  target:                  median at most {poll + TARGET_EXCESS_SECONDS:.0f} s ({poll:.0f} s poll + {TARGET_EXCESS_SECONDS:.0f} s): {verdict}"
        )
    print(f"  stop:                    exit status {status} after {stop_seconds:.1f} s")
    print_problems(child.log)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=20, help="critical posts to time")
    parser.add_argument("--seed", type=int, default=7, help="seed of the posts")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    prefix = child_prefix()
    work = Path(tempfile.mkdtemp(prefix="fenghuo-alerts-"))
    try:
        model = train_model(work / "model.joblib")
        ok = measure(args, prefix, model, work)
    finally:
        if args.keep:
            print(f"work folder: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
