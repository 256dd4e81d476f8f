"""Notices to operations when a source goes stale and when it recovers.

A source is stale once ``health.stale_after_failures`` runs in a row failed.
The notice goes when the run that reaches that count finishes, so a streak
raises one notice however long it lasts. The recovery notice goes when the
first run after such a streak succeeds. Both are keyed by the run that
raised them, so running the check twice stores nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from alerts.mail import compose_notice, header_safe
from alerts.outbox import mail_message
from config import Config
from storage import NewAlert, RunRecord

# Characters of a run's error quoted in a notice.
ERROR_CHARS = 300


def health_notice(
    config: Config, source: str, runs: Sequence[RunRecord], now: datetime
) -> NewAlert | None:
    """Return the notice the latest run calls for, or None.

    ``runs`` are the source's latest runs, newest first, at least
    ``stale_after_failures + 1`` of them when that many exist.
    """
    health = config.health
    if health.notify is None or not runs:
        return None
    limit = health.stale_after_failures
    latest, before = runs[0], list(runs[1:])
    streak = _failures_in_row(runs)
    if latest.status == "failed" and streak == limit:
        subject = f"【烽火·数据源】{source} 连续{limit}次采集失败"
        error = header_safe(latest.error or "未记录原因", ERROR_CHARS)
        body = (
            f"数据源 {source} 已连续{limit}次采集失败,在恢复前不会再次提醒。\n"
            f"最近一次失败:{latest.started_at:%Y-%m-%d %H:%M} UTC\n"
            f"原因:{error}\n"
        )
        return _notice(config, f"source-stale:{source}:{latest.id}", subject, body, now)
    if latest.status != "failed" and _failures_in_row(before) >= limit:
        subject = f"【烽火·数据源】{source} 已恢复"
        body = (
            f"数据源 {source} 在连续失败后恢复采集,"
            f"恢复时间:{latest.started_at:%Y-%m-%d %H:%M} UTC。\n"
        )
        key = f"source-recovered:{source}:{latest.id}"
        return _notice(config, key, subject, body, now)
    return None


def _failures_in_row(runs: Sequence[RunRecord]) -> int:
    count = 0
    for run in runs:
        if run.status != "failed":
            break
        count += 1
    return count


def _notice(
    config: Config, key: str, subject: str, body: str, now: datetime
) -> NewAlert:
    settings = config.alerts
    assert config.health.notify is not None
    recipients = settings.departments[config.health.notify].recipients
    composed = compose_notice(
        key, subject, body, sender=settings.sender, recipients=recipients, now=now
    )
    message = mail_message(composed, settings, recipients)
    return NewAlert(
        post_id=None,
        dedup_key=key,
        level="normal",
        kind="source",
        subject=composed.subject,
        message=message,
    )
