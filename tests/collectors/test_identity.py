"""One row per platform and native post id, whichever source collected it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import yaml
from loopback import Reply, feed_reply
from model_cache import shipped_model_path
from sqlalchemy import func, select

import pipeline
from collectors.feed import FeedCollector
from collectors.http import HttpClient
from collectors.jsonapi import JsonCollector
from collectors.reddit import submission_item
from collectors.replay import ReplayCollector
from config import FeedOptions, HostLimit, Http, JsonOptions, Source
from storage import Store
from storage.tables import alerts, classifications, posts, problem_posts

ROOT = Path(__file__).resolve().parents[2]
NO_WAIT = Http(retries=0, default_host=HostLimit(min_interval_seconds=0))
COMPLAINT_MID = "5101234567890123"
TEST_DRIVE_MID = "5101234567892012"

# A keyword route of the same RSSHub: two posts of weibo_rss.xml under other
# link forms, its news entry (a link that no platform reader recognises) and a new post.
KEYWORD_FEED = f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>微博关键词 启程</title>
<item>
  <title><![CDATA[QC7刹车异响第三次回4S店了，售后还是说正常现象]]></title>
  <description><![CDATA[QC7刹车异响第三次回4S店了，售后还是说正常现象<br>@启程汽车客服 给个说法]]></description>
  <pubDate>Sun, 01 Nov 2026 02:48:13 GMT</pubDate>
  <link>https://m.weibo.cn/status/{COMPLAINT_MID}</link>
</item>
<item>
  <title><![CDATA[周末带QC9去试驾，座椅通风很舒服]]></title>
  <description><![CDATA[周末带QC9去试驾，座椅通风很舒服，展开全文]]></description>
  <link>https://weibo.com/6012345678/{TEST_DRIVE_MID}</link>
</item>
<item>
  <title><![CDATA[启程汽车发布QC5冬季续航说明]]></title>
  <description><![CDATA[<p>启程汽车今天发布QC5冬季续航说明，建议车主出发前预热电池。</p>]]></description>
  <pubDate>Wed, 04 Nov 2026 08:00:00 GMT</pubDate>
  <guid isPermaLink="false">qicheng-news-20261104</guid>
  <link>https://news.example.org/qicheng/20261104</link>
</item>
<item>
  <title><![CDATA[QC5提车第三天，仪表盘的新配色很好看]]></title>
  <description><![CDATA[QC5提车第三天，仪表盘的新配色很好看]]></description>
  <pubDate>Thu, 05 Nov 2026 10:00:00 GMT</pubDate>
  <link>https://m.weibo.cn/status/5101234567899999</link>
</item>
</channel></rss>
"""


