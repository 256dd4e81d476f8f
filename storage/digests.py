"""Read-only queries behind the daily and weekly digest mails.

Each ``read_*`` function takes a :class:`storage.Store` or an engine, runs its
queries in one transaction and returns plain dataclasses. Periods are local
calendar days and weeks (Monday to Sunday) in the given time zone.

The figures follow these definitions:

- A grievance or complaint is new in a period when the first grading of its
  post was made in that period. It counts with its current kind, level and
  root cause: the post's latest classification must be a grievance or a
  complaint, and the level is that classification's latest grading. A post
  reclassified as praise no longer counts.
- A problem grows in a period by the posts assigned to it that were posted in
  the period (``problem_posts.posted_at``).
- The recurrence rate (同类投诉发生率) of a problem in a week is the number of
  its incidents first seen that week divided by the number of incidents of all
  problems first seen that week. An incident (a post with its copies and
  reposts) counts as one occurrence however far it spreads, and the share
  keeps a week with more sources or more posts overall from looking like
  recurrence. A week in which no incident started has no rate (NaN).
"""

from __future__ import annotations

import logging
import math
import time as timer
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, case, func, select

from items import LEVELS, ROOT_CAUSES

from .digest_alerts import AlertFigures, read_alert_figures
from .tables import (
    classifications,
    gradings,
    incidents,
    posts,
    problem_posts,
    problems,
)

if TYPE_CHECKING:
    from .store import Store

logger = logging.getLogger(__name__)

DIGEST_KINDS = ("grievance", "complaint")
TREND_DAYS = 7
RECURRENCE_WEEKS = 8
TOP_PROBLEMS = 10
CRITICAL_SAMPLE = 10
EXCERPT_CHARS = 80
# Gradings are numbered in insert order and stamped with the insert time, but
# a writer that waited for another's lock can insert an earlier time after a
# later one. On SQLite that wait ends after the 30 s busy timeout, so an hour
# of disorder is far more than the id search needs to allow.
ID_ORDER_SLACK = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class GrowingProblem:
    """A problem with new posts in the period.

    ``new_people`` counts the authors of the period's reports (posts with
    words of their own) who had reported no earlier post of the problem.
    ``total_posts`` is the problem's count of posts of all time.
    """

    problem_id: int
    label: str
    root_cause: str | None
    new_posts: int
    new_people: int
    total_posts: int


@dataclass(frozen=True, slots=True)
class CriticalPost:
    """A post whose latest grading, made in the period, is critical.

    ``excerpt`` is the first ``EXCERPT_CHARS`` characters of the post's text,
    as written, and ``truncated`` is True when the text is longer.
    ``posted_at`` is the post's creation time, or its collection time when
    the source gave none.
    """

    post_id: int
    posted_at: datetime
    graded_at: datetime
    kind: str
    level: str
    excerpt: str
    truncated: bool


@dataclass(frozen=True, slots=True)
class NewCounts:
    """New grievances and complaints of a period, by kind, level and root cause.

    ``root_causes`` has a count for each of ``items.ROOT_CAUSES``, and
    ``unknown_root_cause`` counts the posts that have none.
    """

    kinds: Mapping[str, int]
    levels: Mapping[str, int]
    root_causes: Mapping[str, int]
    unknown_root_cause: int

    @property
    def total(self) -> int:
        return sum(self.kinds.values())


@dataclass(frozen=True, slots=True)
class DailyDigest:
    """The figures of one local day, with a trend over the days up to it.

    ``days`` lists the ``TREND_DAYS`` days that end with ``day``, and
    ``levels_by_day`` has one count per day of ``days`` for each level.
    ``start`` and ``end`` are the local midnights that bound ``day``.
    """

    day: date
    timezone: str
    start: datetime
    end: datetime
    new: NewCounts
    days: tuple[date, ...]
    levels_by_day: Mapping[str, tuple[int, ...]]
    growing_problems: tuple[GrowingProblem, ...]
    critical_posts: tuple[CriticalPost, ...]
    alerts: AlertFigures


