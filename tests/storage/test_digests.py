"""Digest figures read from a real store, on a SQLite file and on PostgreSQL."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    insert,
)

from items import (
    FACTORS,
    Assessment,
    Author,
    Classification,
    FactorScore,
    Grading,
    Item,
    NormalizedText,
    Relevance,
)
from signals.problems import STATE_VERSION, Incident, Problem
from storage import Store, create_store_engine
from storage import store as store_module
from storage.digest_alerts import OverdueAlert, read_alert_figures
from storage.digests import (
    EXCERPT_CHARS,
    DailyDigest,
    grading_id_floor,
    previous_day,
    previous_week,
    read_daily,
    read_weekly,
)
from storage.rows import GroupingChanges, PostAssignment
from storage.tables import UTCDateTime

TIMEZONE = "Asia/Shanghai"
ZONE = ZoneInfo(TIMEZONE)
DAY = date(2026, 3, 20)
WEEK = date(2026, 3, 16)
READ_AT = datetime(2026, 3, 21, 9, 0, tzinfo=ZONE)
SCRIPT_TEXT = (
    "<script>alert('x')</script> 启程QC7高速上刹车突然失灵，差点追尾，"
    "已经报警并打了400热线，要求厂家彻查原因并书面说明，现在想起来还在发抖，"
    "希望大家注意安全"
)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), ZONE)


def on_day(offset: int, hour: int, minute: int = 0) -> datetime:
    return at(DAY + timedelta(days=offset), hour, minute)


class Clock:
    """The time the store stamps on what it writes."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Topic:
    """A problem to file posts under, with its label and root cause."""

    problem: Problem
    label: str
    root_cause: str


class World:
    """Stores and assesses posts one save at a time, at the clock's time.

    Posts must be saved in time order, as the job saves them.
    """

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.count = 0
        self.incidents: dict[int, Incident] = {}

    def post(
        self,
        when: datetime,
        kind: str = "complaint",
        level: str = "medium",
        root_cause: str | None = "product",
        *,
        text: str = "启程QC7刹车异响，去了三次4S店都没修好",
        author: str | None = "车主",
        platform: str = "weibo",
        posted: datetime | None = None,
    ) -> int:
        """Store a post graded at ``when``; return its id."""
        self.clock.now = when
        self.count += 1
        item = Item(
            source="weibo-rss",
            platform=platform,
            external_id=f"p{self.count}",
            text=text,
            collected_at=when,
            created_at=posted or when,
            author=Author(name=author),
        )
        [post_id] = self.store.add_items([item])
        self.store.save_assessments([post_id], [assessed(kind, level, root_cause)])
        return post_id

    def regrade(self, post_id: int, when: datetime, level: str) -> None:
        self.clock.now = when
        self.store.save_regradings([(post_id, grading(level))])

    def reclassify(self, post_id: int, when: datetime, kind: str) -> None:
        self.clock.now = when
        self.store.save_assessments([post_id], [assessed(kind, "normal", None)])

    def report(
        self,
        topic: Topic,
        incident_id: int,
        posted: datetime,
        author: str | None,
        *,
        report: bool = True,
        platform: str = "weibo",
    ) -> int:
        """Store a complaint filed under ``topic``, graded when posted; return its id."""
        self.clock.now = posted
        self.count += 1
        key = f"weibo-rss:p{self.count}"
        item = Item(
            source="weibo-rss",
            platform=platform,
            external_id=f"p{self.count}",
            text=f"{topic.label} 第{self.count}帖",
            collected_at=self.clock.now,
            created_at=posted,
            author=Author(name=author),
        )
        [post_id] = self.store.add_items([item])

        incident = self._file(topic, incident_id, key, posted, report)
        assignment = PostAssignment(
            post_id, topic.problem.id, incident_id, report, "term", posted
        )
        grouping = GroupingChanges(
            state_version=STATE_VERSION,
            assignments=(assignment,),
            problems=(
                {
                    **topic.problem.to_dict(),
                    "label": topic.label,
                    "root_cause": topic.root_cause,
                },
            ),
            incidents=(incident.to_dict(),),
        )

        assessment = assessed("complaint", "medium", topic.root_cause)
        self.store.save_assessments([post_id], [assessment], grouping=grouping)
        return post_id

    def _file(
        self, topic: Topic, incident_id: int, key: str, posted: datetime, report: bool
    ) -> Incident:
        problem = topic.problem
        incident = self.incidents.setdefault(
            incident_id, Incident(incident_id, problem.id)
        )
        incident.posts[key] = report
        incident.first_seen = min(incident.first_seen or posted, posted)
        incident.last_seen = max(incident.last_seen or posted, posted)
        if incident_id not in problem.incident_ids:
            problem.incident_ids.append(incident_id)
        problem.posts += 1
        problem.first_seen = min(problem.first_seen or posted, posted)
        problem.last_seen = max(problem.last_seen or posted, posted)
        return incident


