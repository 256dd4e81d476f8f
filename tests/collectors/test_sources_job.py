"""Live sources through the job: stored once, conditional GET, partial runs,
servers that never respond, and Reddit's rate limit."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from fake_reddit import (
    CLIENT_ID,
    CLIENT_SECRET,
    FakeReddit,
    FakeRedditServer,
    Throttle,
    after_pages,
)
from loopback import Reply, SilentServer, feed_reply, fixture
from model_cache import shipped_model_path

import pipeline
from service import build_scheduler
from storage import Store

ROOT = Path(__file__).resolve().parents[2]


def job_config(tmp_path: Path, database_url: str, sources: list[dict], **http):
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["storage"] = {"url": database_url}
    data["alerts"]["outbox"] = str(tmp_path / "outbox")
    data["model_path"] = str(shipped_model_path())
    data["sources"] = sources
    data["http"] = {"default_host": {"min_interval_seconds": 0}, **http}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return pipeline.config_module.load(path)


def feed_source(name: str, urls: list[str], minutes: float = 15) -> dict:
    return {
        "name": name,
        "kind": "feed",
        "platform": "weibo",
        "feed": {"urls": urls},
        "schedule": {"interval_minutes": minutes},
    }


def json_source(name: str, url: str) -> dict:
    return {
        "name": name,
        "kind": "json",
        "json": {"url": url, "items": "data.list"},
        "fields": {"id": "id", "text": "text"},
        "schedule": {"interval_minutes": 15},
    }


def reddit_source(name: str, url: str) -> dict:
    return {
        "name": name,
        "kind": "reddit",
        "reddit": {"subreddits": ["qicheng"], "oauth_url": url, "reddit_url": url},
        "schedule": {"interval_minutes": 15},
    }


def feed_config(
    tmp_path: Path, database_url: str, urls: list[str], minutes: float = 15, **http
):
    sources = [feed_source("feeds", urls, minutes)]
    return job_config(tmp_path, database_url, sources, **http)


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
        scheduler = build_scheduler(job, config)
        scheduler.start()
        try:
            time.sleep(1.5)
        finally:
            scheduler.shutdown(wait=True)
        [source] = store.status().sources

    assert source.skipped_runs >= 1
    assert source.last_status == "ok"


# Servers that accept the connection and never respond

SILENT_SOURCES = {
    "feed": lambda url: feed_source("hung", [url]),
    "json": lambda url: json_source("hung", url),
}
# Two attempts of at most 0.5 s each, one back-off of at most 0.15 s.
SHORT_TIMEOUTS = {
    "connect_timeout_seconds": 0.5,
    "read_timeout_seconds": 0.5,
    "retries": 1,
    "backoff_seconds": 0.1,
}


@pytest.fixture
def silent():
    with SilentServer() as server:
        yield server


@pytest.fixture
def reddit_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FENGHUO_REDDIT_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("FENGHUO_REDDIT_CLIENT_SECRET", CLIENT_SECRET)


def run_sources(config, database_url: str):
    """Run each source once in one job; return the summaries and the seconds."""
    results = []
    with Store(database_url) as store:
        store.migrate()
        job = pipeline.Job(config, store)
        for source in config.sources:
            started = time.monotonic()
            summary = job.run_source(source)
            results.append((summary, time.monotonic() - started))
    return results


@pytest.mark.parametrize("kind", ["feed", "json"])
def test_silent_server_times_out_then_next_runs(tmp_path, server, silent, kind):
    server.route("/weibo", feed_reply("weibo_rss.xml"))
    hung_url = silent.url("/posts")
    sources = [
        SILENT_SOURCES[kind](hung_url),
        feed_source("next", [server.url("/weibo")]),
    ]
    database_url = f"sqlite:///{tmp_path / 'silent.db'}"
    config = job_config(tmp_path, database_url, sources, **SHORT_TIMEOUTS)

    [(hung, seconds), (following, _)] = run_sources(config, database_url)

    assert hung.status == "failed"
    assert f"GET {hung_url} failed after 2 attempts" in hung.error
    assert "ReadTimeout" in hung.error
    assert silent.accepted == 2
    assert seconds < 1.15 + 2.0
    assert following.status == "ok", following.error
    assert following.new > 0


@pytest.mark.parametrize("kind", ["feed", "json"])
def test_silent_server_stopped_by_deadline(tmp_path, silent, kind):
    sources = [SILENT_SOURCES[kind](silent.url("/posts"))]
    database_url = f"sqlite:///{tmp_path / 'silent.db'}"
    # The read timeout alone would let the run wait 3 x 5 s.
    config = job_config(
        tmp_path,
        database_url,
        sources,
        read_timeout_seconds=5,
        retries=2,
        backoff_seconds=0.1,
        run_deadline_seconds=0.5,
    )

    [(hung, seconds)] = run_sources(config, database_url)

    # It read nothing before the deadline, so it counts as failed, not partial.
    assert hung.status == "failed"
    assert "run deadline of 0.5 s reached" in hung.error
    assert seconds < 0.5 + 2.0


def test_silent_reddit_fails_then_next_runs(
    tmp_path, server, silent, reddit_credentials
):
    server.route("/weibo", feed_reply("weibo_rss.xml"))
    sources = [
        reddit_source("hung", silent.url()),
        feed_source("next", [server.url("/weibo")]),
    ]
    database_url = f"sqlite:///{tmp_path / 'silent.db'}"
    config = job_config(tmp_path, database_url, sources, **SHORT_TIMEOUTS)

    [(hung, seconds), (following, _)] = run_sources(config, database_url)

    assert hung.status == "failed"
    assert f"request for r/qicheng/new to {silent.url()} failed" in hung.error
    assert "ReadTimeout" in hung.error
    # prawcore 4.0 makes 3 attempts, with 2 to 6 s of sleep between them.
    assert seconds < 3 * 0.5 + 6 + 2
    assert following.status == "ok", following.error
    assert following.new > 0


def test_silent_reddit_stopped_by_deadline(tmp_path, silent, reddit_credentials):
    sources = [reddit_source("hung", silent.url())]
    database_url = f"sqlite:///{tmp_path / 'silent.db'}"
    config = job_config(
        tmp_path,
        database_url,
        sources,
        **{**SHORT_TIMEOUTS, "run_deadline_seconds": 0.2},
    )

    [(hung, seconds)] = run_sources(config, database_url)

    assert hung.status in ("failed", "partial")
    assert seconds < 0.2 + 1.0


def test_hung_source_leaves_others_running(tmp_path, server, silent):
    server.route("/weibo", feed_reply("weibo_rss.xml"))
    sources = [
        feed_source("hung", [silent.url("/posts")]),
        feed_source("quick", [server.url("/weibo")]),
    ]
    database_url = f"sqlite:///{tmp_path / 'pool.db'}"
    config = job_config(
        tmp_path, database_url, sources, read_timeout_seconds=30, retries=0
    )
    with Store(database_url) as store:
        store.migrate()
        scheduler = build_scheduler(pipeline.Job(config, store), config)
        scheduler.start()
        try:
            wait_until(lambda: finished(store, "quick"))
            hung_while_quick_ran = store.recent_runs("hung", 1)
            # Closing the connection ends the hung request at once.
            silent.stop()
        finally:
            scheduler.shutdown(wait=True)
        [quick] = store.recent_runs("quick", 5)
        [hung] = store.recent_runs("hung", 5)

    assert [run.status for run in hung_while_quick_ran] == ["running"]
    assert quick.status == "ok"
    assert hung.status == "failed"


def wait_until(condition, timeout: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the scheduler"
        time.sleep(0.05)


def finished(store: Store, source: str) -> bool:
    runs = store.recent_runs(source, 1)
    return bool(runs) and runs[0].finished_at is not None


# Reddit's rate limit through the job


def test_reddit_rate_limit_resumes_without_duplicates(
    tmp_path, database_url, reddit_credentials
):
    fake = FakeReddit(page_size=2)
    for number in range(1, 8):
        fake.add_submission(
            f"qc{number}",
            "qicheng",
            f"启程QC7 第{number}位车主:车机黑屏",
            "售后说等OTA",
        )
    # Pages of 2 posts: the first two pages, then 429 until the test lifts it.
    fake.throttle = Throttle(1000, after_pages("/r/qicheng/new", 2))
    with FakeRedditServer(fake) as api, Store(database_url) as store:
        store.migrate()
        config = job_config(
            tmp_path,
            database_url,
            [reddit_source("reddit", api.url)],
            retries=1,
            backoff_seconds=0.01,
        )
        job = pipeline.Job(config, store)
        first = job.run_source(config.sources[0])
        stored_first = store.count_posts()
        cursor = json.loads(store.get_cursor("reddit"))["listings"]["r/qicheng/new"]
        fake.throttle = None
        second = job.run_source(config.sources[0])
        third = job.run_source(config.sources[0])
        stored = store.count_posts()
        statuses = [run.status for run in store.recent_runs("reddit", 5)]
        final = json.loads(store.get_cursor("reddit"))["listings"]["r/qicheng/new"]

    assert first.status == "partial"
    assert first.error is None
    assert (first.fetched, first.new) == (4, 4)
    assert stored_first == 4
    assert cursor["top"][1] == "t3_qc7"
    assert cursor["after"] == "t3_qc4"
    assert second.status == "ok", second.error
    assert (second.fetched, second.new, second.duplicates) == (3, 3, 0)
    assert (third.fetched, third.new) == (0, 0)
    assert stored == 7
    assert statuses == ["ok", "ok", "partial"]
    assert final["mark"][1] == "t3_qc7"
    assert final["after"] is None
