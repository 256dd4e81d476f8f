"""The report's figures: deadlines met per week and level, and the digests'
figures read over every week, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pytest
from problem_posts import ProblemFiler
from sqlalchemy import insert

from storage import Store
from storage import store as store_module
from storage.digests import RECURRENCE_WEEKS
from storage.report import DeadlineFigures, read_report, week_of
from storage.tables import alerts
from storage.web_tables import post_reviews

TIMEZONE = "Asia/Shanghai"
# A Monday, and 09:00 on it in Shanghai.
WEEK = date(2026, 2, 23)
MONDAY = datetime(2026, 2, 23, 1, 0, tzinfo=UTC)
READ_AT = MONDAY + timedelta(days=3)


class Clock:
    def __init__(self) -> None:
        self.now = MONDAY

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(store_module, "utcnow", clock)
    return clock


def close(store: Store, post_id: int, resolution: str, at: datetime) -> None:
    row = {
        "post_id": post_id,
        "status": "closed",
        "resolution": resolution,
        "closed_at": at,
        "closed_by": "lead",
        "updated_at": at,
        "updated_by": "lead",
    }
    with store.engine.begin() as connection:
        connection.execute(insert(post_reviews).values(row))


def add_alert(store: Store, key: str, level: str, created: datetime, hours: float):
    row = {
        "dedup_key": key,
        "level": level,
        "kind": "post",
        "subject": "告警",
        "status": "acknowledged",
        "created_at": created,
        "updated_at": created,
        "acknowledged_at": created + timedelta(hours=hours),
    }
    with store.engine.begin() as connection:
        connection.execute(insert(alerts).values(row))


def read(store: Store):
    return read_report(store, WEEK, timezone=TIMEZONE, now=READ_AT)


def test_deadline_figures(store, clock) -> None:
    filer = ProblemFiler(store)
    deadline = MONDAY + timedelta(hours=12)
    posts = {}
    for name in ("in_time", "late", "overdue", "not_due", "false", "no_action"):
        clock.now += timedelta(minutes=1)
        due = READ_AT + timedelta(hours=1) if name == "not_due" else deadline
        posts[name] = filer.file(
            name, 1, len(posts) + 1, posted=clock.now, deadline=due
        )
    filer.file("critical", 1, 99, posted=clock.now, level="critical", deadline=deadline)
    close(store, posts["in_time"], "handled", deadline)
    close(store, posts["late"], "handled", deadline + timedelta(seconds=1))
    close(store, posts["false"], "false_alarm", deadline)
    close(store, posts["no_action"], "no_action", deadline)

    figures = read(store)

    assert figures.weeks[-1] == WEEK
    assert len(figures.deadlines) == RECURRENCE_WEEKS
    assert figures.deadlines[-1]["medium"] == DeadlineFigures(
        due=6, in_time=1, late=1, not_counted=1, closed_other=1, overdue=1, not_due=1
    )
    assert figures.deadlines[-1]["medium"].counted == 4
    assert figures.deadlines[-1]["medium"].share == 0.25
    assert figures.deadlines[-1]["critical"].due == 1
    assert figures.deadlines[-1]["critical"].overdue == 1
    assert math.isnan(figures.deadlines[-1]["normal"].share)
    assert all(week["medium"].due == 0 for week in figures.deadlines[:-1])


def test_deadline_counts_first_grading_week(store, clock) -> None:
    filer = ProblemFiler(store)
    clock.now = MONDAY - timedelta(days=7)
    filer.file("old", 1, 1, posted=clock.now, deadline=clock.now + timedelta(hours=2))

    figures = read(store)

    assert figures.deadlines[-2]["medium"].due == 1
    assert figures.deadlines[-2]["medium"].overdue == 1
    assert figures.deadlines[-1]["medium"].due == 0


def test_report_reads_digest_figures(store, clock) -> None:
    filer = ProblemFiler(store)
    clock.now = MONDAY - timedelta(days=7)
    filer.file("a", 1, 1, posted=clock.now)
    clock.now = MONDAY
    filer.file("b", 1, 2, posted=clock.now)
    filer.file("c", 2, 3, posted=clock.now, label="QC5 · 异响", root_cause="service")
    filer.file("d", 2, 3, posted=clock.now, label="QC5 · 异响", root_cause="service")
    add_alert(store, "k1", "critical", MONDAY, 0.5)
    add_alert(store, "k2", "medium", MONDAY - timedelta(days=7), 30)

    figures = read(store)

    assert figures.brand_incidents[-2:] == (1, 2)
    rates = {problem.problem_id: problem.rates[-1] for problem in figures.problems}
    assert rates == {1: 0.5, 2: 0.5}
    assert figures.new[-1].root_causes["service"] == 2
    assert figures.new[-1].root_causes["product"] == 1
    assert figures.new[-2].total == 1
    assert figures.alerts_available
    assert figures.acknowledge_hours[-1]["critical"] == (0.5,)
    assert figures.acknowledge_hours[-2]["medium"] == (30.0,)


def test_report_rejects_other_weekdays(store) -> None:
    with pytest.raises(ValueError, match="expected a Monday"):
        read_report(store, WEEK + timedelta(days=1), timezone=TIMEZONE, now=READ_AT)


def test_week_of_is_local() -> None:
    # Sunday 20:00 UTC is Monday 04:00 in Shanghai.
    sunday_evening = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)

    assert week_of(sunday_evening, TIMEZONE) == date(2026, 3, 2)
    assert week_of(sunday_evening, "UTC") == WEEK
