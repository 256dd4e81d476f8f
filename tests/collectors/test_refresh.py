"""The engagement refresh: recent posts worth watching read again on their own
schedule, and posts cut short at 全文 completed in place and analysed again."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import yaml
from fake_reddit import (
    CLIENT_ID,
    CLIENT_SECRET,
    FakeReddit,
    FakeRedditServer,
    seed_qicheng,
)
from loopback import Reply, Request
from sqlalchemy import select

import pipeline
from collectors import build_rereader
from collectors.feed import weibo_bid_to_mid
from config import Brand, Config, RedditOptions, Source
from items import KnownPost
from service import build_scheduler
from storage import Store
from storage.tables import classifications, engagement_snapshots, posts

ROOT = Path(__file__).resolve().parents[2]

UID = "6012345678"
CRITICAL = "P0w7ex6A3"
CUT = "P0w7ex6Fq"
QUIET = "P0w7ex6Gz"
OLD = "P0w7ex6Hk"

CRITICAL_TEXT = (
    "QC7高速上刹车突然失灵，差点追尾，4S店说检测不出问题拒绝处理。"
    "再不解决我就去12315投诉，还要找媒体曝光！@启程汽车客服"
)
CUT_SHOWN = (
    "提车一个月说说QC5的续航和车机，先说结论：冬天续航打七折，车机偶尔卡顿…"
    f'<a href="https://weibo.com/{UID}/{CUT}">全文</a>'
)
CUT_FULL = (
    "提车一个月说说QC5的续航和车机，先说结论：冬天续航打七折，车机偶尔卡顿。"
    "上周高速上突然黑屏，仪表盘全黑，差点出事故，4S店拖了一周说等配件，"
    "我已经向12315投诉，要求启程汽车给个说法并赔偿！"
)
QUIET_TEXT = "今天开QC5去郊外转了一圈，风景不错，车也挺安静的。"


def rss(entries: list[tuple[str, str, datetime]]) -> bytes:
    items = "".join(
        f"<item><description><![CDATA[{text}]]></description>"
        f"<pubDate>{format_datetime(created)}</pubDate>"
        f"<link>https://weibo.com/{UID}/{bid}</link>"
        f"<author><![CDATA[启程车主小王]]></author></item>"
        for bid, text, created in entries
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>小王的微博</title><link>https://weibo.com/{UID}/</link>"
        f"{items}</channel></rss>"
    ).encode()


class Weibo:
    """The status details a Weibo-like API serves, by mid, changed by tests."""

    def __init__(self) -> None:
        self.counts: dict[str, tuple[int, int, int]] = {}
        self.texts: dict[str, str] = {}
        self.gone: set[str] = set()

    def answer(self, request: Request) -> Reply:
        mid = request.param("id") or ""
        if mid in self.gone:
            return Reply(404, "not found")
        likes, reposts, comments = self.counts.get(mid, (0, 0, 0))
        data = {"attitudes_count": likes, "reposts_count": reposts}
        data["comments_count"] = comments
        if mid in self.texts:
            data["longTextContent"] = self.texts[mid]
        body = json.dumps({"ok": 1, "data": data}, ensure_ascii=False)
        return Reply(200, body, {"Content-Type": "application/json"})


def mid(bid: str) -> str:
    return weibo_bid_to_mid(bid) or ""


@pytest.fixture
def weibo(server):
    now = datetime.now(UTC)
    entries = [
        (CRITICAL, CRITICAL_TEXT, now - timedelta(hours=2)),
        (CUT, CUT_SHOWN, now - timedelta(hours=3)),
        (QUIET, QUIET_TEXT, now - timedelta(hours=1)),
        (OLD, CRITICAL_TEXT.replace("QC7", "QC9"), now - timedelta(days=5)),
    ]
    server.route("/feed", Reply(200, rss(entries), {"Content-Type": "text/xml"}))
    api = Weibo()
    api.texts[mid(CUT)] = CUT_FULL
    server.respond("/extend", api.answer)
    return api


def refresh_config(tmp_path: Path, database_url: str, server):
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["storage"] = {"url": database_url}
    data["alerts"]["outbox"] = str(tmp_path / "outbox")

    # The cue lexicons load at once; the trained model would add seconds to
    # every test and is not what these tests are about.
    data["classifier"] = "lexicon"

    fields = {
        "text": "data.longTextContent",
        "likes": "data.attitudes_count",
        "reposts": "data.reposts_count",
        "comments": "data.comments_count",
    }
    data["sources"] = [
        {
            "name": "weibo",
            "kind": "feed",
            "platform": "weibo",
            "feed": {"urls": [server.url("/feed")]},
            "detail": {"url": server.url("/extend?id={native_id}"), "fields": fields},
        }
    ]
    data["http"] = {
        "default_host": {"min_interval_seconds": 0},
        "retries": 1,
        "backoff_seconds": 0.05,
    }
    data["refresh"] = {"interval_minutes": 10, "max_age_hours": 48}

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return pipeline.config_module.load(path)


def post_ids(store: Store) -> dict[str, int]:
    with store.engine.connect() as connection:
        found = connection.execute(select(posts.c.id, posts.c.external_id))
        by_mid = {external.rsplit(":", 1)[1]: i for i, external in found}
    return {bid: by_mid[mid(bid)] for bid in (CRITICAL, CUT, QUIET, OLD)}


def snapshot_counts(store: Store, post_id: int) -> list[tuple[int, int, int]]:
    column = engagement_snapshots.c
    statement = (
        select(column.likes, column.reposts, column.comments)
        .where(column.post_id == post_id)
        .order_by(column.id)
    )
    with store.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(statement)]


def requested_mids(server) -> list[str]:
    return [request.param("id") for request in server.requests_to("/extend")]


@pytest.fixture
def job(tmp_path, database_url, server, weibo):
    config = refresh_config(tmp_path, database_url, server)
    with Store(database_url) as store:
        store.migrate()
        yield pipeline.Job(config, store)


def collect(job: pipeline.Job) -> dict[str, int]:
    summary = job.run_source(job.config.sources[0])
    assert summary.status == "ok", summary.error
    return post_ids(job.store)


def test_cut_post_completed_when_collected(job, server):
    ids = collect(job)

    record = job.store.get_post(ids[CUT])
    assert requested_mids(server) == [mid(CUT)], "only the cut post is looked up"
    assert record.item.text == CUT_FULL
    assert "全文" in record.item.raw["shown_text"]
    assert not record.truncated
    assert record.classification.kind == "complaint"
    assert record.grading is not None and record.grading.level != "normal"
    with job.store.engine.connect() as connection:
        rows = connection.execute(
            select(classifications.c.id).where(classifications.c.post_id == ids[CUT])
        ).all()
    assert len(rows) == 2, "the analysis of the part shown stays on record"


def test_refresh_reads_watched_posts_only(job, server, weibo):
    ids = collect(job)
    level = job.store.get_post(ids[CRITICAL]).grading.level
    assert level in ("medium", "critical")
    weibo.counts[mid(CRITICAL)] = (40, 300, 25)
    before = len(requested_mids(server))

    summary = job.refresh_engagement()

    requested = requested_mids(server)[before:]
    assert mid(CRITICAL) in requested
    assert mid(QUIET) not in requested, "a calm post is not read again"
    assert mid(OLD) not in requested, (
        "a post older than max_age_hours is not read again"
    )
    assert snapshot_counts(job.store, ids[CRITICAL])[-1] == (40, 300, 25)
    assert summary.refreshed >= 1


def test_unchanged_counts_add_no_snapshot(job, weibo):
    ids = collect(job)
    weibo.counts[mid(CRITICAL)] = (5, 8, 2)
    job.refresh_engagement()
    job.refresh_engagement()

    assert snapshot_counts(job.store, ids[CRITICAL]) == [(0, 0, 0), (5, 8, 2)]


def test_rising_reposts_regrade_the_post(job, weibo):
    ids = collect(job)
    before = job.store.get_post(ids[CRITICAL]).grading
    weibo.counts[mid(CRITICAL)] = (9_000, 60_000, 12_000)

    summary = job.refresh_engagement()

    after = job.store.get_post(ids[CRITICAL]).grading
    assert summary.regraded >= 1
    impact = after.factor("public_impact").score
    assert impact > before.factor("public_impact").score
    assert after.level == "critical"


def test_full_text_looked_up_once(job, server, weibo):
    del weibo.texts[mid(CUT)]
    ids = collect(job)
    job.refresh_engagement()
    job.refresh_engagement()

    assert requested_mids(server).count(mid(CUT)) == 1
    record = job.store.get_post(ids[CUT])
    assert record.item.text == CUT_SHOWN
    assert record.truncated
    assert "shown_text" not in record.item.raw


def test_post_gone_at_its_address_marked_removed(job, server, weibo):
    ids = collect(job)
    weibo.gone.add(mid(CRITICAL))

    job.refresh_engagement()
    job.refresh_engagement()

    record = job.store.get_post(ids[CRITICAL])
    assert record.item.removed
    assert record.item.text == CRITICAL_TEXT, "the captured text stays"
    assert requested_mids(server).count(mid(CRITICAL)) == 1


def test_short_full_text_not_used(job, server, weibo):
    weibo.texts[mid(CUT)] = "短"
    ids = collect(job)

    record = job.store.get_post(ids[CUT])
    assert record.item.text == CUT_SHOWN
    assert requested_mids(server).count(mid(CUT)) == 1


def test_address_missing_every_post_removes_none(job, server):
    ids = collect(job)
    server.route("/extend", Reply(404, "not found"))
    before = len(requested_mids(server))

    job.refresh_engagement()

    assert len(requested_mids(server)) - before == 2, "the critical and cut posts"
    assert not job.store.get_post(ids[CRITICAL]).item.removed
    assert not job.store.get_post(ids[CUT]).item.removed


def test_failing_address_leaves_posts_for_next_refresh(job, server, weibo):
    server.route("/extend", Reply(503, "busy"))
    ids = collect(job)

    summary = job.refresh_engagement()

    assert summary.fetched == 0
    assert job.store.get_post(ids[CUT]).truncated
    server.respond("/extend", weibo.answer)
    job.refresh_engagement()
    assert job.store.get_post(ids[CUT]).item.text == CUT_FULL


def test_feed_without_detail_is_not_refreshed(tmp_path, database_url, server, weibo):
    config = refresh_config(tmp_path, database_url, server)
    plain = dataclasses.replace(config.sources[0], detail=None)
    config = dataclasses.replace(config, sources=(plain,))
    with Store(database_url) as store:
        store.migrate()
        job = pipeline.Job(config, store)
        job.run_source(plain)
        summary = job.refresh_engagement()

    assert summary.fetched == 0
    assert server.requests_to("/extend") == []


def test_refresh_scheduled_on_its_own_interval(tmp_path, database_url, server, weibo):
    config = refresh_config(tmp_path, database_url, server)
    with Store(database_url) as store:
        store.migrate()
        scheduler = build_scheduler(pipeline.Job(config, store), config)
        job = scheduler.get_job("refresh")
        first = job.next_run_time
        later = job.trigger.get_next_fire_time(first, first)

    assert job.max_instances == 1
    assert job.coalesce
    assert timedelta(minutes=9) < first - datetime.now(UTC) <= timedelta(minutes=10)
    assert later - first == timedelta(minutes=10)


# Reddit returns any post by its id, without a detail section.


@pytest.fixture
def reddit(monkeypatch):
    monkeypatch.setenv("FENGHUO_REDDIT_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("FENGHUO_REDDIT_CLIENT_SECRET", CLIENT_SECRET)
    fake = FakeReddit()
    seed_qicheng(fake)
    with FakeRedditServer(fake) as api:
        options = RedditOptions(
            subreddits=("qicheng",), oauth_url=api.url, reddit_url=api.url
        )
        source = Source(name="reddit", kind="reddit", reddit=options)
        config = Config(brand=Brand(name="启程汽车"), sources=(source,))
        yield fake, build_rereader(source, config)


def known(fullname: str) -> KnownPost:
    return KnownPost(1, "reddit", "reddit", fullname, None, None, None)


def test_reddit_rereads_counts_and_removals(reddit):
    fake, reader = reddit
    [first, second, *_] = sorted(n for n in fake.things if n.startswith("t3_"))
    fake.things[first]["score"] = 512
    fake.things[first]["num_crossposts"] = 7
    fake.remove(second)

    rereads = {
        r.post.external_id: r
        for r in reader.reread([known(first), known(second), known("t3_neverposted")])
    }

    assert set(rereads) == {first, second}
    assert rereads[first].engagement.likes == 512
    assert rereads[first].engagement.reposts == 7
    assert not rereads[first].removed
    assert rereads[second].removed and rereads[second].engagement is None
    [info] = [r for r in fake.requests if r.path == "/api/info"]
    assert "t3_neverposted" in info.params["id"]


# Settings


def feed_with(detail: dict) -> dict:
    return {
        "name": "weibo",
        "kind": "feed",
        "feed": {"urls": ["http://127.0.0.1:9/feed"]},
        "detail": detail,
    }


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["sources"][0].update(detail={"url": "http://127.0.0.1:9/{id}"}),
            "sources[0].detail: only feed and json sources",
        ),
        (
            lambda d: d["sources"].append(
                feed_with({"url": "http://127.0.0.1:9/post", "fields": {"likes": "n"}})
            ),
            "sources[1].detail.url: expected one of {native_id}",
        ),
        (
            lambda d: d["sources"].append(
                feed_with({"url": "http://127.0.0.1:9/{mid}", "fields": {"likes": "n"}})
            ),
            "and no other placeholder",
        ),
        (
            lambda d: d["sources"].append(
                feed_with({"url": "http://127.0.0.1:9/{native_id}", "fields": {}})
            ),
            "sources[1].detail.fields: expected at least one of text",
        ),
        (
            lambda d: d["sources"].append(
                feed_with(
                    {"url": "http://127.0.0.1:9/{native_id}", "fields": {"shares": "n"}}
                )
            ),
            "sources[1].detail.fields.shares: unknown field",
        ),
        (
            lambda d: d["sources"].append(
                feed_with(
                    {
                        "url": "http://127.0.0.1:9/{native_id}&x=}",
                        "fields": {"likes": "n"},
                    }
                )
            ),
            "sources[1].detail.url: invalid placeholder",
        ),
        (
            lambda d: d["sources"].append(
                feed_with({"url": "http://127.0.0.1:9/{{native_id}}", "fields": {}})
            ),
            "sources[1].detail.url: expected one of {native_id}",
        ),
        (
            lambda d: d["refresh"].update(interval_minutes=0),
            "refresh.interval_minutes: expected a number of minutes from",
        ),
        (
            lambda d: d["refresh"].update(interval_minutes=0.000001),
            "refresh.interval_minutes: expected a number of minutes from",
        ),
        (
            lambda d: d["sources"][0].update(schedule={"interval_minutes": 0.000001}),
            "sources[0].schedule.interval_minutes: expected a number of minutes",
        ),
        (
            lambda d: d["sources"][0].update(schedule={"cron": "0 0 31 2 *"}),
            "names no time that exists",
        ),
        (
            lambda d: d.update(http={"user_agent": "Fenghuo\r\nX-Evil: 1"}),
            "http.user_agent: expected one line of printable text",
        ),
        (
            lambda d: d["refresh"].update(max_posts=-1),
            "refresh.max_posts: expected 0 (no refresh) or more",
        ),
    ],
)
def test_bad_refresh_settings_named(tmp_path, change, expected):
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")

    with pytest.raises(pipeline.ConfigError) as raised:
        pipeline.config_module.load(path)

    assert expected in str(raised.value)
    assert str(path) in str(raised.value)
