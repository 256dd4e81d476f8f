"""Keep the review queue's tables in step with classifications and gradings.

:func:`refresh_queue` runs inside the transaction that saves a post's
classification or grading, so the queue never shows a post's old level.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select

from items import FACTORS

from .queue_tables import SORT_KEY_LENGTH, review_queue, review_queue_labels
from .tables import classifications, gradings, posts, problem_posts
from .web_tables import corrections

# Levels in queue order. A normal level is queued only for a high-risk grievance.
QUEUE_LEVELS = ("critical", "medium", "normal")
# Posts per statement; far below the bind parameter limits of both databases.
CHUNK = 500
_EPOCH = datetime(1, 1, 1, tzinfo=UTC)
_MAX_U64 = 2**64 - 1
_MAX_RISK = 255


def is_queued(level: str, high_risk: bool) -> bool:
    """Tell whether a grading puts its post in the review queue."""
    return level in ("critical", "medium") or high_risk


def sort_key(
    level: str,
    deadline: datetime | None,
    risk: int,
    posted_at: datetime,
    post_id: int,
) -> bytes:
    """Encode the queue order as bytes that sort the same way on both databases.

    Critical comes first, then medium, then high-risk grievances. Within a
    level the earliest deadline leads, and a post without one goes last.
    Then the highest risk, the newest post and the highest id lead. Every part
    is big-endian and fixed-width, and the descending parts are inverted.
    """
    due = _MAX_U64 if deadline is None else _microseconds(deadline)
    inverted_time = _MAX_U64 - _microseconds(posted_at)
    key = (
        bytes([QUEUE_LEVELS.index(level)])
        + due.to_bytes(8, "big")
        + bytes([_MAX_RISK - max(0, min(risk, _MAX_RISK))])
        + inverted_time.to_bytes(8, "big")
        + (_MAX_U64 - post_id).to_bytes(8, "big")
    )
    assert len(key) == SORT_KEY_LENGTH
    return key


def _microseconds(moment: datetime) -> int:
    span = moment.astimezone(UTC) - _EPOCH
    return (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds


def _chunks(values: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def refresh_queue(connection: Connection, post_ids: Sequence[int]) -> None:
    """Put each post in the queue, or take it out, after its assessment changed."""
    unique = sorted(set(post_ids))
    for chunk in _chunks(unique, CHUNK):
        entries, labels = _queue_rows(connection, chunk)
        connection.execute(
            delete(review_queue_labels).where(review_queue_labels.c.post_id.in_(chunk))
        )
        connection.execute(
            delete(review_queue).where(review_queue.c.post_id.in_(chunk))
        )
        if entries:
            connection.execute(insert(review_queue), entries)
        if labels:
            connection.execute(insert(review_queue_labels), labels)


def _queue_rows(
    connection: Connection, post_ids: Sequence[int]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Build the queue and label rows of posts whose latest grading is queued."""
    latest_grading = (
        select(func.max(gradings.c.id))
        .where(gradings.c.post_id.in_(post_ids))
        .group_by(gradings.c.post_id)
    )
    latest_classification = (
        select(func.max(classifications.c.id))
        .where(classifications.c.post_id.in_(post_ids))
        .group_by(classifications.c.post_id)
    )
    g, c = gradings.c, classifications.c
    statement = (
        select(
            g.id,
            g.post_id,
            g.level,
            g.high_risk,
            g.deadline,
            *(g[name] for name in FACTORS),
            c.kind,
            c.brand,
            c.models,
            c.competitors,
            c.competitor_models,
            posts.c.source,
            posts.c.created_at,
            posts.c.collected_at,
            problem_posts.c.problem_id,
        )
        .join_from(gradings, classifications, c.id == g.classification_id)
        .join(posts, posts.c.id == g.post_id)
        .outerjoin(problem_posts, problem_posts.c.post_id == g.post_id)
        .where(g.id.in_(latest_grading), c.id.in_(latest_classification))
    )
    corrected = _corrected_values(connection, post_ids)
    entries, labels = [], []
    for row in connection.execute(statement):
        values = corrected.get(row.post_id)
        if values:
            row = _Corrected(row, values)
        if not is_queued(row.level, row.high_risk):
            continue
        entry = _entry(row)
        entries.append(entry)
        labels.extend(_labels(row, entry["sort_key"]))
    return entries, labels


def _corrected_values(
    connection: Connection, post_ids: Sequence[int]
) -> dict[int, dict[str, str]]:
    """Return the latest analyst's kind and level of each post that has one."""
    latest = (
        select(func.max(corrections.c.id))
        .where(corrections.c.post_id.in_(post_ids))
        .group_by(corrections.c.post_id, corrections.c.field)
    )
    statement = select(
        corrections.c.post_id, corrections.c.field, corrections.c.new_value
    ).where(corrections.c.id.in_(latest))
    found: dict[int, dict[str, str]] = {}
    for post_id, field, value in connection.execute(statement):
        found.setdefault(post_id, {})[field] = value
    return found


class _Corrected:
    """A queue row with an analyst's kind or level in place of the model's.

    The deadline stays the grading's.
    """

    def __init__(self, row: Any, values: dict[str, str]) -> None:
        self._row = row
        self._values = values
        self._mapping = row._mapping

    def __getattr__(self, name: str) -> Any:
        if name in self._values:
            return self._values[name]
        return getattr(self._row, name)


def _entry(row: Any) -> dict[str, Any]:
    risk = sum(row._mapping[name] for name in FACTORS)
    posted_at = row.created_at or row.collected_at
    return {
        "post_id": row.post_id,
        "sort_key": sort_key(row.level, row.deadline, risk, posted_at, row.post_id),
        "grading_id": row.id,
        "level": row.level,
        "kind": row.kind,
        "source": row.source,
        "problem_id": row.problem_id,
        "risk": risk,
        "high_risk": row.high_risk,
        "posted_at": posted_at,
        "deadline": row.deadline,
    }


def _labels(row: Any, key: bytes) -> list[dict[str, Any]]:
    brands = [row.brand, *(row.competitors or ())]
    models = [*(row.models or ()), *(row.competitor_models or ())]
    found = {
        (facet, value)
        for facet, values in (("brand", brands), ("model", models))
        for value in values
        if isinstance(value, str) and value
    }
    return [
        {"facet": facet, "value": value, "sort_key": key, "post_id": row.post_id}
        for facet, value in sorted(found)
    ]
