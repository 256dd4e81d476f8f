"""The review queue: posts graded medium or critical, and high-risk grievances.

The rows come from the ``review_queue`` table, which the store keeps with
each classification and grading (:mod:`storage.queue_index`). Its
``sort_key`` encodes the order, so a page is an index range read from the
last key shown (a keyset), and a late page costs no more than the first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    and_,
    any_,
    bindparam,
    exists,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY

from .queue_index import QUEUE_LEVELS, sort_key
from .queue_tables import review_queue, review_queue_labels
from .search import SearchQuery, matches_row, matching_posts
from .tables import posts
from .web_tables import REVIEW_STATUSES, post_reviews

__all__ = ["QUEUE_LEVELS", "QueueFilter", "QueueRow", "ReviewQueue", "sort_key"]

# Characters of post text that a queue row carries.
SNIPPET_LENGTH = 80
# How many times more a search costs per post tested one by one in queue order
# than per match read in bulk. Estimates from bench/queue_pages.py on a
# million posts: about 40 µs against 1 µs on SQLite (FTS5), and 10 µs
# against 4 µs on PostgreSQL (GIN with phrase recheck).
SEARCH_PROBE_COST = {"sqlite": 40, "postgresql": 3}
# The same ratio for a review status or assignee, an index probe either way.
REVIEW_PROBE_COST = 2
# Below this many matches a search or review filter always reads them all.
MIN_SET_THRESHOLD = 1000


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """The conditions that narrow the queue. None matches anything.

    ``brand`` matches the monitored brand or a competitor named by the post,
    ``model`` any car model it names. ``posted_from`` and ``posted_until``
    bound the post's time (from inclusive, until exclusive). ``status`` is a
    review status; a post without a review row is open. ``search`` is a
    parsed full-text query (:func:`storage.search.parse_query`).
    """

    level: str | None = None
    kind: str | None = None
    source: str | None = None
    brand: str | None = None
    model: str | None = None
    problem_id: int | None = None
    posted_from: datetime | None = None
    posted_until: datetime | None = None
    status: str | None = None
    assignee: str | None = None
    search: SearchQuery | None = None


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One post in the queue.

    ``snippet`` is the first :data:`SNIPPET_LENGTH` characters of the text.
    ``posted_at`` is the post's time, or its collection time when the source
    gave none. ``deadline`` is None when the grading set no response time.
    ``risk`` is the sum of the four factor scores. ``status`` and
    ``assignee`` come from the post's review, open and None without one.
    ``key`` is the row's position in the queue order, for the next page.
    """

    post_id: int
    level: str
    kind: str
    snippet: str
    author_name: str | None
    source: str
    platform: str
    posted_at: datetime
    deadline: datetime | None
    risk: int
    high_risk: bool
    problem_id: int | None
    status: str
    assignee: str | None
    key: bytes