@dataclass(frozen=True, slots=True)
class ProblemRecurrence:
    """A problem's new incidents and recurrence rate in each week of a digest.

    ``incidents`` and ``rates`` have one value per week of
    :attr:`WeeklyDigest.weeks`. A rate is NaN in a week without any new
    incident of any problem.
    """

    problem_id: int
    label: str
    root_cause: str | None
    incidents: tuple[int, ...]
    rates: tuple[float, ...]

    @property
    def weeks_seen(self) -> int:
        """Return the number of weeks in which the problem had a new incident."""
        return sum(1 for count in self.incidents if count > 0)


@dataclass(frozen=True, slots=True)
class WeeklyDigest:
    """The figures of one local week and the recurrence of the weeks up to it.

    ``weeks`` are the Mondays of the ``RECURRENCE_WEEKS`` weeks that end with
    ``week``. ``brand_incidents`` counts the new incidents of all problems in
    each of them. ``problems`` lists every problem with a post in those weeks,
    most new incidents first. ``start`` and ``end`` are the local midnights
    that bound ``week``.
    """

    week: date
    timezone: str
    start: datetime
    end: datetime
    new: NewCounts
    weeks: tuple[date, ...]
    brand_incidents: tuple[int, ...]
    problems: tuple[ProblemRecurrence, ...]
    alerts: AlertFigures


def previous_day(now: datetime, timezone: str) -> date:
    """Return the local date before the one ``now`` falls on."""
    return now.astimezone(ZoneInfo(timezone)).date() - timedelta(days=1)


