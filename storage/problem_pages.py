"""The queries behind the problem pages: the list of problems and one problem
with its incidents, posts, authors and posts per day."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, func, select, type_coerce

from .tables import (
    UTCDateTime,
    classifications,
    gradings,
    incidents,
    posts,
    problem_posts,
    problems,
)

# Characters of post text that a row of the problem page carries.
EXCERPT_CHARS = 120
# The timeline covers at most this many local days, up to the problem's last post.
TIMELINE_DAYS = 90


@dataclass(frozen=True, slots=True)
class ProblemRow:
    """One problem in the list, with its counts of all time."""

    id: int
    label: str
    root_cause: str | None
    models: Mapping[str, int]
    posts: int
    reports: int
    incidents: int
    reporters: int
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class IncidentRow:
    """One incident of a problem: a post with its copies and reposts."""

    id: int
    posts: int
    reports: int
    authors: int
    reporters: int
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class ProblemPost:
    """A post of a problem, with its latest kind and level.

    ``excerpt`` is the first :data:`EXCERPT_CHARS` characters of the text,
    and ``truncated`` is True when the text is longer. ``report`` is False
    for a repost that adds no words. ``kind`` and ``level`` are None when
    the post has no classification or grading.
    """

    post_id: int
    incident_id: int
    posted_at: datetime
    report: bool
    source: str
    platform: str
    author_name: str | None
    url: str | None
    title: str | None
    excerpt: str
    truncated: bool
    kind: str | None
    level: str | None


@dataclass(frozen=True, slots=True)
class AuthorCount:
    """An author name as stored, with the problem's posts under that name."""

    platform: str
    name: str | None
    posts: int


@dataclass(frozen=True, slots=True)
class ProblemDetail:
    """A problem with its newest incidents and posts, its authors and timeline.

    ``days`` are the local dates of the timeline, oldest first, and
    ``posts_by_day`` has one count per date. ``posts`` and ``incidents``
    hold at most the requested number of rows, newest first.
    """

    problem: ProblemRow
    incidents: tuple[IncidentRow, ...]
    posts: tuple[ProblemPost, ...]
    authors: tuple[AuthorCount, ...]
    days: tuple[date, ...]
    posts_by_day: tuple[int, ...]


class ProblemPages:
    """Reads problems for the review page from a Store's engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def count(self) -> int:
        """Return the number of stored problems."""
        with self.engine.connect() as connection:
            statement = select(func.count()).select_from(problems)
            return connection.execute(statement).scalar_one()

    def page(self, limit: int, offset: int = 0) -> list[ProblemRow]:
        """Return up to ``limit`` problems after ``offset``, last seen first."""
        statement = (
            select(problems)
            .order_by(problems.c.last_seen.desc(), problems.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        with self.engine.connect() as connection:
            return [_problem_row(row) for row in connection.execute(statement)]

    def find(self, problem_id: int) -> ProblemRow | None:
        """Return a problem, or None when there is no such problem."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(problems).where(problems.c.id == problem_id)
            ).first()
        return None if row is None else _problem_row(row)

    def detail(
        self, problem_id: int, zone: ZoneInfo, limit: int
    ) -> ProblemDetail | None:
        """Return a problem with up to ``limit`` posts, incidents and authors,
        or None when there is no such problem. Days are local to ``zone``."""
        with self.engine.connect() as connection, connection.begin():
            row = connection.execute(
                select(problems).where(problems.c.id == problem_id)
            ).first()
            if row is None:
                return None
            problem = _problem_row(row)
            days, counts = _timeline(connection, problem, zone)
            return ProblemDetail(
                problem=problem,
                incidents=_incidents(connection, problem_id, limit),
                posts=self._posts(connection, problem_id, limit),
                authors=_authors(connection, problem_id, limit),
                days=days,
                posts_by_day=counts,
            )

    def all_posts(self, problem_id: int) -> list[ProblemPost]:
        """Return every post of a problem, newest first."""
        with self.engine.connect() as connection:
            return list(self._posts(connection, problem_id, None))

    def _posts(
        self, connection: Connection, problem_id: int, limit: int | None
    ) -> tuple[ProblemPost, ...]:
        pp = problem_posts.c
        other_classification = classifications.alias("other_classification")
        other_grading = gradings.alias("other_grading")
        latest_classification = (
            select(func.max(other_classification.c.id))
            .where(other_classification.c.post_id == pp.post_id)
            .scalar_subquery()
        )
        latest_grading = (
            select(func.max(other_grading.c.id))
            .where(other_grading.c.classification_id == classifications.c.id)
            .scalar_subquery()
        )
        statement = (
            select(
                pp.post_id,
                pp.incident_id,
                type_coerce(pp.posted_at, UTCDateTime).label("posted_at"),
                pp.report,
                posts.c.source,
                posts.c.platform,
                posts.c.author_name,
                posts.c.url,
                posts.c.title,
                func.substr(posts.c.text, 1, EXCERPT_CHARS + 1).label("excerpt"),
                classifications.c.kind,
                gradings.c.level,
            )
            .join_from(problem_posts, posts, posts.c.id == pp.post_id)
            .outerjoin(classifications, classifications.c.id == latest_classification)
            .outerjoin(gradings, gradings.c.id == latest_grading)
            .where(pp.problem_id == problem_id)
            .order_by(pp.posted_at.desc(), pp.post_id.desc())
            .limit(limit)
        )
        return tuple(_problem_post(row) for row in connection.execute(statement))


