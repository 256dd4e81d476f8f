"""The alert figures of the digests: overdue alerts and time to acknowledge.

They read three columns of ``alerts``: ``deadline`` (the response
deadline), ``status`` (open, acknowledged or closed) and ``acknowledged_at``.
A table without them (a database not yet migrated past 0009, as a reader
with its own connection may see) gives empty figures with ``available``
False.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, column, func, inspect, select, table

from items import LEVELS

from .tables import UTCDateTime

logger = logging.getLogger(__name__)

ALERT_FIGURE_COLUMNS = ("deadline", "status", "acknowledged_at")
OPEN_STATUS = "open"
OVERDUE_SAMPLE = 10

# Declared here and not in storage.tables, because older databases lack the
# last two columns and the ORM table would select them.
_alerts = table(
    "alerts",
    column("id"),
    column("post_id"),
    column("level"),
    column("status"),
    column("created_at", UTCDateTime()),
    column("deadline", UTCDateTime()),
    column("acknowledged_at", UTCDateTime()),
)


@dataclass(frozen=True, slots=True)
class OverdueAlert:
    """An open alert whose response deadline has passed."""

    alert_id: int
    post_id: int | None
    level: str
    deadline: datetime


@dataclass(frozen=True, slots=True)
class AlertFigures:
    """Overdue alerts at the time of reading, and acknowledgements in a period.

    ``overdue`` counts the open alerts past their deadline per level, and
    ``oldest_overdue`` lists up to ``OVERDUE_SAMPLE`` of them, the earliest
    deadline first. ``acknowledge_hours`` lists per level the hours from the
    creation of each alert acknowledged in the period to its acknowledgement.
    ``available`` is False when the alerts table lacks the columns, and then
    every figure is empty.
    """

    available: bool
    overdue: Mapping[str, int]
    oldest_overdue: tuple[OverdueAlert, ...]
    acknowledge_hours: Mapping[str, tuple[float, ...]]

    @classmethod
    def empty(cls, *, available: bool = False) -> AlertFigures:
        return cls(
            available=available,
            overdue=dict.fromkeys(LEVELS, 0),
            oldest_overdue=(),
            acknowledge_hours={level: () for level in LEVELS},
        )

    @property
    def overdue_total(self) -> int:
        return sum(self.overdue.values())

    @property
    def acknowledged_total(self) -> int:
        return sum(len(hours) for hours in self.acknowledge_hours.values())


def has_alert_figure_columns(connection: Connection) -> bool:
    """Return True when the alerts table has every column the figures read."""
    names = {info["name"] for info in inspect(connection).get_columns("alerts")}
    return all(name in names for name in ALERT_FIGURE_COLUMNS)


def read_alert_figures(
    connection: Connection,
    start: datetime,
    end: datetime,
    now: datetime,
    limit: int = OVERDUE_SAMPLE,
) -> AlertFigures:
    """Read the overdue alerts as of ``now`` and the acknowledgements made
    from ``start`` to ``end``.

    Returns :meth:`AlertFigures.empty` when the alerts table lacks
    ``deadline``, ``status`` or ``acknowledged_at``.
    """
    if not has_alert_figure_columns(connection):
        logger.debug("alert figures skipped reason=missing_columns")
        return AlertFigures.empty()

    a = _alerts.c
    overdue = a.status == OPEN_STATUS, a.deadline < now, a.level.in_(LEVELS)
    counts = dict.fromkeys(LEVELS, 0)
    counts.update(
        connection.execute(
            select(a.level, func.count()).where(*overdue).group_by(a.level)
        ).all()
    )
    oldest = connection.execute(
        select(a.id, a.post_id, a.level, a.deadline)
        .where(*overdue)
        .order_by(a.deadline, a.id)
        .limit(limit)
    ).all()
    return AlertFigures(
        available=True,
        overdue=counts,
        oldest_overdue=tuple(OverdueAlert(*row) for row in oldest),
        acknowledge_hours=_acknowledge_hours(connection, start, end),
    )


def _acknowledge_hours(
    connection: Connection, start: datetime, end: datetime
) -> dict[str, tuple[float, ...]]:
    a = _alerts.c
    rows = connection.execute(
        select(a.level, a.created_at, a.acknowledged_at)
        .where(
            a.acknowledged_at >= start,
            a.acknowledged_at < end,
            a.level.in_(LEVELS),
        )
        .order_by(a.acknowledged_at, a.id)
    )
    hours: dict[str, list[float]] = defaultdict(list)
    for level, created_at, acknowledged_at in rows:
        # Clocks of different writers may disagree by a little.
        seconds = max(0.0, (acknowledged_at - created_at).total_seconds())
        hours[level].append(seconds / 3600)
    return {level: tuple(hours[level]) for level in LEVELS}
