"""The review queue's query, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import random
from datetime import datetime, timedelta

import pytest
from graded_posts import T0, add_graded_post, make_assessment, make_grading, regrade
from sqlalchemy import insert, inspect, select

from items import FACTORS, Assessment, FactorScore, Relevance
from storage import Store
from storage import queue as storage_queue
from storage.engine import downgrade
from storage.queue import SNIPPET_LENGTH, QueueFilter, ReviewQueue
from storage.rows import GroupingChanges, PostAssignment
from storage.search import parse_query
from storage.tables import incidents, problems
from storage.web_tables import post_reviews


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


def assessment(
    kind: str = "complaint",
    level: str | None = "medium",
    *,
    deadline: datetime | None = T0 + timedelta(hours=24),
    scores: tuple[int, int, int, int] = (2, 2, 1, 0),
    high_risk: bool = False,
    brand: str | None = "启程汽车",
    models: tuple[str, ...] = ("QC7",),
    competitors: tuple[str, ...] = (),
) -> Assessment:
    base = make_assessment(kind, level, deadline)
    grading = None
    if level is not None:
        grading = dataclasses.replace(
            base.grading,
            factors=tuple(
                FactorScore(name, score)
                for name, score in zip(FACTORS, scores, strict=True)
            ),
            high_risk=high_risk,
        )
    relevance = Relevance(
        relevant=True, brand=brand, models=models, competitors=competitors
    )
    return dataclasses.replace(base, relevance=relevance, grading=grading)


def add_post(
    store: Store,
    external_id: str,
    graded: Assessment,
    *,
    text: str = "QC7 刹车异响，已投诉12315",
    source: str = "weibo-rss",
    created_at: datetime | None = T0,
    problem_id: int | None = None,
) -> int:
    """Store a post with one assessment, and its problem when ``problem_id`` is set."""
    post_id = add_graded_post(
        store, external_id, level=None, text=text, source=source, created_at=created_at
    )
    grouping = None
    if problem_id is not None:
        add_problem(store, problem_id)
        grouping = GroupingChanges(
            state_version=1,
            assignments=(
                PostAssignment(post_id, problem_id, problem_id, True, "new", T0),
            ),
        )
    store.save_assessments([post_id], [graded], grouping=grouping)
    return post_id


def add_problem(store: Store, problem_id: int) -> None:
    """Insert a problem and its one incident, unless they exist."""
    with store.engine.begin() as connection:
        if connection.execute(
            select(problems.c.id).where(problems.c.id == problem_id)
        ).first():
            return
        common = {"first_seen": T0, "last_seen": T0, "state_version": 1}
        connection.execute(
            insert(problems).values(
                id=problem_id,
                label=f"问题{problem_id}",
                models={},
                posts=1,
                reports=1,
                incidents=1,
                reporters=1,
                profile={},
                updated_at=T0,
                **common,
            )
        )
        connection.execute(
            insert(incidents).values(
                id=problem_id,
                problem_id=problem_id,
                posts=1,
                reports=1,
                authors=1,
                reporters=1,
                signatures=[],
                updated_at=T0,
                **common,
            )
        )


def set_review(
    store: Store, post_id: int, status: str, assignee: str | None = None
) -> None:
    with store.engine.begin() as connection:
        connection.execute(
            insert(post_reviews).values(
                post_id=post_id, status=status, assignee=assignee, updated_at=T0
            )
        )


def ids_of(queue: ReviewQueue, queue_filter: QueueFilter | None = None) -> list[int]:
    return [row.post_id for row in queue.page(100, queue_filter)]


def test_order_risk_then_high_risk_grievances(store: Store, queue: ReviewQueue) -> None:
    low = add_post(store, "1", assessment(scores=(1, 1, 1, 0)))
    high = add_post(store, "2", assessment(scores=(3, 3, 2, 0)))
    risky = add_post(
        store, "3", assessment("grievance", "normal", high_risk=True, deadline=T0)
    )
    add_post(store, "4", assessment("grievance", "normal", high_risk=False))

    rows = queue.page(10)

    assert [row.post_id for row in rows] == [high, low, risky]
    assert [row.risk for row in rows] == [8, 3, 5]
    assert rows[2].high_risk is True
    assert rows[2].level == "normal"


def test_filter_brand_or_competitor(store: Store, queue: ReviewQueue) -> None:
    own = add_post(store, "1", assessment())
    rival = add_post(store, "2", assessment(brand=None, competitors=("蔚来",)))
    both = add_post(store, "3", assessment(competitors=("蔚来", "小鹏")))

    assert ids_of(queue, QueueFilter(brand="启程汽车")) == [both, own]
    assert ids_of(queue, QueueFilter(brand="蔚来")) == [both, rival]
    assert ids_of(queue, QueueFilter(brand="小鹏")) == [both]
    assert ids_of(queue, QueueFilter(brand="理想")) == []


def test_filter_model(store: Store, queue: ReviewQueue) -> None:
    qc7 = add_post(store, "1", assessment(models=("QC7",)))
    qc5 = add_post(store, "2", assessment(models=("QC5", "QC7")))
    add_post(store, "3", assessment(models=()))

    assert ids_of(queue, QueueFilter(model="QC7")) == [qc5, qc7]
    assert ids_of(queue, QueueFilter(model="QC5")) == [qc5]
    assert ids_of(queue, QueueFilter(model="QC5", brand="启程汽车")) == [qc5]
    assert ids_of(queue, QueueFilter(model="QC5", brand="蔚来")) == []


def test_filter_problem(store: Store, queue: ReviewQueue) -> None:
    first = add_post(store, "1", assessment(), problem_id=7)
    add_post(store, "2", assessment(), problem_id=8)
    add_post(store, "3", assessment())

    rows = queue.page(10, QueueFilter(problem_id=7))

    assert [row.post_id for row in rows] == [first]
    assert rows[0].problem_id == 7


def test_filter_date_range(store: Store, queue: ReviewQueue) -> None:
    days = [
        add_post(store, str(day), assessment(), created_at=T0 + timedelta(days=day))
        for day in range(4)
    ]
    day_range = QueueFilter(
        posted_from=T0 + timedelta(days=1), posted_until=T0 + timedelta(days=3)
    )

    assert ids_of(queue, day_range) == [days[2], days[1]]
    assert ids_of(queue, QueueFilter(posted_until=T0 + timedelta(days=1))) == [days[0]]


@pytest.fixture(params=["read matches", "test each row"])
def plan(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with each plan of the search and review filters.

    With no threshold, every search or review filter that matches anything
    walks the queue and tests each row.
    """
    if request.param == "test each row":
        monkeypatch.setattr(storage_queue, "MIN_SET_THRESHOLD", 0)
        monkeypatch.setattr(storage_queue, "REVIEW_PROBE_COST", 0)
        monkeypatch.setattr(
            storage_queue, "SEARCH_PROBE_COST", {"sqlite": 0, "postgresql": 0}
        )
    return request.param


