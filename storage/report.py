"""The figures of the report page, week by week, from the digests' queries.

The recurrence rate, the new grievances and complaints by root cause and the
time to acknowledge follow the definitions of :mod:`storage.digests` and
:mod:`storage.digest_alerts`. The report adds how the new grievances and
complaints of each week were handled against their deadlines:

- A post counts in the week of its first grading, at the level and with the
  deadline of its latest grading. Posts without a deadline are left out.
- It was handled in time when its review (``post_reviews``) is closed with
  the resolution ``handled`` and ``closed_at`` is at or before the deadline,
  and handled late when closed so after the deadline.
- Posts closed as ``false_alarm`` or ``duplicate`` need no response and
  are left out of the share. Posts closed as ``no_action`` count
  as not handled.
- Posts still open (no review row, or one that is not closed) whose deadline
  is after ``now`` are not due yet and are left out of the share. Those past
  their deadline count as not handled.

The share handled in time is handled in time divided by the posts that count,
NaN when none do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select

from items import LEVELS

from .digest_alerts import has_alert_figure_columns, read_alert_figures
from .digests import (
    NewCounts,
    ProblemRecurrence,
    count_new,
    new_post_rows,
    read_transaction,
    recurrence,
    week_bounds,
)
from .web_tables import post_reviews

if TYPE_CHECKING:
    from .store import Store

# Resolutions of posts that need no response.
NOT_COUNTED_RESOLUTIONS = ("false_alarm", "duplicate")


@dataclass(slots=True)
class DeadlineFigures:
    """The handling of one week's new grievances and complaints of one level.

    ``due`` counts the posts with a deadline. The other counts split them:
    ``in_time`` and ``late`` were closed as handled, ``not_counted`` were
    closed as a false alarm or a duplicate, ``closed_other`` were closed
    with no action, ``overdue`` are open past the deadline and ``not_due``
    are open before it.
    """

    due: int = 0
    in_time: int = 0
    late: int = 0
    not_counted: int = 0
    closed_other: int = 0
    overdue: int = 0
    not_due: int = 0

    @property
    def counted(self) -> int:
        """Return the posts that the share is taken over."""
        return self.due - self.not_counted - self.not_due

    @property
    def share(self) -> float:
        """Return the share handled in time, NaN when no post counts."""
        return self.in_time / self.counted if self.counted else math.nan


@dataclass(frozen=True, slots=True)
class ReportFigures:
    """The report's figures for the ``RECURRENCE_WEEKS`` weeks up to ``week``.

    ``weeks`` are the Mondays of those weeks, oldest first. Each sequence has
    one entry per week: ``new`` the new grievances and complaints,
    ``brand_incidents`` the new incidents of all problems, ``deadlines`` the
    deadline figures per level, ``acknowledge_hours`` per level the hours from
    each alert acknowledged that week to its acknowledgement. ``problems``
    lists the problems with a post in those weeks, most new incidents first.
    ``alerts_available`` is False when the alerts table lacks the columns the
    acknowledgement figures read.
    """

    week: date
    timezone: str
    weeks: tuple[date, ...]
    new: tuple[NewCounts, ...]
    brand_incidents: tuple[int, ...]
    problems: tuple[ProblemRecurrence, ...]
    deadlines: tuple[Mapping[str, DeadlineFigures], ...]
    acknowledge_hours: tuple[Mapping[str, tuple[float, ...]], ...]
    alerts_available: bool
    generated_at: datetime = field(compare=False)


def week_of(moment: datetime, timezone: str) -> date:
    """Return the Monday of the local week that ``moment`` falls in."""
    today = moment.astimezone(ZoneInfo(timezone)).date()
    return today - timedelta(days=today.weekday())


def read_report(
    source: Store | Engine, week: date, *, timezone: str, now: datetime
) -> ReportFigures:
    """Read the report's figures for the weeks up to the one starting on ``week``.

    ``now`` decides which open posts are past their deadline. Raises
    ValueError when ``week`` is not a Monday.
    """
    weeks, bounds = week_bounds(week, timezone)
    with read_transaction(source) as connection:
        new = count_new(connection, bounds)
        brand, problems = recurrence(connection, bounds)
        deadlines = deadline_figures(connection, bounds, now)
        available = has_alert_figure_columns(connection)
        hours = tuple(
            read_alert_figures(connection, start, end, now).acknowledge_hours
            for start, end in zip(bounds, bounds[1:], strict=False)
        )
    return ReportFigures(
        week=week,
        timezone=timezone,
        weeks=weeks,
        new=tuple(new),
        brand_incidents=brand,
        problems=problems,
        deadlines=deadlines,
        acknowledge_hours=hours,
        alerts_available=available,
        generated_at=now,
    )


def deadline_figures(
    connection: Connection, bounds: list[datetime], now: datetime
) -> tuple[dict[str, DeadlineFigures], ...]:
    """Count per period between ``bounds`` and per level how the new
    grievances and complaints were handled against their deadlines."""
    new = new_post_rows(connection, bounds[0], bounds[-1])
    review = post_reviews.c
    statement = (
        select(
            new.c.first_graded_at,
            new.c.level,
            new.c.deadline,
            review.status,
            review.resolution,
            review.closed_at,
        )
        .join_from(new, post_reviews, review.post_id == new.c.post_id, isouter=True)
        .where(new.c.deadline.is_not(None))
    )
    periods = tuple({level: DeadlineFigures() for level in LEVELS} for _ in bounds[1:])
    for row in connection.execute(statement):
        index = _period_of(row.first_graded_at, bounds)
        if index is None or row.level not in LEVELS:
            continue
        _count(periods[index][row.level], row, now)
    return periods


def _period_of(moment: datetime, bounds: list[datetime]) -> int | None:
    for index, end in enumerate(bounds[1:]):
        if bounds[index] <= moment < end:
            return index
    return None


def _count(figures: DeadlineFigures, row, now: datetime) -> None:
    figures.due += 1
    if row.status == "closed":
        if row.resolution in NOT_COUNTED_RESOLUTIONS:
            figures.not_counted += 1
        elif row.resolution != "handled" or row.closed_at is None:
            figures.closed_other += 1
        elif row.closed_at <= row.deadline:
            figures.in_time += 1
        else:
            figures.late += 1
    elif row.deadline > now:
        figures.not_due += 1
    else:
        figures.overdue += 1
