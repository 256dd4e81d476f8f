"""Live sources through the job: stored once, conditional GET, partial runs."""

from __future__ import annotations

import time
from pathlib import Path

import yaml
from loopback import Reply, feed_reply, fixture
from model_cache import shipped_model_path

import pipeline
from storage import Store

ROOT = Path(__file__).resolve().parents[2]


def feed_config(
    tmp_path: Path, database_url: str, urls: list[str], minutes: float = 15, **http
):
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["storage"] = {"url": database_url}
    data["alerts"]["outbox"] = str(tmp_path / "outbox")
    data["model_path"] = str(shipped_model_path())
    data["sources"] = [
        {
            "name": "feeds",
            "kind": "feed",
            "platform": "weibo",
            "feed": {"urls": urls},
            "schedule": {"interval_minutes": minutes},
        }
    ]
    data["http"] = {"default_host": {"min_interval_seconds": 0}, **http}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return pipeline.config_module.load(path)


def test_feed_collected_once_then_not_modified(tmp_path, database_url, server):
    server.route(
        "/weibo",
        feed_reply("weibo_rss.xml", ETag='"v1"'),
        Reply(304, headers={"ETag": '"v1"'}),
    )
    config = feed_config(tmp_path, database_url, [server.url("/weibo")])
    with Store(database_url) as store:
        store.migrate()
        job = pipeline.Job(config, store)
        first = job.run_source(config.sources[0])
        second = job.run_source(config.sources[0])
        stored = store.count_posts()

    assert first.status == "ok", first.error
    assert first.new == stored > 0
    assert second.status == "ok", second.error
    assert (second.fetched, second.new) == (0, 0)
    [_, again] = server.requests_to("/weibo")
    assert again.headers["if-none-match"] == '"v1"'


def test_deadline_ends_run_as_partial_keeping_posts(tmp_path, database_url, server):
    server.route("/weibo", feed_reply("weibo_rss.xml"))
    server.route("/slow", Reply(200, fixture("zhihu_atom.xml"), delay=3))
    urls = [server.url("/weibo"), server.url("/slow")]
    config = feed_config(tmp_path, database_url, urls, run_deadline_seconds=0.5)
    with Store(database_url) as store:
        store.migrate()
        summary = pipeline.Job(config, store).run_source(config.sources[0])
        stored = store.count_posts()
        [source] = store.status().sources

    assert summary.status == "partial"
    assert stored == summary.new > 0
    assert source.last_status == "partial"


def test_overlapping_run_is_recorded_as_skipped(tmp_path, database_url, server):
    server.route("/slow", Reply(200, fixture("weibo_rss.xml"), delay=2))
    # A run every 0.6 s against a feed that takes 2 s to respond.
    config = feed_config(tmp_path, database_url, [server.url("/slow")], minutes=0.01)
    with Store(database_url) as store:
        store.migrate()
        job = pipeline.Job(config, store)
        scheduler = pipeline.build_scheduler(job, config)
        scheduler.start()
        try:
            time.sleep(1.5)
        finally:
            scheduler.shutdown(wait=True)
        [source] = store.status().sources

    assert source.skipped_runs >= 1
    assert source.last_status == "ok"