class ReviewQueue:
    """Reads the review queue from a Store's engine.

    The order is critical, then medium, then high-risk grievances. Within a
    level the earliest deadline comes first, so overdue posts lead and posts
    without a deadline go last. Then the highest risk (the sum of the four
    factor scores) and the newest post lead.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def page(
        self,
        limit: int,
        queue_filter: QueueFilter | None = None,
        after: bytes | None = None,
    ) -> list[QueueRow]:
        """Return up to ``limit`` rows that follow the key ``after`` in queue order."""
        queue_filter = queue_filter or QueueFilter()
        q = review_queue.c
        page_keys = select(q.post_id, q.sort_key).select_from(review_queue)
        # A label filter reads its posts in queue order from the label's
        # primary key, so that the label's index drives the page.
        order_key = q.sort_key
        for facet, value in (
            ("brand", queue_filter.brand),
            ("model", queue_filter.model),
        ):
            if value is None:
                continue
            label = review_queue_labels.alias(f"{facet}_label")
            page_keys = page_keys.join(
                label,
                and_(
                    label.c.facet == facet,
                    label.c.value == value,
                    label.c.sort_key == q.sort_key,
                ),
            )
            if order_key is q.sort_key:
                order_key = label.c.sort_key
        page_keys = page_keys.where(*_conditions(queue_filter))
        if after is not None:
            # Both keys, because PostgreSQL carries equalities between
            # columns over to constants but not ranges.
            page_keys = page_keys.where(order_key > after, q.sort_key > after)
        with self.engine.connect() as connection:
            reviewed = _review_conditions(connection, queue_filter, limit)
            if reviewed is None:
                return []
            page_keys = page_keys.where(*reviewed)
            if queue_filter.search is not None:
                matched = _search_condition(connection, queue_filter.search, limit)
                if matched is None:
                    return []
                page_keys = page_keys.where(matched)
            rows = connection.execute(_page_rows(page_keys, order_key, limit)).all()
        return [_queue_row(row) for row in rows]


def _page_rows(page_keys: Any, order_key: Any, limit: int) -> Any:
    """Join the keys of one page with their posts and reviews."""
    q = review_queue.c
    keys = page_keys.order_by(order_key).limit(limit).subquery("page_keys")
    return (
        select(
            q.post_id,
            q.level,
            q.kind,
            func.substr(posts.c.text, 1, SNIPPET_LENGTH).label("snippet"),
            posts.c.author_name,
            q.source,
            posts.c.platform,
            q.posted_at,
            q.deadline,
            q.risk,
            q.high_risk,
            q.problem_id,
            post_reviews.c.status,
            post_reviews.c.assignee,
            q.sort_key,
        )
        .select_from(keys)
        .join(review_queue, q.post_id == keys.c.post_id)
        .join(posts, posts.c.id == keys.c.post_id)
        .outerjoin(post_reviews, post_reviews.c.post_id == keys.c.post_id)
        .order_by(keys.c.sort_key)
    )


def _search_condition(
    connection: Connection, query: SearchQuery, limit: int
) -> Any | None:
    """Return the condition that keeps the posts matching ``query``, or None
    when no post matches.

    A search can run in two ways. Reading every match and sorting them costs in
    proportion to the matches. Walking the queue in order and testing each
    post costs in proportion to the posts walked past, about ``limit``
    divided by the share of posts that match. The matches are counted up to
    the number where both cost the same, and the cheaper plan is taken.
    """
    dialect = connection.dialect.name
    threshold = _threshold(connection, limit, SEARCH_PROBE_COST[dialect])
    matching = matching_posts(dialect, query).subquery("matching")
    first = select(matching.c.post_id).limit(threshold + 1)
    if dialect == "sqlite":
        found = _count(connection, first)
    else:
        ids = list(connection.execute(first).scalars())
        found = len(ids)
    if found == 0:
        return None
    if found > threshold:
        return matches_row(dialect, query, "review_queue.post_id")
    if dialect == "sqlite":
        # SQLite reads an IN subquery once into a temporary index.
        return review_queue.c.post_id.in_(matching_posts(dialect, query))
    # The ids themselves, so that PostgreSQL plans for their true number
    # instead of its estimate of a phrase query's matches.
    return review_queue.c.post_id == any_(
        bindparam("matched_ids", ids, type_=ARRAY(BigInteger))
    )


def _threshold(connection: Connection, limit: int, probe_cost: int) -> int:
    """Return the number of matches above which testing row by row is cheaper."""
    posts_stored = connection.execute(select(func.max(posts.c.id))).scalar() or 0
    return max(MIN_SET_THRESHOLD, math.isqrt(posts_stored * limit * probe_cost))


def _count(connection: Connection, statement: Any) -> int:
    return connection.execute(
        select(func.count()).select_from(statement.subquery())
    ).scalar_one()


def _conditions(queue_filter: QueueFilter) -> list[Any]:
    q = review_queue.c
    conditions = []
    for column, value in (
        (q.level, queue_filter.level),
        (q.kind, queue_filter.kind),
        (q.source, queue_filter.source),
        (q.problem_id, queue_filter.problem_id),
    ):
        if value is not None:
            conditions.append(column == value)
    if queue_filter.posted_from is not None:
        conditions.append(q.posted_at >= queue_filter.posted_from)
    if queue_filter.posted_until is not None:
        conditions.append(q.posted_at < queue_filter.posted_until)
    return conditions


def _review_conditions(
    connection: Connection, queue_filter: QueueFilter, limit: int
) -> list[Any] | None:
    """Build the conditions of the review status and assignee filters.

    A post without a review row is open.

    Returns None when no review matches, so that the page is empty. Open
    posts are most of the queue, so each row is tested. Assigned or closed
    posts and one user's posts are read through the reviews' indexes when
    they are few, and tested row by row when they are many, as a search is.
    """
    review = post_reviews.c
    of_post = review.post_id == review_queue.c.post_id
    conditions = []
    wanted = []
    status = queue_filter.status
    if status is not None and status not in REVIEW_STATUSES:
        raise ValueError(f"unknown review status {status!r}")
    if queue_filter.assignee is not None:
        # An assigned post has a review row, so its status is in that row.
        wanted.append(review.assignee == queue_filter.assignee)
        if status is not None:
            wanted.append(review.status == status)
    elif status == "open":
        conditions.append(~exists().where(of_post, review.status != "open"))
    elif status is not None:
        wanted.append(review.status == status)
    if not wanted:
        return conditions

    reviewed = select(review.post_id).where(*wanted)
    threshold = _threshold(connection, limit, REVIEW_PROBE_COST)
    found = _count(connection, reviewed.limit(threshold + 1))
    if found == 0:
        return None
    if found > threshold:
        conditions.append(exists().where(of_post, *wanted))
    else:
        conditions.append(review_queue.c.post_id.in_(reviewed))
    return conditions


def _queue_row(row: Any) -> QueueRow:
    return QueueRow(
        post_id=row.post_id,
        level=row.level,
        kind=row.kind,
        snippet=row.snippet,
        author_name=row.author_name,
        source=row.source,
        platform=row.platform,
        posted_at=row.posted_at,
        deadline=row.deadline,
        risk=row.risk,
        high_risk=row.high_risk,
        problem_id=row.problem_id,
        status=row.status or "open",
        assignee=row.assignee,
        key=bytes(row.sort_key),
    )