def previous_week(now: datetime, timezone: str) -> date:
    """Return the Monday of the local week before the one ``now`` falls in."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    return today - timedelta(days=today.weekday() + 7)


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """Return the start of a local day as an aware datetime."""
    return datetime.combine(day, time(), zone)


def read_daily(
    source: Store | Engine,
    day: date,
    *,
    timezone: str,
    now: datetime,
    problem_limit: int = TOP_PROBLEMS,
    critical_limit: int = CRITICAL_SAMPLE,
) -> DailyDigest:
    """Read the figures of the daily digest for the local date ``day``.

    ``now`` is the time the overdue alerts are measured against.
    """
    zone = ZoneInfo(timezone)
    days = tuple(day - timedelta(days=n) for n in range(TREND_DAYS - 1, -1, -1))
    bounds = [local_midnight(d, zone) for d in (*days, day + timedelta(days=1))]
    start, end = bounds[-2], bounds[-1]
    started = timer.perf_counter()
    with read_transaction(source) as connection:
        per_day = count_new(connection, bounds)
        growing = growing_problems(connection, start, end, problem_limit)
        critical = critical_posts(connection, start, end, critical_limit)
        alert_figures = read_alert_figures(connection, start, end, now)
    logger.info(
        "daily digest read day=%s seconds=%.3f",
        day.isoformat(),
        timer.perf_counter() - started,
    )
    return DailyDigest(
        day=day,
        timezone=timezone,
        start=start,
        end=end,
        new=per_day[-1],
        days=days,
        levels_by_day={
            level: tuple(counts.levels[level] for counts in per_day) for level in LEVELS
        },
        growing_problems=growing,
        critical_posts=critical,
        alerts=alert_figures,
    )


def read_weekly(
    source: Store | Engine, week: date, *, timezone: str, now: datetime
) -> WeeklyDigest:
    """Read the figures of the weekly digest for the week starting on ``week``.

    Raises ValueError when ``week`` is not a Monday.
    """
    weeks, bounds = week_bounds(week, timezone)
    start, end = bounds[-2], bounds[-1]
    started = timer.perf_counter()
    with read_transaction(source) as connection:
        [new] = count_new(connection, [start, end])
        brand, recurrences = recurrence(connection, bounds)
        alert_figures = read_alert_figures(connection, start, end, now)
    logger.info(
        "weekly digest read week=%s problems=%s seconds=%.3f",
        week.isoformat(),
        len(recurrences),
        timer.perf_counter() - started,
    )
    return WeeklyDigest(
        week=week,
        timezone=timezone,
        start=start,
        end=end,
        new=new,
        weeks=weeks,
        brand_incidents=brand,
        problems=recurrences,
        alerts=alert_figures,
    )


def week_bounds(week: date, timezone: str) -> tuple[tuple[date, ...], list[datetime]]:
    """Return the Mondays of the ``RECURRENCE_WEEKS`` weeks that end with the
    one starting on ``week``, and the local midnights that bound them.

    Raises ValueError when ``week`` is not a Monday.
    """
    if week.weekday() != 0:
        raise ValueError(f"invalid week start {week.isoformat()}: expected a Monday")
    zone = ZoneInfo(timezone)
    weeks = tuple(
        week - timedelta(weeks=n) for n in range(RECURRENCE_WEEKS - 1, -1, -1)
    )
    bounds = [local_midnight(w, zone) for w in (*weeks, week + timedelta(weeks=1))]
    return weeks, bounds


@contextmanager
def read_transaction(source: Store | Engine) -> Iterator[Connection]:
    """Open a connection whose queries all read one snapshot of the database."""
    engine: Engine = getattr(source, "engine", source)
    with engine.connect() as connection:
        # PostgreSQL's default, READ COMMITTED, would let the queries of one
        # digest see different data. SQLite reads from one snapshot anyway.
        if connection.dialect.name == "postgresql":
            connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            yield connection


def count_new(connection: Connection, bounds: Sequence[datetime]) -> list[NewCounts]:
    """Count the new grievances and complaints between consecutive ``bounds``.

    Returns one :class:`NewCounts` per period, ``len(bounds) - 1`` in all.
    """
    periods = len(bounds) - 1
    new = new_post_rows(connection, bounds[0], bounds[-1])
    period = case(
        *(
            (new.c.first_graded_at < bound, index)
            for index, bound in enumerate(bounds[1:])
        ),
        else_=periods - 1,
    ).label("period")
    statement = select(
        period, new.c.kind, new.c.level, new.c.root_cause, func.count()
    ).group_by(period, new.c.kind, new.c.level, new.c.root_cause)

    tallies = [_Tally() for _ in range(periods)]
    for index, kind, level, root_cause, count in connection.execute(statement):
        tallies[index].add(kind, level, root_cause, count)
    return [tally.counts() for tally in tallies]


class _Tally:
    def __init__(self) -> None:
        self.kinds = dict.fromkeys(DIGEST_KINDS, 0)
        self.levels = dict.fromkeys(LEVELS, 0)
        self.root_causes = dict.fromkeys(ROOT_CAUSES, 0)
        self.unknown_root_cause = 0

    def add(self, kind: str, level: str, root_cause: str | None, count: int) -> None:
        self.kinds[kind] += count
        self.levels[level] = self.levels.get(level, 0) + count
        if root_cause in self.root_causes:
            self.root_causes[root_cause] += count
        else:
            self.unknown_root_cause += count

    def counts(self) -> NewCounts:
        return NewCounts(
            self.kinds, self.levels, self.root_causes, self.unknown_root_cause
        )


def new_post_rows(connection: Connection, start: datetime, end: datetime) -> Any:
    """Return a subquery of the grievances and complaints first graded from
    ``start`` to ``end``: post_id, first_graded_at, kind, level, root_cause
    and deadline. The level and the deadline are the latest grading's."""
    g = gradings.c
    floor = grading_id_floor(connection, start)
    graded_in_period = select(g.post_id).where(
        g.id >= floor, g.created_at >= start, g.created_at < end
    )
    per_post = (
        select(
            g.post_id,
            func.min(g.created_at).label("first_graded_at"),
            func.max(g.id).label("latest_grading_id"),
        )
        .where(g.post_id.in_(graded_in_period))
        .group_by(g.post_id)
        .having(func.min(g.created_at) >= start)
        .subquery("per_post")
    )
    latest = gradings.alias("latest")
    classification = classifications.alias("classification")
    return (
        select(
            per_post.c.post_id,
            per_post.c.first_graded_at,
            classification.c.kind,
            latest.c.level,
            classification.c.root_cause,
            latest.c.deadline,
        )
        .join_from(per_post, latest, latest.c.id == per_post.c.latest_grading_id)
        .join(classification, classification.c.id == latest.c.classification_id)
        .where(
            classification.c.id == _latest_classification_id(per_post.c.post_id),
            classification.c.kind.in_(DIGEST_KINDS),
        )
        .subquery("new_posts")
    )