def topic(problem_id: int, label: str, root_cause: str = "product") -> Topic:
    return Topic(Problem(problem_id, "QC7", label), label, root_cause)


def grading(level: str) -> Grading:
    return Grading(
        factors=tuple(FactorScore(name, 1) for name in FACTORS),
        level=level,
        strategy="balanced",
        deadline=None,
        reason="测试用评级",
    )


def assessed(kind: str, level: str, root_cause: str | None) -> Assessment:
    graded = kind in ("grievance", "complaint")
    return Assessment(
        normalized=NormalizedText(text="刹车异响"),
        relevance=Relevance(True, "启程汽车", ("QC7",)),
        classification=Classification(kind, 0.9, root_cause=root_cause),
        grading=grading(level) if graded else None,
    )


@pytest.fixture
def world(store: Store, monkeypatch: pytest.MonkeyPatch) -> World:
    clock = Clock()
    monkeypatch.setattr(store_module, "utcnow", clock)
    return World(store, clock)


def read_day(store: Store, **options) -> DailyDigest:
    return read_daily(store, DAY, timezone=TIMEZONE, now=READ_AT, **options)


# -- New grievances and complaints --------------------------------------------------


def test_daily_counts_first_gradings(store, world):
    before = world.post(on_day(-7, 12), "complaint", "normal")
    world.post(on_day(-3, 10), "complaint", "medium")
    late = world.post(on_day(-1, 23, 30), "grievance", "normal", "service")
    world.post(on_day(0, 0), "grievance", "normal", "product")
    raised = world.post(on_day(0, 9), "complaint", "normal")
    world.regrade(before, on_day(0, 9, 30), "critical")
    world.regrade(late, on_day(0, 10), "medium")
    world.post(on_day(0, 11), "complaint", "critical")
    world.post(on_day(0, 12), "grievance", "normal", "service")
    world.post(on_day(0, 13), "grievance", "medium", None)
    world.post(on_day(0, 13, 30), "praise")
    turned = world.post(on_day(0, 14), "complaint", "critical")
    world.reclassify(turned, on_day(0, 14, 30), "praise")
    world.regrade(raised, on_day(0, 15), "critical")
    world.post(on_day(1, 0), "complaint", "critical")

    data = read_day(store)

    assert data.start == on_day(0, 0)
    assert data.end == on_day(1, 0)
    assert data.new.kinds == {"grievance": 3, "complaint": 2}
    assert data.new.levels == {"normal": 2, "medium": 1, "critical": 2}
    assert data.new.root_causes == {"product": 3, "service": 1, "process": 0}
    assert data.new.unknown_root_cause == 1
    assert data.days == tuple(DAY - timedelta(days=n) for n in range(6, -1, -1))
    assert data.levels_by_day == {
        "normal": (0, 0, 0, 0, 0, 0, 2),
        "medium": (0, 0, 0, 1, 0, 1, 1),
        "critical": (0, 0, 0, 0, 0, 0, 2),
    }


def test_daily_counts_empty_store(store):
    data = read_day(store)

    assert data.new.total == 0
    assert data.levels_by_day["critical"] == (0,) * 7
    assert data.growing_problems == ()
    assert data.critical_posts == ()


def test_grading_written_out_of_order_counts(store, world):
    # The second writer took its time before the first one's, waited for the
    # lock and wrote after it.
    first = world.post(on_day(0, 9, 5), "complaint", "critical")
    world.post(on_day(0, 8, 58), "complaint", "normal")

    data = read_day(store)
    with store.engine.connect() as connection:
        floor = grading_id_floor(connection, on_day(0, 9))

    assert floor <= first
    assert data.new.levels == {"normal": 1, "medium": 0, "critical": 1}


def test_grading_id_floor_of_empty_table(store):
    with store.engine.connect() as connection:
        assert grading_id_floor(connection, on_day(0, 0)) == 0


# -- Critical posts ---------------------------------------------------------------