def test_filter_review_status_and_assignee(
    store: Store, queue: ReviewQueue, plan: str
) -> None:
    untouched = add_post(store, "1", assessment(), created_at=T0)
    reopened = add_post(store, "2", assessment(), created_at=T0 - timedelta(hours=1))
    assigned = add_post(store, "3", assessment(), created_at=T0 - timedelta(hours=2))
    closed = add_post(store, "4", assessment(), created_at=T0 - timedelta(hours=3))
    set_review(store, reopened, "open")
    set_review(store, assigned, "assigned", "wang")
    set_review(store, closed, "closed", "li")

    assert ids_of(queue, QueueFilter(status="open")) == [untouched, reopened]
    assert ids_of(queue, QueueFilter(status="assigned")) == [assigned]
    assert ids_of(queue, QueueFilter(status="closed")) == [closed]
    assert ids_of(queue, QueueFilter(assignee="wang")) == [assigned]
    assert ids_of(queue, QueueFilter(assignee="li", status="assigned")) == []
    assert ids_of(queue, QueueFilter(assignee="li", status="closed")) == [closed]
    assert ids_of(queue, QueueFilter(assignee="nobody")) == []
    rows = queue.page(10)
    assert [(row.status, row.assignee) for row in rows] == [
        ("open", None),
        ("open", None),
        ("assigned", "wang"),
        ("closed", "li"),
    ]


def test_filter_search(store: Store, queue: ReviewQueue) -> None:
    failing = add_post(store, "1", assessment(), text="QC7 刹车失灵，差点追尾")
    add_post(store, "2", assessment(), text="车机死机")
    add_post(store, "3", assessment("praise", None), text="刹车失灵修好了，点赞")

    assert ids_of(queue, QueueFilter(search=parse_query("刹车"))) == [failing]
    assert ids_of(queue, QueueFilter(search=parse_query("死机 刹车"))) == []


