"""The review queue's query, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from graded_posts import T0, add_graded_post, regrade

from storage import Store
from storage.queue import SNIPPET_LENGTH, QueueFilter, ReviewQueue


@pytest.fixture
def queue(store: Store) -> ReviewQueue:
    return ReviewQueue(store.engine)


def read_all(queue: ReviewQueue, size: int, queue_filter=None) -> list[int]:
    """Read the whole queue page by page; return the post ids in order."""
    seen: list[int] = []
    after = None
    while True:
        rows = queue.page(size, queue_filter, after)
        seen.extend(row.post_id for row in rows)
        if len(rows) < size:
            return seen
        after = rows[-1].key


def test_order_level_deadline_newest(store: Store, queue: ReviewQueue) -> None:
    early, late = T0 + timedelta(hours=1), T0 + timedelta(hours=5)
    medium_early = add_graded_post(store, "1", level="medium", deadline=early)
    critical_none = add_graded_post(store, "2", level="critical", deadline=None)
    critical_late_old = add_graded_post(store, "3", level="critical", deadline=late)
    critical_late_new = add_graded_post(
        store, "4", level="critical", deadline=late, created_at=T0 + timedelta(hours=1)
    )
    critical_early = add_graded_post(store, "5", level="critical", deadline=early)

    rows = queue.page(10)

    assert [row.post_id for row in rows] == [
        critical_early,
        critical_late_new,
        critical_late_old,
        critical_none,
        medium_early,
    ]
    assert rows[3].deadline is None
    assert rows[0].deadline == early
    assert rows[0].posted_at == T0


def test_queue_skips_normal_and_ungraded(store: Store, queue: ReviewQueue) -> None:
    add_graded_post(store, "1", level="normal")
    add_graded_post(store, "2", level=None, kind="praise")
    kept = add_graded_post(store, "3", level="medium", kind="grievance")

    assert [row.post_id for row in queue.page(10)] == [kept]


def test_latest_grading_counts(store: Store, queue: ReviewQueue) -> None:
    raised = add_graded_post(store, "1", level="normal")
    lowered = add_graded_post(store, "2", level="critical")
    regrade(store, raised, "critical", None)
    regrade(store, lowered, "normal", None)

    rows = queue.page(10)

    assert [row.post_id for row in rows] == [raised]
    assert rows[0].level == "critical"


def test_reclassified_post_leaves_queue(store: Store, queue: ReviewQueue) -> None:
    from graded_posts import make_assessment

    post_id = add_graded_post(store, "1", level="critical")
    store.save_assessments([post_id], [make_assessment("praise", None, None)])

    assert queue.page(10) == []


def test_row_fields(store: Store, queue: ReviewQueue) -> None:
    text = "😡" * 30 + "刹车" * 100
    add_graded_post(
        store, "1", level="critical", text=text, author="王<b>", source="forum"
    )

    [row] = queue.page(10)

    assert row.snippet == text[:SNIPPET_LENGTH]
    assert row.author_name == "王<b>"
    assert row.source == "forum"
    assert row.platform == "weibo"
    assert row.kind == "complaint"


def test_missing_time_uses_collection_time(store: Store, queue: ReviewQueue) -> None:
    dated = add_graded_post(store, "1", created_at=T0)
    undated = add_graded_post(store, "2", created_at=None)

    rows = queue.page(10)

    # The undated post was collected at T0 + 5 minutes, so it is newer.
    assert [row.post_id for row in rows] == [undated, dated]
    assert rows[0].posted_at == T0 + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("queue_filter", "expected"),
    [
        (QueueFilter(level="critical"), ["critical-weibo", "critical-forum"]),
        (QueueFilter(kind="grievance"), ["medium-grievance"]),
        (QueueFilter(source="forum"), ["critical-forum"]),
        (QueueFilter(level="medium", source="forum"), []),
    ],
)
def test_filters(store: Store, queue: ReviewQueue, queue_filter, expected) -> None:
    ids = {
        "critical-weibo": add_graded_post(store, "1", level="critical"),
        "critical-forum": add_graded_post(
            store, "2", level="critical", source="forum", created_at=T0 - timedelta(1)
        ),
        "medium-grievance": add_graded_post(
            store, "3", level="medium", kind="grievance"
        ),
    }

    rows = queue.page(10, queue_filter)

    assert [row.post_id for row in rows] == [ids[name] for name in expected]


def test_pages_cover_queue_once(store: Store, queue: ReviewQueue) -> None:
    """Ties on level, deadline and time, and missing deadlines, split no page."""
    chooser = random.Random(7)
    for i in range(60):
        add_graded_post(
            store,
            str(i),
            level=chooser.choice(["medium", "critical"]),
            deadline=chooser.choice([None, T0, T0 + timedelta(hours=3)]),
            created_at=chooser.choice([None, T0, T0 - timedelta(hours=1)]),
        )
    whole = [row.post_id for row in queue.page(100)]

    for size in (1, 4, 7, 60):
        assert read_all(queue, size) == whole, size
    assert len(whole) == 60


def test_pages_with_filter(store: Store, queue: ReviewQueue) -> None:
    for i in range(9):
        add_graded_post(store, str(i), level="critical" if i % 2 else "medium")

    critical = read_all(queue, 2, QueueFilter(level="critical"))

    assert len(critical) == 4
    assert critical == [row.post_id for row in queue.page(10, QueueFilter("critical"))]
