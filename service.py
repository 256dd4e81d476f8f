"""The scheduled service: every source on its own trigger, the engagement
refresh, the delivery of alerts, their escalation and the digests, in one
process until it is stopped."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from alerts.digest import digest_key, digest_recipients
from config import Config, Source, crontab_trigger
from job import Job
from storage import LockHeld, Store

logger = logging.getLogger(__name__)

# A run missed by up to this long (downtime, a busy worker) still happens once
# when the service is back. Older misses are skipped until the next run time.
MISFIRE_GRACE_SECONDS = 3600
# Sources run in at most this many threads at once, beside the refresh and
# the delivery, so a slow source takes one thread and the others go on. In the
# live benchmark, fifty sources started in fifty threads used about 470 MB of
# memory, against about 400 MB with eight threads.
MAX_SOURCE_WORKERS = 8


SOURCE_JOB_PREFIX = "source:"


def build_scheduler(job: Job, config: Config):
    """Create the scheduler: a job per enabled source, the engagement refresh,
    the delivery of alerts and the escalation check, both every minute, and the
    digests on their cron lines.

    Missed runs are coalesced: after an hour of downtime a source runs once,
    not once per missed interval. No source runs twice at the same time, and
    up to MAX_SOURCE_WORKERS run at once, so that a slow one does not hold up
    the others.
    """
    from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    sources = [source for source in config.sources if source.enabled]
    scheduler = BackgroundScheduler(
        executors={
            "default": ThreadPoolExecutor(min(len(sources), MAX_SOURCE_WORKERS) + 2)
        },
        timezone=config.timezone,
    )
    now = datetime.now(UTC)
    for source in sources:
        schedule = source.schedule
        # An interval source runs at once on start. A cron source waits for its
        # next time, so that a nightly source does not run at every restart,
        # unless a time was missed while the service was down.
        if schedule.cron:
            trigger = crontab_trigger(schedule.cron, config.timezone)
            first_run = _first_cron_run(job.store, source.name, trigger, now)
        else:
            trigger = IntervalTrigger(
                minutes=schedule.interval_minutes, timezone=config.timezone
            )
            first_run = now
        scheduler.add_job(
            _scheduled_run,
            trigger,
            args=(job, source),
            id=SOURCE_JOB_PREFIX + source.name,
            name=source.name,
            next_run_time=first_run,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=MISFIRE_GRACE_SECONDS,
        )
    refresh_minutes = config.refresh.interval_minutes
    scheduler.add_job(
        _scheduled_refresh,
        IntervalTrigger(minutes=refresh_minutes, timezone=config.timezone),
        args=(job,),
        id="refresh",
        name="engagement refresh",
        next_run_time=now + timedelta(minutes=refresh_minutes),
        coalesce=True,
        max_instances=1,
        misfire_grace_time=MISFIRE_GRACE_SECONDS,
    )
    for name, every_minute in (
        ("deliver", _scheduled_deliver),
        ("escalate", _scheduled_escalate),
    ):
        scheduler.add_job(
            every_minute,
            IntervalTrigger(minutes=1),
            args=(job,),
            id=name,
            name=name,
            coalesce=True,
            max_instances=1,
        )
    # Digests go out only when they have recipients, each on its cron line.
    digest_times = (
        ("daily", config.alerts.digests.daily),
        ("weekly", config.alerts.digests.weekly),
    )
    for kind, cron in digest_times:
        if not cron or not digest_recipients(config.alerts):
            continue
        trigger = crontab_trigger(cron, config.timezone)
        scheduler.add_job(
            _scheduled_digest,
            trigger,
            args=(job, kind),
            id=f"digest:{kind}",
            name=f"{kind} digest",
            next_run_time=_first_digest_run(job, kind, trigger, now),
            coalesce=True,
            max_instances=1,
            misfire_grace_time=MISFIRE_GRACE_SECONDS,
        )
    scheduler.add_listener(
        lambda event: _record_skip(job, event),
        EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED,
    )
    return scheduler


def _first_cron_run(store: Store, source: str, trigger, now: datetime) -> datetime:
    """Return when a cron source first runs after a start: now, when a fire time
    since its last run was missed within the misfire grace, else its next time."""
    runs = store.recent_runs(source, 1)
    if runs:
        since_last = runs[0].started_at + timedelta(seconds=1)
        missed = trigger.get_next_fire_time(None, since_last)
        grace = timedelta(seconds=MISFIRE_GRACE_SECONDS)
        if missed is not None and now - grace <= missed <= now:
            logger.info(
                "cron run missed while stopped, running now source=%s missed=%s",
                source,
                missed.isoformat(),
            )
            return now
    return trigger.get_next_fire_time(None, now)


def _first_digest_run(job: Job, kind: str, trigger, now: datetime) -> datetime:
    """Return when a digest is first sent after a start: now, when its last
    time passed within the misfire grace and that digest was not stored, else
    its next time."""
    grace = timedelta(seconds=MISFIRE_GRACE_SECONDS)
    missed = trigger.get_next_fire_time(None, now - grace)
    if missed is not None and missed <= now:
        key = digest_key(kind, missed, job.config.timezone)
        if not job.store.known_alerts({key}):
            logger.info(
                "digest time missed while stopped, sending now digest=%s missed=%s",
                kind,
                missed.isoformat(),
            )
            return now
    return trigger.get_next_fire_time(None, now)


def _scheduled_digest(job: Job, kind: str) -> None:
    """Send a digest, logging a failure instead of stopping the service."""
    if job.stop.is_set():
        return
    try:
        job.send_digest(kind)
    except Exception:
        logger.exception("digest failed, sent at its next time digest=%s", kind)


def _record_skip(job: Job, event) -> None:
    """Record a source run that the scheduler skipped, for status to show."""
    from apscheduler.events import EVENT_JOB_MAX_INSTANCES

    if not event.job_id.startswith(SOURCE_JOB_PREFIX):
        return
    source = event.job_id.removeprefix(SOURCE_JOB_PREFIX)
    reason = "running" if event.code == EVENT_JOB_MAX_INSTANCES else "missed"
    logger.warning("scheduled run skipped source=%s reason=%s", source, reason)
    try:
        job.store.record_skip(source, reason)
    except SQLAlchemyError as exc:
        logger.error(
            "cannot record skipped run source=%s error=%s", source, _first_line(exc)
        )


def serve(job: Job, config: Config) -> None:
    """Run each enabled source on its schedule until ``job.stop`` is set."""
    job.recover()
    scheduler = build_scheduler(job, config)
    scheduler.start()
    logger.info("service started jobs=%s", len(scheduler.get_jobs()))
    try:
        while not job.stop.wait(1.0):
            pass
    finally:
        logger.info("service stopping, finishing the batches in hand")
        scheduler.shutdown(wait=True)
        logger.info("service stopped")


def _scheduled_deliver(job: Job) -> None:
    try:
        job.verify_lock()
        job.deliver()
    except LockHeld:
        return
    except (SQLAlchemyError, OSError) as exc:
        logger.error(
            "alert delivery run failed, retried in a minute error=%s", _first_line(exc)
        )


def _scheduled_escalate(job: Job) -> None:
    try:
        job.verify_lock()
        if job.escalate():
            job.deliver()
    except LockHeld:
        return
    except (SQLAlchemyError, OSError) as exc:
        logger.error(
            "escalation check failed, retried in a minute error=%s", _first_line(exc)
        )


def _scheduled_refresh(job: Job) -> None:
    try:
        job.verify_lock()
        job.refresh_engagement()
        job.deliver()
    except LockHeld:
        return
    except (SQLAlchemyError, OSError) as exc:
        logger.error(
            "engagement refresh failed, retried at its next run time error=%s",
            _first_line(exc),
        )


def _first_line(exc: BaseException) -> str:
    reason = str(getattr(exc, "orig", None) or exc).strip()
    return reason.splitlines()[0] if reason else type(exc).__name__


def _scheduled_run(job: Job, source: Source) -> None:
    try:
        job.verify_lock()
        job.run_source(source)
        job.deliver()
    except LockHeld:
        return
    except (SQLAlchemyError, OSError) as exc:
        logger.error(
            "source run failed, retried at its next run time source=%s error=%s",
            source.name,
            _first_line(exc),
        )