def _latest_classification_id(post_id: Any) -> Any:
    other = classifications.alias("other")
    return (
        select(func.max(other.c.id)).where(other.c.post_id == post_id).scalar_subquery()
    )


def grading_id_floor(connection: Connection, since: datetime) -> int:
    """Return an id below which no grading was made at or after ``since``.

    ``gradings.created_at`` has no index, so a period query would scan the
    whole table. Gradings are numbered in insert order and stamped with the
    insert time, so the time grows with the id: a binary search over the
    primary key finds the first grading made at ``since - ID_ORDER_SLACK``,
    in about 2·log2(rows) index lookups.
    """
    g = gradings.c
    target = since - ID_ORDER_SLACK
    # Two statements, because SQLite reads min() or max() from the index
    # only when it is the query's single aggregate.
    low = connection.execute(select(func.min(g.id))).scalar_one()
    if low is None:
        return 0
    high = connection.execute(select(func.max(g.id))).scalar_one() + 1
    while low < high:
        middle = (low + high) // 2
        found_id, created_at = connection.execute(
            select(g.id, g.created_at).where(g.id >= middle).order_by(g.id).limit(1)
        ).one()
        if created_at >= target:
            high = middle
        else:
            low = found_id + 1
    return low


def growing_problems(
    connection: Connection, start: datetime, end: datetime, limit: int
) -> tuple[GrowingProblem, ...]:
    """Return the ``limit`` problems with the most posts posted in the period.

    Ties go to the problem seen last.
    """
    pp = problem_posts.c
    new_posts = (
        select(pp.problem_id, func.count().label("new_posts"))
        .where(pp.posted_at >= start, pp.posted_at < end)
        .group_by(pp.problem_id)
        .subquery()
    )
    rows = connection.execute(
        select(
            problems.c.id,
            problems.c.label,
            problems.c.root_cause,
            problems.c.posts,
            new_posts.c.new_posts,
        )
        .join(new_posts, new_posts.c.problem_id == problems.c.id)
        .order_by(
            new_posts.c.new_posts.desc(), problems.c.last_seen.desc(), problems.c.id
        )
        .limit(limit)
    ).all()
    people = _new_people(connection, [row.id for row in rows], start, end)
    return tuple(
        GrowingProblem(
            problem_id=row.id,
            label=row.label,
            root_cause=row.root_cause,
            new_posts=row.new_posts,
            new_people=people.get(row.id, 0),
            total_posts=row.posts,
        )
        for row in rows
    )


def _new_people(
    connection: Connection, problem_ids: list[int], start: datetime, end: datetime
) -> dict[int, int]:
    """Count, per problem, the period's reporters not seen in it before."""
    if not problem_ids:
        return {}
    pp = problem_posts.c
    in_period = (pp.posted_at >= start).label("in_period")
    statement = (
        select(
            pp.problem_id,
            in_period,
            posts.c.platform,
            posts.c.author_name,
            posts.c.author_id,
        )
        .join_from(problem_posts, posts, posts.c.id == pp.post_id)
        .where(pp.problem_id.in_(problem_ids), pp.report, pp.posted_at < end)
        .distinct()
    )
    earlier: dict[int, set[tuple[str, ...]]] = defaultdict(set)
    recent: dict[int, set[tuple[str, ...]]] = defaultdict(set)
    for problem_id, is_recent, platform, name, author_id in connection.execute(
        statement
    ):
        person = _person_key(platform, name, author_id)
        if person is not None:
            (recent if is_recent else earlier)[problem_id].add(person)
    return {pid: len(people - earlier[pid]) for pid, people in recent.items()}


def _person_key(
    platform: str, name: str | None, author_id: str | None
) -> tuple[str, ...] | None:
    """Return the key that identifies an author: platform and name, else id.

    NOTE: the problem grouping also folds full-width letters in names, so
    its count of people can be slightly lower than one made with this key.
    """
    if name and name.strip():
        return (platform, "name", name.strip().casefold())
    if author_id:
        return (platform, "id", author_id)
    return None