INJECTIONS = [
    "' OR '1'='1",
    "启程汽车'; DROP TABLE review_queue; --",
    '" OR 1=1 --',
    "%",
    "\\",
]


@pytest.mark.parametrize("value", INJECTIONS)
def test_filter_values_bound_not_spliced(
    store: Store, queue: ReviewQueue, value: str
) -> None:
    kept = add_post(store, "1", assessment())

    for queue_filter in (
        QueueFilter(brand=value),
        QueueFilter(model=value),
        QueueFilter(source=value),
        QueueFilter(assignee=value),
        QueueFilter(kind=value),
    ):
        assert ids_of(queue, queue_filter) == []
    assert ids_of(queue, QueueFilter(search=parse_query(value + " 追尾"))) == []
    assert ids_of(queue) == [kept]


def test_pages_across_ties_with_filters(store: Store, queue: ReviewQueue) -> None:
    chooser = random.Random(11)
    for i in range(40):
        add_post(
            store,
            str(i),
            assessment(
                chooser.choice(["medium", "critical"]),
                deadline=chooser.choice([None, T0]),
                scores=chooser.choice([(1, 1, 1, 1), (2, 2, 2, 2)]),
                models=chooser.choice([("QC7",), ("QC5",)]),
            ),
            text=chooser.choice(["刹车失灵", "车机死机"]),
            created_at=chooser.choice([T0, T0 - timedelta(hours=1)]),
        )

    for queue_filter in (
        None,
        QueueFilter(model="QC7"),
        QueueFilter(search=parse_query("刹车")),
        QueueFilter(model="QC5", search=parse_query("死机"), level="critical"),
    ):
        whole = ids_of(queue, queue_filter)
        for size in (1, 3, 7):
            assert read_all(queue, size, queue_filter) == whole, (queue_filter, size)
    assert len(ids_of(queue)) == 40


def test_regrade_enters_and_leaves_queue(store: Store, queue: ReviewQueue) -> None:
    post_id = add_post(store, "1", assessment("grievance", "normal"))
    assert ids_of(queue) == []

    risky = dataclasses.replace(make_grading("normal", None), high_risk=True)
    store.save_regradings([(post_id, risky)], done=[post_id])
    assert ids_of(queue) == [post_id]

    store.save_regradings([(post_id, make_grading("normal", None))], done=[post_id])
    assert ids_of(queue) == []


def test_reclassified_post_enters_queue(store: Store, queue: ReviewQueue) -> None:
    post_id = add_post(store, "1", assessment("praise", None))
    assert ids_of(queue) == []

    store.save_assessments([post_id], [assessment("complaint", "critical")])

    [row] = queue.page(10)
    assert row.post_id == post_id
    assert row.level == "critical"


def test_migration_fills_queue_and_search(database_url: str) -> None:
    with Store(database_url) as store:
        store.migrate()
        critical = add_post(store, "1", assessment(level="critical"), text="刹车失灵")
        add_post(store, "2", assessment(level="normal"), text="刹车失灵")
        labelled = add_post(store, "3", assessment(competitors=("蔚来",)), problem_id=3)
        downgrade(store.engine, "0012")
        with store.engine.connect() as connection:
            assert not inspect(connection).has_table("review_queue")

        store.migrate()

        queue = ReviewQueue(store.engine)
        assert ids_of(queue) == [critical, labelled]
        assert ids_of(queue, QueueFilter(search=parse_query("失灵"))) == [critical]
        assert ids_of(queue, QueueFilter(brand="蔚来", problem_id=3)) == [labelled]


def test_search_plans_agree(store: Store, queue: ReviewQueue, plan: str) -> None:
    texts = ["刹车失灵", "车机死机", "刹车异响", "QC7 刹车失灵"]
    ids = [
        add_post(
            store,
            str(i),
            assessment(),
            text=texts[i % 4],
            created_at=T0 - timedelta(minutes=i),
        )
        for i in range(12)
    ]
    failing = [post_id for i, post_id in enumerate(ids) if "失灵" in texts[i % 4]]

    search = QueueFilter(search=parse_query("刹车失灵"))
    assert ids_of(queue, search) == failing
    assert read_all(queue, 2, search) == failing
    assert ids_of(queue, QueueFilter(search=parse_query("追尾"))) == []
    assert ids_of(queue, QueueFilter(search=parse_query("qc7"), model="QC7")) == [
        post_id for i, post_id in enumerate(ids) if i % 4 == 3
    ]
