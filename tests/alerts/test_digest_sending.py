"""Sending the digests: once per period, by the command and on the schedule."""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta
from email.policy import default as default_policy
from pathlib import Path

import yaml
from click.testing import CliRunner
from model_cache import shipped_model_path

import pipeline
from alerts.digest import digest_key
from config import crontab_trigger
from job import store_digest
from service import _first_digest_run
from storage import Store

ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, database_url: str) -> Path:
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["storage"] = {"url": database_url}
    data["model_path"] = str(shipped_model_path())
    data["alerts"]["outbox"] = str(tmp_path / "outbox")
    data["alerts"]["digests"] = {
        "daily": "0 9 * * *",
        "weekly": "30 9 * * 1",
        "departments": ["pr"],
        "recipients": ["质量部 <quality@brand.example>"],
    }
    data["sources"] = [{**data["sources"][0], "name": "posts", "path": "none"}]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def outbox(tmp_path: Path) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(f.read_bytes(), policy=default_policy)
        for f in sorted((tmp_path / "outbox").glob("*.eml"))
    ]


def test_digest_command_sends_once(tmp_path, database_url):
    path = write_config(tmp_path, database_url)
    runner = CliRunner()

    first = runner.invoke(pipeline.cli, ["--config", str(path), "digest", "daily"])
    second = runner.invoke(pipeline.cli, ["--config", str(path), "digest", "daily"])

    assert first.exit_code == 0, first.output
    assert "daily digest stored as alert" in first.output
    assert "due deliveries: 2 sent, 0 not sent" in first.output
    assert second.exit_code == 0, second.output
    assert "was stored before; due deliveries: 0 sent" in second.output
    [mail] = outbox(tmp_path)
    assert mail["X-Fenghuo-Digest"] == "daily"
    assert str(mail["To"]) == "pr@qicheng.example, 质量部 <quality@brand.example>"


def test_weekly_digest_command(tmp_path, database_url):
    path = write_config(tmp_path, database_url)

    result = CliRunner().invoke(
        pipeline.cli, ["--config", str(path), "digest", "weekly"]
    )

    assert result.exit_code == 0, result.output
    assert {m["X-Fenghuo-Digest"] for m in outbox(tmp_path)} == {"weekly"}


def test_digest_key_names_period():
    monday_morning = datetime(2026, 12, 7, 1, 30, tzinfo=UTC)

    assert (
        digest_key("daily", monday_morning, "Asia/Shanghai")
        == "digest:daily:2026-12-06"
    )
    assert digest_key("weekly", monday_morning, "Asia/Shanghai") == (
        "digest:weekly:2026-11-30"
    )


def test_missed_digest_sent_at_start(tmp_path, database_url):
    config = pipeline.config_module.load(write_config(tmp_path, database_url))
    trigger = crontab_trigger("0 9 * * *", config.timezone)
    # 09:20 in Shanghai: the 09:00 digest was missed twenty minutes ago.
    now = datetime(2026, 12, 5, 1, 20, tzinfo=UTC)

    with Store(database_url) as store:
        store.migrate()
        job = _JobStandIn(config, store)
        assert _first_digest_run(job, "daily", trigger, now) == now

        store_digest(config, store, "daily", now)
        next_day = datetime(2026, 12, 6, 1, 0, tzinfo=UTC)
        assert _first_digest_run(job, "daily", trigger, now) == next_day


def test_digest_not_missed_before_time(tmp_path, database_url):
    config = pipeline.config_module.load(write_config(tmp_path, database_url))
    trigger = crontab_trigger("0 9 * * *", config.timezone)
    early = datetime(2026, 12, 5, 0, 10, tzinfo=UTC)
    late = early + timedelta(hours=3)

    with Store(database_url) as store:
        store.migrate()
        job = _JobStandIn(config, store)
        assert _first_digest_run(job, "daily", trigger, early) == datetime(
            2026, 12, 5, 1, 0, tzinfo=UTC
        )
        # More than the misfire grace after the time: wait for the next day.
        assert _first_digest_run(job, "daily", trigger, late) == datetime(
            2026, 12, 6, 1, 0, tzinfo=UTC
        )


class _JobStandIn:
    """The two attributes of a job that the digest schedule reads."""

    def __init__(self, config, store) -> None:
        self.config = config
        self.store = store
