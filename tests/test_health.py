"""Source health: failures in a row, one stale notice, one recovery notice."""

from __future__ import annotations

import email
import json
from datetime import UTC, datetime, timedelta
from email.policy import default as default_policy
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from model_cache import shipped_model_path
from sqlalchemy import select

import pipeline
from alerts.health import health_notice
from storage import NewDelivery, RunRecord, Store
from storage.tables import alerts

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)


def load_config(tmp_path: Path, database_url: str, posts: Path):
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["storage"] = {"url": database_url}
    data["alerts"]["outbox"] = str(tmp_path / "outbox")
    data["model_path"] = str(shipped_model_path())
    data["sources"][0].update(name="posts", path=str(posts))
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path, pipeline.config_module.load(path)


def runs(*statuses: str) -> list[RunRecord]:
    """Runs newest first, as the store returns them."""
    return [
        RunRecord(
            id=100 - number,
            source="posts",
            status=status,
            started_at=NOW - timedelta(hours=number),
            finished_at=NOW - timedelta(hours=number) + timedelta(minutes=1),
            error="HTTP 403 from https://rsshub.example/weibo"
            if status == "failed"
            else None,
        )
        for number, status in enumerate(statuses)
    ]


@pytest.fixture
def config(tmp_path):
    _, loaded = load_config(tmp_path, "sqlite:///unused.db", tmp_path / "posts.jsonl")
    return loaded


def test_third_failure_in_a_row_raises_one_notice(config):
    notice = health_notice(
        config, "posts", runs("failed", "failed", "failed", "ok"), NOW
    )
    assert notice is not None
    assert notice.dedup_key == "source-stale:posts:100"
    assert notice.message.deliveries == (NewDelivery("eml", "ops@qicheng.example"),)
    assert "连续3次采集失败" in notice.subject
    message = email.message_from_string(notice.message.message, policy=default_policy)
    assert "HTTP 403" in message.get_content()


@pytest.mark.parametrize(
    "statuses",
    [
        ("failed", "failed", "ok", "failed"),
        ("failed", "failed", "failed", "failed"),
        ("ok", "failed", "failed"),
        ("ok", "ok"),
    ],
)
def test_no_notice_between_thresholds(config, statuses):
    assert health_notice(config, "posts", runs(*statuses), NOW) is None


def test_success_after_a_stale_streak_notices_recovery(config):
    statuses = ("partial", "failed", "failed", "failed", "failed")
    notice = health_notice(config, "posts", runs(*statuses), NOW)
    assert notice is not None
    assert notice.dedup_key == "source-recovered:posts:100"
    assert "已恢复" in notice.subject


def test_no_notice_without_a_department(config):
    quiet = pipeline.config_module.Config(
        brand=config.brand,
        sources=config.sources,
        alerts=config.alerts,
    )
    assert (
        health_notice(quiet, "posts", runs("failed", "failed", "failed"), NOW) is None
    )


def test_stale_source_notified_once_and_recovery_once(tmp_path, database_url):
    posts = tmp_path / "posts.jsonl"
    config_path, config = load_config(tmp_path, database_url, posts)
    with Store(database_url) as store:
        store.migrate()
        job = pipeline.Job(config, store)
        statuses = [job.run_source(config.sources[0]).status for _ in range(4)]
        stale_status = (
            CliRunner()
            .invoke(pipeline.cli, ["--config", str(config_path), "status"])
            .output
        )
        record = {"id": "1", "text": "启程QC7车机黑屏", "created_at": NOW.isoformat()}
        posts.write_text(
            json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        recovered = job.run_source(config.sources[0]).status
        job.run_source(config.sources[0])
        with store.engine.connect() as connection:
            keys = (
                connection.execute(
                    select(alerts.c.dedup_key).where(alerts.c.kind == "source")
                )
                .scalars()
                .all()
            )

    assert statuses == ["failed"] * 4
    assert recovered == "ok"
    assert [key.split(":")[0] for key in keys] == ["source-stale", "source-recovered"]
    assert "health: stale (4 failed runs in a row)" in stale_status
    assert "last success: never" in stale_status
