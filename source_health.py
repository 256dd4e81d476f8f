"""Each source's health, last success, lag and next run, as the ``status``
command and the review page's sources page show them.

A source is ok after a successful run, failing after one or more failed runs
in a row, and stale once ``health.stale_after_failures`` runs in a row failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from config import Config, Source, crontab_trigger
from storage import SourceStatus

HEALTH_STATES = ("ok", "failing", "stale")


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """The health of one source at ``now``.

    ``state`` is one of :data:`HEALTH_STATES`. ``lag`` is the time since the
    last successful run, None when there was none. ``schedule`` is
    "scheduled", "disabled" or "not configured" (a source in the database
    but no longer in the config), and ``next_run`` is set only when scheduled.
    """

    state: str
    failures_in_row: int
    stale_after: int
    lag: timedelta | None
    schedule: str
    next_run: datetime | None


def source_health(
    row: SourceStatus, source: Source | None, config: Config, now: datetime
) -> SourceHealth:
    """Return the health of the source whose status is ``row``."""
    limit = config.health.stale_after_failures
    if row.failures_in_row >= limit:
        state = "stale"
    elif row.failures_in_row:
        state = "failing"
    else:
        state = "ok"
    lag = None if row.last_success_at is None else now - row.last_success_at

    next_run = None
    if source is None:
        schedule = "not configured"
    elif not source.enabled:
        schedule = "disabled"
    else:
        schedule = "scheduled"
        next_run = next_run_time(source, row.last_started_at, config.timezone, now)
    return SourceHealth(state, row.failures_in_row, limit, lag, schedule, next_run)


def next_run_time(
    source: Source, last_started: datetime | None, timezone: str, now: datetime
) -> datetime:
    """Return when the service runs a source next, in the configured time zone.

    An interval source runs an interval after its last start, or at once when
    that is past (a run missed while the service was down runs on start).
    """
    zone = ZoneInfo(timezone)
    schedule = source.schedule
    if schedule.cron:
        trigger = crontab_trigger(schedule.cron, timezone)
        return trigger.get_next_fire_time(None, now).astimezone(zone)
    assert schedule.interval_minutes is not None
    due = now
    if last_started is not None:
        due = max(now, last_started + timedelta(minutes=schedule.interval_minutes))
    return due.astimezone(zone)


def format_duration(span: timedelta) -> str:
    """Format a span as minutes, hours and minutes, or days and hours."""
    minutes = max(int(span.total_seconds() // 60), 0)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} d {hours % 24} h"