def test_critical_posts_newest_first(store, world):
    world.post(on_day(-1, 20), "complaint", "critical")
    raised = world.post(on_day(0, 9), "complaint", "normal")
    script = world.post(on_day(0, 11), "complaint", "critical", text=SCRIPT_TEXT)
    short = world.post(on_day(0, 12), "grievance", "critical", text="QC7 刹车失灵")
    lowered = world.post(on_day(0, 12, 30), "complaint", "critical")
    world.regrade(lowered, on_day(0, 13), "medium")
    world.regrade(raised, on_day(0, 15), "critical")

    data = read_day(store)

    assert [post.post_id for post in data.critical_posts] == [raised, short, script]
    newest, middle, oldest = data.critical_posts
    assert newest.graded_at == on_day(0, 15)
    assert newest.posted_at == on_day(0, 9)
    assert middle.kind == "grievance"
    assert middle.excerpt == "QC7 刹车失灵"
    assert not middle.truncated
    assert oldest.level == "critical"
    assert oldest.excerpt == SCRIPT_TEXT[:EXCERPT_CHARS]
    assert oldest.truncated


def test_critical_posts_limit(store, world):
    world.post(on_day(0, 11), "complaint", "critical")
    newest = world.post(on_day(0, 12), "complaint", "critical")

    data = read_day(store, critical_limit=1)

    assert [post.post_id for post in data.critical_posts] == [newest]


# -- Growing problems -------------------------------------------------------------


def test_growing_problems_count_new_people(store, world):
    brakes = topic(1, "QC7 · 刹车异响")
    screen = topic(2, "QC5 · 车机黑屏", "service")
    old = topic(3, "QC7 · 异味")
    world.report(brakes, 1, on_day(-5, 9), "车主甲")
    world.report(old, 2, on_day(-4, 9), "车主乙")
    world.report(brakes, 3, on_day(-2, 9), "车主乙")
    world.report(brakes, 4, on_day(0, 8), "车主甲")
    world.report(brakes, 5, on_day(0, 9), "车主丙")
    world.report(brakes, 5, on_day(0, 10), "车主丁")
    world.report(brakes, 5, on_day(0, 10, 30), "车主丙")
    world.report(brakes, 5, on_day(0, 11), "转发者", report=False)
    world.report(brakes, 6, on_day(0, 12), "车主甲", platform="douyin")
    world.report(screen, 7, on_day(0, 13), "车主戊")
    world.report(screen, 7, on_day(0, 14), None)
    world.report(screen, 8, on_day(1, 0), "车主己")

    data = read_day(store)

    assert [p.problem_id for p in data.growing_problems] == [1, 2]
    first, second = data.growing_problems
    assert first.label == "QC7 · 刹车异响"
    assert first.root_cause == "product"
    assert first.new_posts == 6
    assert first.new_people == 3
    assert first.total_posts == 8
    assert second.root_cause == "service"
    assert second.new_posts == 2
    assert second.new_people == 1
    assert second.total_posts == 3


def test_growing_problems_limit(store, world):
    world.report(topic(1, "QC7 · 刹车异响"), 1, on_day(0, 9), "车主甲")
    busier = topic(2, "QC5 · 车机黑屏")
    world.report(busier, 2, on_day(0, 10), "车主乙")
    world.report(busier, 3, on_day(0, 11), "车主丙")

    data = read_day(store, problem_limit=1)

    assert [p.problem_id for p in data.growing_problems] == [2]


# -- Weekly recurrence ------------------------------------------------------------


def week_day(weeks_back: int, weekday: int, hour: int = 9) -> datetime:
    return at(WEEK - timedelta(weeks=weeks_back) + timedelta(days=weekday), hour)


def test_weekly_recurrence_rates(store, world):
    brakes = topic(1, "QC7 · 刹车异响")
    screen = topic(2, "QC5 · 车机黑屏", "service")
    smell = topic(3, "QC7 · 异味")
    world.report(screen, 10, at(date(2026, 1, 20), 9), "车主甲")
    world.report(smell, 11, at(date(2026, 1, 21), 9), "车主乙")
    world.report(smell, 11, week_day(5, 2), "车主丙")
    world.report(brakes, 12, week_day(2, 1), "车主丁")
    world.report(brakes, 13, at(WEEK, 0), "车主戊")
    world.report(brakes, 14, week_day(0, 1), "车主己")
    world.report(screen, 10, week_day(0, 1, 10), "车主庚")
    world.report(screen, 15, week_day(0, 3), "车主辛")
    world.report(brakes, 16, at(WEEK + timedelta(weeks=1), 0), "车主壬")

    data = read_weekly(store, WEEK, timezone=TIMEZONE, now=READ_AT)

    assert data.weeks[-1] == WEEK
    assert data.weeks[0] == date(2026, 1, 26)
    assert data.brand_incidents == (0, 0, 0, 0, 0, 1, 0, 3)
    assert [p.problem_id for p in data.problems] == [1, 2, 3]
    first, second, third = data.problems
    assert first.incidents == (0, 0, 0, 0, 0, 1, 0, 2)
    assert first.weeks_seen == 2
    assert first.rates[5] == 1.0
    assert first.rates[7] == pytest.approx(2 / 3)
    assert second.incidents == (0, 0, 0, 0, 0, 0, 0, 1)
    assert second.rates[5] == 0.0
    assert second.rates[7] == pytest.approx(1 / 3)
    assert third.incidents == (0,) * 8
    assert all(math.isnan(third.rates[i]) for i in (0, 1, 2, 3, 4, 6))
    assert third.label == "QC7 · 异味"


