"""The queries behind :meth:`storage.Store.status`."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, func, select

from .alert_store import count_alerts_with
from .records import SourceStatus, StatusReport
from .tables import (
    classifications,
    gradings,
    posts,
    source_runs,
    source_skips,
)

# Runs that count as the source working: a partial run stored what it read.
SUCCESS_STATUSES = ("ok", "partial")
SKIP_WINDOW = timedelta(days=7)


def read_status(connection: Connection) -> StatusReport:
    """Build the status report, which is consistent when run in one transaction."""
    kinds, levels, levels_by_kind = _assessment_counts(connection)
    return StatusReport(
        sources=_source_statuses(connection),
        posts=connection.execute(select(func.count()).select_from(posts)).scalar_one(),
        kinds=kinds,
        levels=levels,
        levels_by_kind=levels_by_kind,
        pending_alerts=count_alerts_with(connection, ("pending",)),
        sending_alerts=count_alerts_with(connection, ("sending",)),
        failed_alerts=count_alerts_with(connection, ("failed",)),
        unconfirmed_alerts=count_alerts_with(connection, ("unconfirmed",)),
    )


def _source_statuses(connection: Connection) -> tuple[SourceStatus, ...]:
    post_counts = dict(
        connection.execute(
            select(posts.c.source, func.count()).group_by(posts.c.source)
        ).all()
    )
    last_runs = {
        row.source: row
        for row in connection.execute(
            select(source_runs).where(
                source_runs.c.id.in_(
                    select(func.max(source_runs.c.id)).group_by(source_runs.c.source)
                )
            )
        )
    }
    last_errors = {
        row.source: row
        for row in connection.execute(
            select(source_runs).where(
                source_runs.c.id.in_(
                    select(func.max(source_runs.c.id))
                    .where(source_runs.c.error.is_not(None))
                    .group_by(source_runs.c.source)
                )
            )
        )
    }

    successes, failures = _run_health(connection)
    since = datetime.now(UTC) - SKIP_WINDOW
    skips = dict(
        connection.execute(
            select(source_skips.c.source, func.count())
            .where(source_skips.c.skipped_at >= since)
            .group_by(source_skips.c.source)
        ).all()
    )
    statuses = []
    for name in sorted(set(post_counts) | set(last_runs) | set(skips)):
        run = last_runs.get(name)
        failure = last_errors.get(name)
        statuses.append(
            SourceStatus(
                name=name,
                posts=post_counts.get(name, 0),
                last_started_at=None if run is None else run.started_at,
                last_finished_at=None if run is None else run.finished_at,
                last_status=None if run is None else run.status,
                last_bad=0 if run is None else run.bad,
                last_error=None if failure is None else failure.error,
                last_error_at=None if failure is None else failure.started_at,
                last_success_at=successes.get(name),
                failures_in_row=failures.get(name, 0),
                skipped_runs=skips.get(name, 0),
            )
        )
    return tuple(statuses)


def _run_health(
    connection: Connection,
) -> tuple[dict[str, datetime], dict[str, int]]:
    """Return each source's last successful finish and its failed runs since."""
    runs = source_runs.c
    succeeded = runs.status.in_(SUCCESS_STATUSES)
    successes = dict(
        connection.execute(
            select(runs.source, func.max(runs.finished_at))
            .where(succeeded)
            .group_by(runs.source)
        ).all()
    )
    earlier = source_runs.alias("earlier")
    last_success_id = (
        select(func.coalesce(func.max(earlier.c.id), 0))
        .where(earlier.c.source == runs.source, earlier.c.status.in_(SUCCESS_STATUSES))
        .scalar_subquery()
    )
    failures = dict(
        connection.execute(
            select(runs.source, func.count())
            .where(runs.status == "failed", runs.id > last_success_id)
            .group_by(runs.source)
        ).all()
    )
    return successes, failures


def _assessment_counts(
    connection: Connection,
) -> tuple[dict[str, int], dict[str, int], dict[str, dict[str, int]]]:
    latest_classifications = select(func.max(classifications.c.id)).group_by(
        classifications.c.post_id
    )
    kinds = dict(
        connection.execute(
            select(classifications.c.kind, func.count())
            .where(classifications.c.id.in_(latest_classifications))
            .group_by(classifications.c.kind)
        ).all()
    )

    # The latest grading of each latest classification, so that a post
    # reclassified as praise no longer counts at its old level.
    latest_gradings = (
        select(func.max(gradings.c.id))
        .where(gradings.c.classification_id.in_(latest_classifications))
        .group_by(gradings.c.classification_id)
    )
    level_rows = connection.execute(
        select(classifications.c.kind, gradings.c.level, func.count())
        .join_from(gradings, classifications)
        .where(gradings.c.id.in_(latest_gradings))
        .group_by(classifications.c.kind, gradings.c.level)
    ).all()

    levels: dict[str, int] = defaultdict(int)
    levels_by_kind: dict[str, dict[str, int]] = defaultdict(dict)
    for kind, level, count in level_rows:
        levels[level] += count
        levels_by_kind[kind][level] = count
    return kinds, dict(levels), dict(levels_by_kind)