def _problem_row(row: Any) -> ProblemRow:
    models = row.models if isinstance(row.models, Mapping) else {}
    return ProblemRow(
        id=row.id,
        label=row.label,
        root_cause=row.root_cause,
        models={str(name): count for name, count in models.items()},
        posts=row.posts,
        reports=row.reports,
        incidents=row.incidents,
        reporters=row.reporters,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
    )


def _problem_post(row: Any) -> ProblemPost:
    excerpt = row.excerpt or ""
    return ProblemPost(
        post_id=row.post_id,
        incident_id=row.incident_id,
        posted_at=row.posted_at,
        report=bool(row.report),
        source=row.source,
        platform=row.platform,
        author_name=row.author_name,
        url=row.url,
        title=row.title,
        excerpt=excerpt[:EXCERPT_CHARS],
        truncated=len(excerpt) > EXCERPT_CHARS,
        kind=row.kind,
        level=row.level,
    )


def _incidents(
    connection: Connection, problem_id: int, limit: int
) -> tuple[IncidentRow, ...]:
    i = incidents.c
    statement = (
        select(
            i.id, i.posts, i.reports, i.authors, i.reporters, i.first_seen, i.last_seen
        )
        .where(i.problem_id == problem_id)
        .order_by(i.last_seen.desc(), i.id.desc())
        .limit(limit)
    )
    return tuple(IncidentRow(*row) for row in connection.execute(statement))


def _authors(
    connection: Connection, problem_id: int, limit: int
) -> tuple[AuthorCount, ...]:
    count = func.count().label("posts")
    statement = (
        select(posts.c.platform, posts.c.author_name, count)
        .join_from(problem_posts, posts, posts.c.id == problem_posts.c.post_id)
        .where(problem_posts.c.problem_id == problem_id)
        .group_by(posts.c.platform, posts.c.author_name)
        .order_by(count.desc(), posts.c.platform, posts.c.author_name)
        .limit(limit)
    )
    return tuple(AuthorCount(*row) for row in connection.execute(statement))


def _timeline(
    connection: Connection, problem: ProblemRow, zone: ZoneInfo
) -> tuple[tuple[date, ...], tuple[int, ...]]:
    """Count the problem's posts per local day over the last TIMELINE_DAYS days
    up to its last post."""
    last_day = problem.last_seen.astimezone(zone).date()
    first_day = max(
        problem.first_seen.astimezone(zone).date(),
        last_day - timedelta(days=TIMELINE_DAYS - 1),
    )
    since = datetime.combine(first_day, datetime.min.time(), zone)
    pp = problem_posts.c
    statement = select(pp.posted_at).where(
        pp.problem_id == problem.id, pp.posted_at >= since
    )
    per_day = Counter(
        posted_at.astimezone(zone).date()
        for posted_at in connection.execute(statement).scalars()
    )
    span = (last_day - first_day).days + 1
    days = tuple(first_day + timedelta(days=n) for n in range(span))
    return days, tuple(per_day.get(day, 0) for day in days)