def job_config(tmp_path: Path, database_url: str, sources: list[dict]):
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["storage"] = {"url": database_url}
    data["alerts"]["outbox"] = str(tmp_path / "outbox")
    data["model_path"] = str(shipped_model_path())
    data["sources"] = sources
    data["http"] = {"default_host": {"min_interval_seconds": 0}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return pipeline.config_module.load(path)


def feed_source(name: str, url: str) -> dict:
    return {"name": name, "kind": "feed", "platform": "weibo", "feed": {"urls": [url]}}


def scalar(store: Store, statement):
    with store.engine.connect() as connection:
        return connection.execute(statement).scalar_one()


def count_for(store: Store, table, post_ids: list[int]) -> int:
    statement = (
        select(func.count()).select_from(table).where(table.c.post_id.in_(post_ids))
    )
    return scalar(store, statement)


def rows_of(store: Store, *where) -> list:
    statement = select(posts.c.id, posts.c.source).where(*where).order_by(posts.c.id)
    with store.engine.connect() as connection:
        return connection.execute(statement).all()


# The native flag of each collector


def test_feed_native_only_for_known_links(server):
    server.route("/weibo", feed_reply("weibo_rss.xml"))
    source = Source(
        name="feed", kind="feed", feed=FeedOptions(urls=(server.url("/weibo"),))
    )

    with HttpClient(NO_WAIT) as client:
        batches = list(FeedCollector(source, client, "Asia/Shanghai").collect(None))
    native = {item.external_id: item.native for b in batches for item in b.items}

    assert native[f"weibo:{COMPLAINT_MID}"] is True
    assert native[f"weibo:{TEST_DRIVE_MID}"] is True
    assert native["qicheng-news-20261104"] is False


def json_items(server, fields: dict[str, str], platform: str = "unknown"):
    record = {"mid": "5101", "text": "QC7刹车异响", "site": "weibo"}
    body = json.dumps({"data": [record]})
    server.route("/api", Reply(200, body, {"Content-Type": "application/json"}))
    options = JsonOptions(url=server.url("/api"), items="data")
    source = Source(
        name="api", kind="json", json=options, fields=fields, platform=platform
    )
    with HttpClient(NO_WAIT) as client:
        batches = list(JsonCollector(source, client, "Asia/Shanghai").collect(None))
    return [item for batch in batches for item in batch.items]


def test_json_native_with_id_and_platform(server):
    [configured] = json_items(server, {"id": "mid"}, platform="weibo")
    [from_record] = json_items(server, {"id": "mid", "platform": "site"})

    assert configured.native is True
    assert from_record.platform == "weibo"
    assert from_record.native is True


def test_json_not_native_without_id_or_platform(server):
    [no_platform] = json_items(server, {"id": "mid"})
    [no_id] = json_items(server, {}, platform="weibo")

    assert no_platform.native is False
    assert no_id.external_id.startswith("sha1:")
    assert no_id.native is False


def test_reddit_native_and_replay_not(tmp_path):
    data = {"name": "t3_abc", "title": "QC7 brakes squeal", "selftext": ""}
    now = datetime.now(UTC)
    reddit = submission_item("reddit", "https://www.reddit.com", data, now)
    path = tmp_path / "posts.jsonl"
    path.write_text(json.dumps({"id": "weibo:5101", "text": "QC7刹车"}) + "\n")
    source = Source(name="replay", kind="replay", path=str(path), platform="weibo")
    replay = ReplayCollector(source, path, "Asia/Shanghai")
    [replayed] = [item for batch in replay.collect(None) for item in batch.items]

    assert reddit.native is True
    assert replayed.external_id == "weibo:5101"
    assert replayed.native is False


# Through the job


def test_two_feeds_store_shared_posts_once(tmp_path, database_url, server):
    server.route("/weibo/user", feed_reply("weibo_rss.xml"))
    server.route(
        "/weibo/keyword",
        Reply(200, KEYWORD_FEED, {"Content-Type": "application/rss+xml"}),
    )
    config = job_config(
        tmp_path,
        database_url,
        [
            feed_source("weibo-user", server.url("/weibo/user")),
            feed_source("weibo-keyword", server.url("/weibo/keyword")),
        ],
    )
    shared = posts.c.identity_key.in_(
        [f"native:weibo:{COMPLAINT_MID}", f"native:weibo:{TEST_DRIVE_MID}"]
    )
    with Store(database_url) as store:
        store.migrate()
        job = pipeline.Job(config, store)
        first = job.run_source(config.sources[0])
        shared_rows = rows_of(store, shared)
        shared_ids = [row.id for row in shared_rows]
        members = count_for(store, problem_posts, shared_ids)
        alerted = count_for(store, alerts, shared_ids)

        second = job.run_source(config.sources[1])

        assert first.status == second.status == "ok"
        assert (second.fetched, second.new, second.duplicates) == (4, 2, 2)
        assert store.count_posts() == first.new + 2
        assert rows_of(store, shared) == shared_rows
        assert {row.source for row in shared_rows} == {"weibo-user"}
        news = posts.c.external_id == "qicheng-news-20261104"
        assert [row.source for row in rows_of(store, news)] == [
            "weibo-user",
            "weibo-keyword",
        ]
        assert count_for(store, classifications, shared_ids) == 2
        assert count_for(store, problem_posts, shared_ids) == members
        assert count_for(store, alerts, shared_ids) == alerted
        assert scalar(store, select(func.count()).select_from(classifications)) == (
            store.count_posts()
        )


def test_json_source_refreshes_feed_post(tmp_path, database_url, server):
    server.route("/weibo/user", feed_reply("weibo_rss.xml"))
    record = {
        "mid": COMPLAINT_MID,
        "text": "QC7刹车异响第三次回4S店了，售后还是说正常现象",
        "created_at": "2026-11-01T10:48:13+08:00",
        "likes": 12,
        "reposts": 3,
    }
    body = json.dumps({"data": [record]}, ensure_ascii=False)
    server.route("/api", Reply(200, body, {"Content-Type": "application/json"}))
    api = {
        "name": "weibo-api",
        "kind": "json",
        "platform": "weibo",
        "json": {"url": server.url("/api"), "items": "data"},
        "fields": {"id": "mid", "text": "text", "likes": "likes", "reposts": "reposts"},
    }
    config = job_config(
        tmp_path,
        database_url,
        [feed_source("weibo-user", server.url("/weibo/user")), api],
    )
    with Store(database_url) as store:
        store.migrate()
        job = pipeline.Job(config, store)
        job.run_source(config.sources[0])
        [(post_id, _)] = rows_of(
            store, posts.c.identity_key == f"native:weibo:{COMPLAINT_MID}"
        )
        stored = store.count_posts()
        alerted = count_for(store, alerts, [post_id])

        summary = job.run_source(config.sources[1])

        assert summary.status == "ok", summary.error
        assert (summary.new, summary.duplicates, summary.refreshed) == (0, 1, 1)
        assert store.count_posts() == stored
        history = store.engagement_history([post_id])[post_id]
        assert [(c.likes, c.reposts) for _, c in history] == [(0, 0), (12, 3)]
        assert count_for(store, classifications, [post_id]) == 1
        assert count_for(store, alerts, [post_id]) == alerted
        assert store.pending_regrades() == []


def test_replay_sources_same_ids_apart(tmp_path, database_url):
    path = tmp_path / "posts.jsonl"
    records = [
        {"id": f"weibo:510{n}", "text": f"QC7刹车异响，第{n}次回店"} for n in range(3)
    ]
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
        encoding="utf-8",
    )
    replay = {"kind": "replay", "path": str(path), "platform": "weibo"}
    config = job_config(
        tmp_path,
        database_url,
        [{"name": "backfill-a", **replay}, {"name": "backfill-b", **replay}],
    )
    with Store(database_url) as store:
        store.migrate()
        job = pipeline.Job(config, store)
        first = job.run_source(config.sources[0])
        second = job.run_source(config.sources[1])

        assert (first.new, second.new, second.duplicates) == (3, 3, 0)
        assert store.count_posts() == 6
