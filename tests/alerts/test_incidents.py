"""One alert per incident, through the job, to a loopback SMTP server.

The job's clock is moved by the test and deliveries are made at that time, so
an hour of posts runs in seconds. Each test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from model_cache import shipped_model_path
from smtp_server import parse
from sqlalchemy import func, select

import pipeline
from items import Author, Engagement, Item
from job import SourceSummary
from storage import Store
from storage.tables import alerts

ROOT = Path(__file__).resolve().parents[2]
BRAKE_TEXT = "启程QC7高速上刹车突然失灵，差点追尾，已经报警了，要求厂家给个说法！"
SCREEN_TEXT = "启程QC7车机黑屏死机三次了，已经向12315投诉，要求退车退款！"


def make_job(tmp_path: Path, database_url: str, port: int, **alerts) -> pipeline.Job:
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["storage"] = {"url": database_url}
    data["model_path"] = str(shipped_model_path())
    data["sources"] = [{**data["sources"][0], "name": "posts", "path": "none"}]
    data["alerts"]["smtp"] = {"host": "127.0.0.1", "port": port, "security": "none"}
    data["alerts"].update(alerts)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    config = pipeline.config_module.load(path)
    store = Store(database_url)
    store.migrate()
    return pipeline.Job(config, store)


@pytest.fixture
def job_factory(tmp_path, database_url, mail_server):
    made = []

    def build(**alerts) -> pipeline.Job:
        job = make_job(tmp_path, database_url, mail_server[1], **alerts)
        made.append(job)
        return job

    yield build
    for job in made:
        job.store.close()


def copy_of(text: str, number: int, posted: datetime, **engagement) -> Item:
    return Item(
        source="posts",
        platform="weibo",
        external_id=f"copy-{number}",
        text=text,
        created_at=posted,
        collected_at=posted,
        author=Author(name=f"车主{number}", followers=200),
        engagement=Engagement(**engagement),
    )


def feed(job: pipeline.Job, items: list[Item]) -> SourceSummary:
    summary = SourceSummary("posts")
    stored = job.store.add_batch(items)
    job.process(
        [(i, item) for i, item in zip(stored.ids, items, strict=True) if i], summary
    )
    return summary


def mails_per_recipient(handler) -> Counter:
    counts: Counter = Counter()
    for envelope in handler.envelopes:
        counts.update(envelope.rcpt_tos)
    return counts


def alert_count(store: Store) -> int:
    with store.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(alerts)).scalar()


def test_storm_of_300_copies_three_mails(job_factory, mail_server):
    handler, _ = mail_server
    job = job_factory()
    start = datetime.now(UTC).replace(microsecond=0)
    # One incident copied 300 times in an hour: ten copies every two minutes,
    # each by another owner and each graded critical.
    for batch in range(30):
        moment = start + timedelta(minutes=2 * batch)
        job.clock = lambda moment=moment: moment
        items = [
            copy_of(BRAKE_TEXT, batch * 10 + n, moment, reposts=5 * n)
            for n in range(10)
        ]
        summary = feed(job, items)
        assert summary.levels["critical"] == 10
        job.deliver()
    job.clock = lambda: start + timedelta(minutes=59, seconds=59)
    job.deliver()

    counts = mails_per_recipient(handler)
    assert set(counts) >= {"pr@qicheng.example", "exec@qicheng.example"}
    assert max(counts.values()) <= 3
    assert alert_count(job.store) == 1


def test_storm_mails_share_one_thread(job_factory, mail_server):
    handler, _ = mail_server
    job = job_factory(cooldown_minutes=5)
    start = datetime.now(UTC).replace(microsecond=0)
    for batch in range(4):
        moment = start + timedelta(minutes=6 * batch)
        job.clock = lambda moment=moment: moment
        feed(job, [copy_of(BRAKE_TEXT, batch, moment)])
        job.deliver()

    to_pr = [
        parse(e.content)
        for e in handler.envelopes
        if "pr@qicheng.example" in e.rcpt_tos
    ]
    assert len(to_pr) == 4
    first = to_pr[0]
    assert first["In-Reply-To"] is None
    for earlier, reply in zip(to_pr, to_pr[1:], strict=False):
        assert reply["In-Reply-To"] == earlier["Message-ID"]
        assert first["Message-ID"] in reply["References"]
        assert reply["Subject"] == "Re: " + first["Subject"]
    assert "又有车主反映同一问题" in to_pr[1].get_body(("plain",)).get_content()
    assert alert_count(job.store) == 1


def test_update_waits_for_cooldown(job_factory, mail_server):
    handler, _ = mail_server
    job = job_factory(cooldown_minutes=30)
    start = datetime.now(UTC).replace(microsecond=0)
    job.clock = lambda: start
    feed(job, [copy_of(BRAKE_TEXT, 1, start)])
    job.deliver()
    later = start + timedelta(minutes=10)
    job.clock = lambda: later
    feed(job, [copy_of(BRAKE_TEXT, 2, later), copy_of(BRAKE_TEXT, 3, later)])
    job.deliver()
    assert mails_per_recipient(handler)["pr@qicheng.example"] == 1

    job.clock = lambda: start + timedelta(minutes=30)
    job.deliver()

    assert mails_per_recipient(handler)["pr@qicheng.example"] == 2
    [alert] = job.store.list_alerts()
    assert alert.messages == 2
    first, update = job.store.get_alert(alert.alert.id).messages
    assert first.reason == "new"
    assert update.reason == "update:owner"
    assert first.card["update"] is False
    assert update.card["update"] is True


def test_level_raised_skips_cooldown(job_factory, mail_server):
    handler, _ = mail_server
    job = job_factory(cooldown_minutes=30, medium_batch_minutes=0)
    start = datetime.now(UTC).replace(microsecond=0)
    job.clock = lambda: start
    feed(job, [copy_of(SCREEN_TEXT, 1, start, reposts=2000)])
    job.deliver()
    [first] = job.store.list_alerts()
    assert first.alert.level == "medium"

    later = start + timedelta(minutes=3)
    job.clock = lambda: later
    feed(job, [copy_of(SCREEN_TEXT, 2, later, reposts=50_000, likes=20_000)])
    job.deliver()

    [alert] = job.store.list_alerts()
    assert alert.alert.level == "critical"
    assert alert.messages == 2
    replies = [parse(e.content) for e in handler.envelopes]
    update = [m for m in replies if m["Subject"].startswith("Re: ")]
    assert update
    assert "级别升至" in update[0].get_body(("plain",)).get_content()
    # The executives hear of the alert first at the critical level.
    assert "exec@qicheng.example" in mails_per_recipient(handler)


def test_quiet_hours_hold_medium_not_critical(job_factory, mail_server):
    handler, _ = mail_server
    job = job_factory(
        quiet_hours={"start": "00:00", "end": "23:59"}, medium_batch_minutes=0
    )
    start = datetime.now(UTC).replace(microsecond=0)
    job.clock = lambda: start
    feed(
        job,
        [copy_of(BRAKE_TEXT, 1, start), copy_of(SCREEN_TEXT, 2, start, reposts=2000)],
    )
    job.deliver()

    levels = {parse(e.content)["X-Fenghuo-Level"] for e in handler.envelopes}
    assert levels == {"critical"}
    assert alert_count(job.store) == 2


def test_once_counts_new_alerts_and_updates(tmp_path, database_url, mail_server):
    job = make_job(tmp_path, database_url, mail_server[1])
    job.store.close()
    config_path = tmp_path / "config.yaml"
    data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    posts = tmp_path / "posts.jsonl"
    data["sources"][0]["path"] = str(posts)
    config_path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    now = datetime.now(UTC).replace(microsecond=0)

    def write_copies(numbers: range) -> None:
        records = [
            {
                "id": f"copy-{n}",
                "text": BRAKE_TEXT,
                "created_at": now.isoformat(),
                "source": "weibo",
                "author": {"name": f"车主{n}", "followers": 200},
            }
            for n in numbers
        ]
        posts.write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
            encoding="utf-8",
        )

    runner = CliRunner()
    write_copies(range(3))
    first = runner.invoke(pipeline.cli, ["--config", str(config_path), "once"])
    write_copies(range(3, 6))
    second = runner.invoke(pipeline.cli, ["--config", str(config_path), "once"])

    assert first.exit_code == 0, first.output
    assert "alerts: 1 new, 0 updates of incidents alerted before" in first.output
    assert second.exit_code == 0, second.output
    assert "alerts: 0 new, 1 updates of incidents alerted before" in second.output


def test_first_mail_sent_while_copy_planned(job_factory, mail_server):
    handler, _ = mail_server
    job = job_factory(medium_batch_minutes=10, cooldown_minutes=30)
    start = datetime.now(UTC).replace(microsecond=0)
    job.clock = lambda: start
    feed(job, [copy_of(SCREEN_TEXT, 1, start, reposts=2000)])
    due = start + timedelta(minutes=10)
    job.clock = lambda: due
    plan = job._plan_alerts
    planned = []

    def plan_then_deliver(*args, **options):
        written = plan(*args, **options)
        if not planned:
            # The delivery thread sends the first mail right after the plan
            # read it as not sent yet, and before the plan is saved.
            job.deliver()
        planned.append(written)
        return written

    job._plan_alerts = plan_then_deliver
    feed(job, [copy_of(SCREEN_TEXT, 2, due, reposts=2000)])

    assert len(planned) == 2
    [alert] = job.store.list_alerts()
    first, update = job.store.get_alert(alert.alert.id).messages
    assert update.in_reply_to == first.message_id
    assert update.reason == "update:reach+owner"
    assert len(handler.envelopes) == 1
    job.clock = lambda: due + timedelta(minutes=30)
    job.deliver()
    assert parse(handler.envelopes[-1].content)["In-Reply-To"] == first.message_id
