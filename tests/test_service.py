"""The scheduled service: triggers, and a clean stop on SIGTERM mid-replay."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from model_cache import shipped_model_path

import config as config_module
import pipeline
from storage import LockHeld, Store

ROOT = Path(__file__).resolve().parents[1]


def write_config(tmp_path: Path, sources: list[dict]) -> Path:
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["storage"] = {"url": f"sqlite:///{tmp_path / 'service.db'}"}
    data["alerts"]["outbox"] = str(tmp_path / "outbox")
    data["sources"] = sources
    data["model_path"] = str(shipped_model_path())
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def replay_source(name: str, path: Path, schedule: dict) -> dict:
    return {
        "name": name,
        "kind": "replay",
        "path": str(path),
        "schedule": schedule,
        "fields": {"id": "id", "text": "text"},
    }


def test_scheduler_registers_each_source(tmp_path):
    posts = tmp_path / "p.jsonl"
    posts.write_text("")
    config_path = write_config(
        tmp_path,
        [
            replay_source("every15", posts, {"interval_minutes": 15}),
            replay_source("nightly", posts, {"cron": "30 2 * * *"}),
            {**replay_source("off", posts, {"interval_minutes": 5}), "enabled": False},
        ],
    )
    config = config_module.load(config_path)
    with Store(config.database_url) as store:
        store.migrate()
        scheduler = pipeline.build_scheduler(pipeline.Job(config, store), config)

        jobs = {job.id: job for job in scheduler.get_jobs()}

    assert set(jobs) == {"source:every15", "source:nightly", "deliver"}
    every15 = jobs["source:every15"]
    assert isinstance(every15.trigger, IntervalTrigger)
    assert every15.trigger.interval.total_seconds() == 15 * 60
    assert every15.coalesce is True
    assert every15.max_instances == 1
    assert every15.misfire_grace_time == 3600
    nightly = jobs["source:nightly"].trigger
    assert isinstance(nightly, CronTrigger)
    assert str(nightly.timezone) == "Asia/Shanghai"
    fields = {f.name: str(f) for f in nightly.fields}
    assert (fields["hour"], fields["minute"]) == ("2", "30")
    first_nightly = jobs["source:nightly"].next_run_time
    assert (first_nightly.hour, first_nightly.minute) == (2, 30)


def test_sigterm_finishes_batch_and_resumes(tmp_path):
    count = 30_000
    posts = tmp_path / "posts.jsonl"
    with posts.open("w", encoding="utf-8") as handle:
        for number in range(count):
            text = f"启程QC7第{number}位车主:车机偶尔卡顿,售后说下次OTA修复"
            handle.write(
                json.dumps({"id": f"p{number}", "text": text}, ensure_ascii=False)
                + "\n"
            )
    config_path = write_config(
        tmp_path, [replay_source("big", posts, {"interval_minutes": 60})]
    )
    config = config_module.load(config_path)
    command = [
        sys.executable,
        str(ROOT / "pipeline.py"),
        "--config",
        str(config_path),
        "-v",
        "run",
    ]

    service = subprocess.Popen(
        command,
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        with Store(config.database_url) as store:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and _count(store) == 0:
                time.sleep(0.2)
        service.send_signal(signal.SIGTERM)
        _, log = service.communicate(timeout=60)
    finally:
        service.kill()

    assert service.returncode == 0, log
    assert "service stopped" in log
    with Store(config.database_url) as store:
        stored = store.count_posts()
        cursor = json.loads(store.get_cursor("big"))
        report = store.status()
    assert 0 < stored < count, "the service should stop before the end of the file"
    assert cursor["records"] == stored
    assert sum(report.kinds.values()) == stored

    result = subprocess.run(
        [*command[:-1], "once"], cwd=ROOT, capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
    with Store(config.database_url) as store:
        assert store.count_posts() == count


def _count(store: Store) -> int:
    try:
        return store.count_posts()
    except Exception:
        # The service may not have created the tables yet.
        return 0


def test_crash_before_analysis_is_repaired(tmp_path):
    posts = tmp_path / "posts.jsonl"
    posts.write_text(
        json.dumps(
            {"id": "a", "text": "启程QC7刹车失灵,已报警并向12315投诉要求召回"},
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    config_path = write_config(
        tmp_path, [replay_source("s", posts, {"interval_minutes": 60})]
    )
    config = config_module.load(config_path)
    with Store(config.database_url) as store:
        store.migrate()
        collector = pipeline.build_collector(config.sources[0], config)
        batch = next(collector.collect(None))
        # As if the process died right after storing the batch and its cursor.
        store.add_items(batch.items, cursor=("s", batch.cursor))

    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "pipeline.py"),
            "--config",
            str(config_path),
            "once",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr
    with Store(config.database_url) as store:
        assert store.unassessed_posts() == []
        assert store.status().kinds.get("complaint") == 1
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1


def test_one_thread_delivers_at_a_time(tmp_path):
    posts = tmp_path / "posts.jsonl"
    posts.write_text(
        json.dumps(
            {"id": "a", "text": "启程QC7刹车失灵,已报警并向12315投诉要求召回"},
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    config = config_module.load(
        write_config(tmp_path, [replay_source("s", posts, {"interval_minutes": 60})])
    )
    with Store(config.database_url) as store:
        store.migrate()
        job = pipeline.Job(config, store)
        job.run_source(config.sources[0])

        with job._delivering:
            assert job.deliver() == (0, 0)
        assert job.deliver() == (1, 0)

    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1


def test_lock_follows_symlinked_database(tmp_path):
    real = tmp_path / "real.db"
    link = tmp_path / "link.db"
    with Store(f"sqlite:///{real}") as store:
        store.migrate()
    link.symlink_to(real)

    with Store(f"sqlite:///{real}") as first, Store(f"sqlite:///{link}") as second:
        with first.job_lock():
            with pytest.raises(LockHeld):
                with second.job_lock():
                    pass