def test_weekly_counts_the_week(store, world):
    world.post(at(WEEK, 0) - timedelta(seconds=1), "complaint", "critical")
    world.post(at(WEEK, 0), "complaint", "critical", "process")
    world.post(week_day(0, 2), "grievance", "normal", "service")
    world.post(week_day(0, 6, 23), "grievance", "medium", None)
    world.post(at(WEEK + timedelta(weeks=1), 0), "complaint", "medium")

    data = read_weekly(store, WEEK, timezone=TIMEZONE, now=READ_AT)

    assert data.start == at(WEEK, 0)
    assert data.new.kinds == {"grievance": 2, "complaint": 1}
    assert data.new.levels == {"normal": 1, "medium": 1, "critical": 1}
    assert data.new.root_causes == {"product": 0, "service": 1, "process": 1}
    assert data.new.unknown_root_cause == 1


def test_weekly_rejects_other_weekdays(store):
    with pytest.raises(ValueError, match="expected a Monday"):
        read_weekly(store, DAY, timezone=TIMEZONE, now=READ_AT)


def test_previous_day_and_week_are_local():
    # 17:00 UTC on Sunday is 01:00 on Monday in Shanghai.
    now = datetime(2026, 3, 22, 17, 0, tzinfo=UTC)

    assert previous_day(now, TIMEZONE) == date(2026, 3, 22)
    assert previous_week(now, TIMEZONE) == date(2026, 3, 16)
    assert previous_day(now, "UTC") == date(2026, 3, 21)
    assert previous_week(now, "UTC") == date(2026, 3, 9)


# -- Alert figures ----------------------------------------------------------------


def test_alert_figures_without_alerts(store):
    data = read_day(store)
    with store.engine.connect() as connection:
        figures = read_alert_figures(connection, on_day(0, 0), on_day(1, 0), READ_AT)

    assert figures.available
    assert figures.overdue_total == 0
    assert data.alerts == figures


def future_alerts_table() -> Table:
    """The alerts table with the acknowledgement columns it is getting."""
    return Table(
        "alerts",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("post_id", BigInteger, nullable=True),
        Column("level", String(16)),
        Column("status", String(16)),
        Column("created_at", UTCDateTime()),
        Column("deadline", UTCDateTime(), nullable=True),
        Column("acknowledged_at", UTCDateTime(), nullable=True),
    )


def alert_row(level, status, created, deadline=None, acknowledged=None, post_id=None):
    return {
        "level": level,
        "status": status,
        "created_at": created,
        "deadline": deadline,
        "acknowledged_at": acknowledged,
        "post_id": post_id,
    }


def test_alert_figures_read_new_columns(database_url):
    table = future_alerts_table()
    rows = [
        alert_row("critical", "open", on_day(0, 8), on_day(0, 9), post_id=7),
        alert_row("medium", "open", on_day(-1, 8), on_day(0, 8)),
        alert_row("medium", "open", on_day(0, 9), on_day(1, 9)),
        alert_row(
            "critical", "acknowledged", on_day(0, 10), on_day(0, 11), on_day(0, 10, 30)
        ),
        alert_row("medium", "closed", on_day(0, 6), on_day(1, 6), on_day(0, 9)),
        alert_row("normal", "closed", on_day(-2, 6), on_day(-1, 6), on_day(-1, 9)),
        alert_row("normal", "acknowledged", on_day(0, 20), None, on_day(1, 0)),
    ]
    engine = create_store_engine(database_url)
    try:
        table.metadata.create_all(engine)
        with engine.begin() as connection:
            connection.execute(insert(table), rows)
            figures = read_alert_figures(
                connection, on_day(0, 0), on_day(1, 0), on_day(1, 9)
            )
    finally:
        engine.dispose()

    assert figures.available
    assert figures.overdue == {"normal": 0, "medium": 1, "critical": 1}
    assert figures.overdue_total == 2
    assert figures.oldest_overdue == (
        OverdueAlert(2, None, "medium", on_day(0, 8)),
        OverdueAlert(1, 7, "critical", on_day(0, 9)),
    )
    assert figures.acknowledge_hours == {
        "normal": (),
        "medium": (3.0,),
        "critical": (0.5,),
    }
    assert figures.acknowledged_total == 2