def critical_posts(
    connection: Connection, start: datetime, end: datetime, limit: int
) -> tuple[CriticalPost, ...]:
    """Return up to ``limit`` posts graded critical in the period, newest first.

    A post counts when its latest grading was made in the period, is critical
    and belongs to its latest classification, a grievance or a complaint. Both
    new posts and posts raised to critical by a later grading count.
    """
    g = gradings.c
    c = classifications.c
    other = gradings.alias("other")
    latest_grading = (
        select(func.max(other.c.id)).where(other.c.post_id == g.post_id)
    ).scalar_subquery()
    statement = (
        select(
            g.post_id,
            g.created_at,
            g.level,
            c.kind,
            func.coalesce(posts.c.created_at, posts.c.collected_at).label("posted_at"),
            func.substr(posts.c.text, 1, EXCERPT_CHARS + 1).label("excerpt"),
        )
        .join_from(gradings, classifications, c.id == g.classification_id)
        .join(posts, posts.c.id == g.post_id)
        .where(
            g.id >= grading_id_floor(connection, start),
            g.created_at >= start,
            g.created_at < end,
            g.level == "critical",
            g.id == latest_grading,
            c.id == _latest_classification_id(g.post_id),
            c.kind.in_(DIGEST_KINDS),
        )
        .order_by(g.created_at.desc(), g.id.desc())
        .limit(limit)
    )
    return tuple(
        CriticalPost(
            post_id=row.post_id,
            posted_at=row.posted_at,
            graded_at=row.created_at,
            kind=row.kind,
            level=row.level,
            excerpt=row.excerpt[:EXCERPT_CHARS],
            truncated=len(row.excerpt) > EXCERPT_CHARS,
        )
        for row in connection.execute(statement)
    )


def recurrence(
    connection: Connection, bounds: Sequence[datetime]
) -> tuple[tuple[int, ...], tuple[ProblemRecurrence, ...]]:
    """Return the new incidents of all problems per week, and each active
    problem's recurrence, for the weeks between consecutive ``bounds``."""
    weeks = len(bounds) - 1
    start, end = bounds[0], bounds[-1]
    pp = problem_posts.c
    incident = incidents.c
    active_incidents = select(pp.incident_id).where(
        pp.posted_at >= start, pp.posted_at < end
    )
    week = case(
        *(
            (incident.first_seen < bound, index)
            for index, bound in enumerate(bounds[1:])
        ),
        else_=weeks - 1,
    ).label("week")
    # An incident's first_seen is the earliest posted_at of its posts, so an
    # incident that started in the weeks has a post there.
    counts = connection.execute(
        select(incident.problem_id, week, func.count())
        .where(
            incident.id.in_(active_incidents),
            incident.first_seen >= start,
            incident.first_seen < end,
        )
        .group_by(incident.problem_id, week)
    ).all()

    brand = [0] * weeks
    by_problem: dict[int, list[int]] = defaultdict(lambda: [0] * weeks)
    for problem_id, index, count in counts:
        brand[index] += count
        by_problem[problem_id][index] += count

    active_problems = select(pp.problem_id).where(
        pp.posted_at >= start, pp.posted_at < end
    )
    rows = connection.execute(
        select(problems.c.id, problems.c.label, problems.c.root_cause).where(
            problems.c.id.in_(active_problems)
        )
    ).all()
    found = [_recurrence_of(row, by_problem[row.id], brand) for row in rows]
    found.sort(key=lambda r: (-sum(r.incidents), -r.incidents[-1], r.problem_id))
    return tuple(brand), tuple(found)


def _recurrence_of(row: Any, counts: list[int], brand: list[int]) -> ProblemRecurrence:
    return ProblemRecurrence(
        problem_id=row.id,
        label=row.label,
        root_cause=row.root_cause,
        incidents=tuple(counts),
        rates=tuple(
            count / total if total else math.nan
            for count, total in zip(counts, brand, strict=True)
        ),
    )
