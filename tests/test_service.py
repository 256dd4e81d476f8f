"""The scheduled service: triggers, catch-up runs, a clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from apscheduler.job import Job as SchedulerJob
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from model_cache import shipped_model_path
from sqlalchemy import update

import config as config_module
import pipeline
from collectors import build_collector
from config import crontab_trigger
from service import build_scheduler
from storage import LockHeld, Store
from storage.tables import source_runs

ROOT = Path(__file__).resolve().parents[1]
# 20:00 in Shanghai (UTC+8, no daylight saving time).
NOON_UTC = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def write_config(tmp_path: Path, sources: list[dict], **settings) -> Path:
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["storage"] = {"url": f"sqlite:///{tmp_path / 'service.db'}"}
    data["alerts"]["outbox"] = str(tmp_path / "outbox")
    data["sources"] = sources
    data["model_path"] = str(shipped_model_path())
    data.update(settings)
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


def test_scheduler_registers_digests_with_recipients(tmp_path):
    posts = tmp_path / "p.jsonl"
    posts.write_text("")
    config_path = write_config(
        tmp_path, [replay_source("every15", posts, {"interval_minutes": 15})]
    )
    data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    data["alerts"]["digests"] = {"weekly": "", "recipients": ["ops@brand.example"]}
    config_path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    config = config_module.load(config_path)
    with Store(config.database_url) as store:
        store.migrate()
        scheduler = build_scheduler(pipeline.Job(config, store), config)

        jobs = {job.id: job for job in scheduler.get_jobs()}

    assert "digest:weekly" not in jobs
    daily = jobs["digest:daily"]
    assert isinstance(daily.trigger, CronTrigger)
    assert str(daily.trigger.timezone) == config.timezone
    assert daily.coalesce is True


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
        scheduler = build_scheduler(pipeline.Job(config, store), config)

        jobs = {job.id: job for job in scheduler.get_jobs()}

    assert set(jobs) == {
        "source:every15",
        "source:nightly",
        "refresh",
        "deliver",
        "escalate",
    }
    escalate = jobs["escalate"]
    assert isinstance(escalate.trigger, IntervalTrigger)
    assert escalate.trigger.interval.total_seconds() == 60
    assert escalate.max_instances == 1
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


def source_job(tmp_path: Path, schedule: dict, **settings) -> SchedulerJob:
    """Return the scheduler job of one source "s", from an unstarted scheduler."""
    posts = tmp_path / "posts.jsonl"
    posts.touch()
    path = write_config(tmp_path, [replay_source("s", posts, schedule)], **settings)
    config = config_module.load(path)
    with Store(config.database_url) as store:
        store.migrate()
        scheduler = build_scheduler(pipeline.Job(config, store), config)
        return scheduler.get_job("source:s")


def due_runs(job: SchedulerJob, now: datetime) -> list[datetime]:
    """Return the run times that the scheduler starts at ``now``.

    These are APScheduler 3.11's rules: BaseScheduler._process_jobs keeps only
    the latest missed run time of a coalescing job, and executors.base.run_job
    skips a run time more than the job's misfire grace time in the past.
    """
    run_times = job._get_run_times(now)
    if job.coalesce:
        run_times = run_times[-1:]
    grace = timedelta(seconds=job.misfire_grace_time)
    return [run_time for run_time in run_times if now - run_time <= grace]


@pytest.mark.parametrize(
    ("timezone", "expected"),
    [
        ("Asia/Shanghai", datetime(2026, 3, 10, 18, 0, tzinfo=UTC)),
        ("UTC", datetime(2026, 3, 11, 2, 0, tzinfo=UTC)),
    ],
)
def test_cron_fires_in_configured_zone(tmp_path, timezone, expected):
    job = source_job(tmp_path, {"cron": "0 2 * * *"}, timezone=timezone)

    first = job.trigger.get_next_fire_time(None, NOON_UTC)
    second = job.trigger.get_next_fire_time(first, first)

    assert first == expected
    assert str(first.tzinfo) == timezone
    assert (first.hour, first.minute) == (2, 0)
    assert second == expected + timedelta(days=1)


def test_interval_runs_at_start_then_repeats(tmp_path):
    started = datetime.now(UTC)
    job = source_job(tmp_path, {"interval_minutes": 15})
    built = datetime.now(UTC)

    first = job.next_run_time
    later = job.trigger.get_next_fire_time(NOON_UTC, NOON_UTC)

    assert started <= first <= built
    assert job._get_run_times(built) == [first]
    assert job.trigger.timezone == ZoneInfo("Asia/Shanghai")
    assert later == NOON_UTC + timedelta(minutes=15)
    assert job.trigger.get_next_fire_time(first, first) == first + timedelta(minutes=15)


def test_interval_downtime_gives_one_run(tmp_path):
    job = source_job(tmp_path, {"interval_minutes": 5})
    last_run = NOON_UTC
    job._modify(next_run_time=last_run + timedelta(minutes=5))
    now = last_run + timedelta(minutes=60, seconds=30)

    missed = job._get_run_times(now)
    due = due_runs(job, now)

    assert len(missed) == 12
    assert due == [last_run + timedelta(minutes=60)]
    assert job.trigger.get_next_fire_time(due[-1], now) == last_run + timedelta(
        minutes=65
    )


def test_cron_downtime_within_grace_runs(tmp_path):
    job = source_job(tmp_path, {"cron": "0 2 * * *"})
    two_am_shanghai = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
    job._modify(next_run_time=two_am_shanghai)

    half_hour_late = due_runs(job, two_am_shanghai + timedelta(minutes=30))
    two_hours_late = due_runs(job, two_am_shanghai + timedelta(hours=2))

    assert half_hour_late == [two_am_shanghai]
    assert two_hours_late == []
    assert job.trigger.get_next_fire_time(
        two_am_shanghai, two_am_shanghai + timedelta(hours=2)
    ) == two_am_shanghai + timedelta(days=1)


def service_config(tmp_path: Path, schedule: dict):
    """Load a config with one replay source "s" of one complaint."""
    posts = tmp_path / "posts.jsonl"
    posts.write_text(
        json.dumps(
            {"id": "a", "text": "启程QC7刹车失灵,已报警并向12315投诉要求召回"},
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    return config_module.load(
        write_config(tmp_path, [replay_source("s", posts, schedule)])
    )


def wait_until(condition, timeout: float = 60.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the scheduler"
        time.sleep(0.05)


def settled_runs(store: Store) -> int:
    """Count the finished and the skipped runs of source "s"."""
    runs = store.recent_runs("s", 10)
    finished = sum(1 for run in runs if run.finished_at is not None)
    sources = store.status().sources
    return finished + (sources[0].skipped_runs if sources else 0)


def test_restart_runs_interval_source_once(tmp_path):
    config = service_config(tmp_path, {"interval_minutes": 5})
    with Store(config.database_url) as store:
        store.migrate()
        job = pipeline.Job(config, store)
        started = datetime.now(UTC)
        scheduler = build_scheduler(job, config)
        scheduler.start()
        try:
            wait_until(lambda: settled_runs(store) >= 1)
            next_run = scheduler.get_job("source:s").next_run_time
        finally:
            scheduler.shutdown(wait=True)
        runs = store.recent_runs("s", 5)

    assert [run.status for run in runs] == ["ok"]
    assert started + timedelta(minutes=5) <= next_run
    assert next_run <= datetime.now(UTC) + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("minutes", "stalled", "runs", "skipped"),
    [(5, timedelta(hours=1), 1, 0), (180, timedelta(hours=2), 0, 1)],
)
def test_stalled_scheduler_coalesces_missed_runs(
    tmp_path, minutes, stalled, runs, skipped
):
    config = service_config(tmp_path, {"interval_minutes": minutes})
    with Store(config.database_url) as store:
        store.migrate()
        scheduler = build_scheduler(pipeline.Job(config, store), config)
        scheduler.start(paused=True)
        # As if the process had been suspended since a run time this long ago.
        job = scheduler.modify_job(
            "source:s", next_run_time=datetime.now(UTC) - stalled
        )
        missed = len(job._get_run_times(datetime.now(UTC)))
        scheduler.resume()
        try:
            wait_until(lambda: settled_runs(store) >= 1)
        finally:
            scheduler.shutdown(wait=True)
        statuses = [run.status for run in store.recent_runs("s", 5)]
        [source] = store.status().sources

    assert missed == stalled // timedelta(minutes=minutes) + 1
    assert statuses == ["ok"] * runs
    assert source.skipped_runs == skipped


def test_restart_runs_cron_missed_in_downtime(tmp_path):
    shanghai = ZoneInfo("Asia/Shanghai")
    missed = (datetime.now(shanghai) - timedelta(minutes=30)).replace(
        second=0, microsecond=0
    )
    config = service_config(tmp_path, {"cron": f"{missed.minute} {missed.hour} * * *"})
    with Store(config.database_url) as store:
        store.migrate()
        # The service ran the source a day before and was down at its time.
        run_id = store.start_run("s")
        store.finish_run(run_id, status="ok", fetched=0, new=0, duplicates=0, bad=0)
        yesterday = (missed - timedelta(days=1)).astimezone(UTC)
        with store.engine.begin() as connection:
            connection.execute(
                update(source_runs)
                .where(source_runs.c.id == run_id)
                .values(started_at=yesterday, finished_at=yesterday)
            )
        scheduler = build_scheduler(pipeline.Job(config, store), config)
        job = scheduler.get_job("source:s")

    assert job.next_run_time <= datetime.now(UTC)


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
        collector = build_collector(config.sources[0], config)
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
        # One critical alert, one delivery per recipient: four departments.
        assert job.deliver() == (4, 0)

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


@pytest.mark.parametrize(
    ("line", "weekdays"),
    [
        ("30 9 * * 1", ["Mon", "Mon"]),
        ("30 9 * * 0", ["Sun", "Sun"]),
        ("30 9 * * 7", ["Sun", "Sun"]),
        ("30 9 * * 1-5", ["Mon", "Tue"]),
        ("30 9 * * */2", ["Sun", "Tue"]),
        ("30 9 * * 5-7", ["Sun", "Fri"]),
        ("30 9 * * sat,sun", ["Sun", "Sat"]),
    ],
)
def test_cron_weekdays_read_as_crontab(line, weekdays):
    trigger = crontab_trigger(line, "UTC")
    # Saturday 5 December 2026, after 09:30.
    moment = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    fired = []
    for _ in weekdays:
        moment = trigger.get_next_fire_time(None, moment)
        fired.append(moment.strftime("%a"))
        moment += timedelta(minutes=1)

    assert fired == weekdays


@pytest.mark.parametrize(
    "line", ["30 9 * * 8", "30 9 * *", "30 9 * * 1/x", "x 9 * * 1"]
)
def test_cron_invalid_lines_rejected(line):
    with pytest.raises(ValueError):
        crontab_trigger(line, "UTC")
