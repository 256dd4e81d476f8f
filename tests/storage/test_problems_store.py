"""Problems and incidents in the store, on a SQLite file and on PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, func, inspect, select, update
from sqlalchemy.exc import IntegrityError

import config
from items import Assessment, Author, Classification, Item, Relevance
from nlp.normalize import normalize
from nlp.segment import Segmenter
from signals.problems import STATE_VERSION, Assignment, Problem, ProblemGrouper
from storage import Store, create_store_engine, rows
from storage.engine import downgrade, upgrade
from storage.rows import GroupingChanges, PostAssignment
from storage.search import include_name
from storage.tables import (
    classifications,
    incident_authors,
    incidents,
    metadata,
    problem_posts,
    problems,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)

ORIGINAL = "启程QC7提车两周，刹车偶发失灵，4S店说正常"
SAME_HERE = "同款问题！//@车主A:" + ORIGINAL
AMPLIFIED = "转发微博 //@用户B:同款问题！//@车主A:" + ORIGINAL
CHAIN = [(ORIGINAL, "车主A"), (SAME_HERE, "用户B"), (AMPLIFIED, "用户C")]
OTHER_FAULT = "启程QC7车机黑屏三次了，4S店让等OTA"


@pytest.fixture(scope="module")
def segmenter() -> Segmenter:
    return Segmenter.for_brand(config.load(PROJECT_ROOT / "config.yaml").brand)


class Posts:
    """Stores posts and groups them as the job does: in one save per batch."""

    def __init__(self, store: Store, segmenter: Segmenter) -> None:
        self.store = store
        self.grouper = ProblemGrouper(segmenter)
        self.count = 0

    def item(self, text: str, author: str, posted: datetime) -> Item:
        self.count += 1
        return Item(
            source="weibo-rss",
            platform="weibo",
            external_id=f"p{self.count}",
            text=text,
            collected_at=posted,
            created_at=posted,
            author=Author(name=author),
        )

    def save(
        self, texts: list[tuple[str, str]], posted: datetime = NOW
    ) -> list[Assignment | None]:
        """Store, assess and group posts of (text, author) in one batch."""
        items = [self.item(text, author, posted) for text, author in texts]
        post_ids = self.store.add_items(items)
        assessments = [assessed(text) for text, _ in texts]
        assigned = [
            self.grouper.assign(item, assessment)
            for item, assessment in zip(items, assessments, strict=True)
        ]
        grouping = changes(self.grouper, post_ids, assigned)
        self.store.save_assessments(post_ids, assessments, grouping=grouping)
        return assigned


def assessed(text: str, kind: str = "grievance") -> Assessment:
    return Assessment(
        normalized=normalize(text),
        relevance=Relevance(True, "启程汽车", ("QC7",)),
        classification=Classification(kind, 0.8, root_cause="product"),
    )


def changes(
    grouper: ProblemGrouper,
    post_ids: list[int | None],
    assigned: list[Assignment | None],
) -> GroupingChanges:
    pairs = [
        (post_id, a)
        for post_id, a in zip(post_ids, assigned, strict=True)
        if a is not None and a.matched_by != "known"
    ]
    problem_ids = dict.fromkeys(a.problem_id for _, a in pairs)
    incident_ids = dict.fromkeys(a.incident_id for _, a in pairs)
    return GroupingChanges(
        state_version=STATE_VERSION,
        assignments=tuple(
            PostAssignment(
                post_id,
                a.problem_id,
                a.incident_id,
                a.report,
                a.matched_by,
                a.posted_at,
                a.people,
            )
            for post_id, a in pairs
        ),
        problems=tuple(problem_data(grouper.problem(i)) for i in problem_ids),
        incidents=tuple(grouper.incident(i).to_dict() for i in incident_ids),
    )


def problem_data(problem: Problem) -> dict:
    return {
        **problem.to_dict(),
        "label": problem.label,
        "root_cause": problem.root_cause,
    }


def table_rows(store: Store, table) -> list[dict]:
    with store.engine.connect() as connection:
        return [dict(row) for row in connection.execute(select(table)).mappings()]


def count_rows(store: Store, table) -> int:
    with store.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


@pytest.fixture
def posts(store: Store, segmenter: Segmenter) -> Posts:
    return Posts(store, segmenter)


def test_repost_chain_stored_as_one_problem(store, posts):
    posts.save(CHAIN)

    [problem] = table_rows(store, problems)
    assert problem["label"] == "QC7 · 刹车失灵"
    assert problem["model"] == "QC7"
    assert problem["term"] == "刹车失灵"
    assert problem["root_cause"] == "product"
    assert problem["posts"] == 3
    assert problem["reports"] == 2
    assert problem["incidents"] == 1
    assert problem["reporters"] == 2
    assert problem["first_seen"] == NOW
    assert problem["state_version"] == STATE_VERSION
    [incident] = table_rows(store, incidents)
    assert incident["posts"] == 3
    assert incident["reports"] == 2
    assert incident["authors"] == 3
    assert incident["reporters"] == 2
    assert len(incident["signatures"]) >= 1


def test_assignments_stored_per_post(store, posts):
    posts.save(CHAIN)

    rows = sorted(table_rows(store, problem_posts), key=lambda row: row["post_id"])
    assert [row["report"] for row in rows] == [True, True, False]
    assert [row["matched_by"] for row in rows] == ["new", "incident", "incident"]
    assert {row["incident_id"] for row in rows} == {1}
    assert all(row["posted_at"] == NOW for row in rows)
    authors = table_rows(store, incident_authors)
    assert len(authors) == 3
    assert sum(row["reporter"] for row in authors) == 2


def test_load_state_empty_store(store):
    assert store.load_problem_state() is None


def test_load_state_rebuilds_grouper(store, posts, segmenter):
    posts.save(CHAIN[:2])
    posts.save([(OTHER_FAULT, "车主D")])

    state = store.load_problem_state()
    reloaded = ProblemGrouper.from_state(state, segmenter)

    assert len(reloaded.problems) == len(posts.grouper.problems) == 2
    for original in posts.grouper.problems:
        problem = reloaded.problem(original.id)
        assert problem.label == original.label
        assert problem.posts == original.posts
        assert problem.authors == original.authors
        assert problem.incident_ids == original.incident_ids
        assert problem.words == original.words
        assert problem.terms == original.terms
        assert problem.last_seen == original.last_seen
    for original in posts.grouper.incidents:
        incident = reloaded.incident(original.id)
        assert incident.posts == original.posts
        assert incident.authors == original.authors
        assert incident.reporters == original.reporters
        assert len(incident.signatures) == len(original.signatures)
        for loaded, saved in zip(incident.signatures, original.signatures, strict=True):
            assert (loaded == saved).all()


def test_reloaded_grouper_continues_incident(store, posts, segmenter):
    posts.save(CHAIN[:1])
    posts.grouper = ProblemGrouper.from_state(store.load_problem_state(), segmenter)

    [second, third] = posts.save(CHAIN[1:])

    assert second.matched_by == "incident"
    assert third.matched_by == "incident"
    [problem] = table_rows(store, problems)
    assert problem["posts"] == 3
    assert problem["reporters"] == 2
    assert problem["incidents"] == 1


def test_reloaded_grouper_knows_posts(store, posts, segmenter):
    posts.save(CHAIN[:1])
    grouper = ProblemGrouper.from_state(store.load_problem_state(), segmenter)
    item = replace(posts.item(ORIGINAL, "车主A", NOW), external_id="p1")

    assignment = grouper.assign(item, assessed(ORIGINAL))

    assert assignment.matched_by == "known"
    assert grouper.problem(assignment.problem_id).posts == 1


def test_next_ids_follow_stored_ids(store, posts, segmenter):
    posts.save(CHAIN[:1])
    posts.grouper = ProblemGrouper.from_state(store.load_problem_state(), segmenter)

    [assignment] = posts.save([(OTHER_FAULT, "车主D")])

    assert assignment.problem_id == 2
    assert assignment.incident_id == 2
    assert count_rows(store, problems) == 2


def test_reporter_flag_set_by_later_post(store, posts):
    posts.save([(ORIGINAL, "车主A")])
    posts.save([("转发微博 //@车主A:" + ORIGINAL, "用户C")])
    [problem] = table_rows(store, problems)
    assert problem["reporters"] == 1

    posts.save([("同款问题！//@车主A:" + ORIGINAL, "用户C")])

    [problem] = table_rows(store, problems)
    assert problem["reporters"] == 2
    flags = {
        row["author"]: row["reporter"] for row in table_rows(store, incident_authors)
    }
    assert len(flags) == 2
    assert all(flags.values())


def test_failed_grouping_stores_no_assessment(store, posts):
    [post_id] = store.add_items([posts.item(ORIGINAL, "车主A", NOW)])
    orphan = GroupingChanges(
        state_version=STATE_VERSION,
        assignments=(PostAssignment(post_id, 7, 7, True, "new", NOW),),
    )

    with pytest.raises(IntegrityError):
        store.save_assessments([post_id], [assessed(ORIGINAL)], grouping=orphan)

    assert count_rows(store, classifications) == 0
    assert count_rows(store, problem_posts) == 0
    assert [found for found, _ in store.unassessed_posts()] == [post_id]


def test_post_grouped_twice_rejected(store, posts):
    posts.save(CHAIN[:1])
    [problem_before] = table_rows(store, problems)
    [post] = table_rows(store, problem_posts)
    again = GroupingChanges(
        state_version=STATE_VERSION,
        assignments=(PostAssignment(post["post_id"], 1, 1, True, "new", NOW),),
        problems=(problem_data(posts.grouper.problem(1)),),
    )

    with pytest.raises(IntegrityError):
        store.save_assessments([post["post_id"]], [assessed(ORIGINAL)], grouping=again)

    assert table_rows(store, problems) == [problem_before]
    assert count_rows(store, classifications) == 1


def test_mixed_state_versions_rejected(store, posts):
    posts.save(CHAIN[:1])
    with store.engine.begin() as connection:
        connection.execute(update(incidents).values(state_version=STATE_VERSION + 1))

    with pytest.raises(ValueError, match="mix state versions"):
        store.load_problem_state()


def test_top_problems_by_recent_reports(store, posts):
    posts.save([(OTHER_FAULT, "车主D")], posted=NOW - timedelta(days=40))
    posts.save([(OTHER_FAULT, "车主E")])
    posts.save(CHAIN)

    top = store.top_problems(days=30, now=NOW + timedelta(hours=1))

    assert [problem.label for problem in top] == ["QC7 · 刹车失灵", "QC7 · 车机黑屏"]
    brakes, screen = top
    assert brakes.recent_reports == 2
    assert brakes.posts == 3
    assert brakes.reports == 2
    assert brakes.reporters == 2
    assert brakes.incidents == 1
    assert brakes.root_cause == "product"
    assert screen.recent_reports == 1
    assert screen.posts == 2
    assert screen.first_seen == NOW - timedelta(days=40)
    assert screen.last_seen == NOW


def test_top_problems_window_and_limit(store, posts):
    posts.save([(OTHER_FAULT, "车主D")], posted=NOW - timedelta(days=40))
    posts.save(CHAIN)

    assert len(store.top_problems(days=30, limit=1, now=NOW)) == 1
    assert len(store.top_problems(days=30, now=NOW)) == 1
    assert len(store.top_problems(days=60, now=NOW)) == 2
    assert store.top_problems(now=NOW + timedelta(days=31)) == []


@pytest.mark.parametrize(("days", "limit"), [(0, 10), (30, 0)])
def test_top_problems_rejects_invalid(store, days, limit):
    with pytest.raises(ValueError, match="at least 1"):
        store.top_problems(days=days, limit=limit)


def fill_old_database(engine, items: list[Item], assessments: list[Assessment]):
    """Store posts and classifications with only the columns the schema has yet."""
    with engine.begin() as connection:
        tables = MetaData()
        tables.reflect(connection, only=["posts", "classifications"])

        def insert_row(name: str, row: dict) -> int:
            table = tables.tables[name]
            values = {key: value for key, value in row.items() if key in table.c}
            return connection.execute(
                table.insert().values(values)
            ).inserted_primary_key[0]

        now = datetime.now(UTC)
        post_ids = []
        for item, assessment in zip(items, assessments, strict=True):
            post_id = insert_row("posts", rows.post_row(item, rows.post_key(item)))
            insert_row(
                "classifications", rows.classification_row(post_id, assessment, now)
            )
            post_ids.append(post_id)
    return post_ids


def test_upgrade_filled_0002_database(database_url, segmenter):
    engine = create_store_engine(database_url)
    upgrade(engine, "0002")
    old = Posts(None, segmenter)
    items = [old.item(text, author, NOW) for text, author in CHAIN]
    post_ids = fill_old_database(engine, items, [assessed(text) for text, _ in CHAIN])
    engine.dispose()
    with Store(database_url) as store:
        store.migrate()

        with store.engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"include_name": include_name}
            )
            assert compare_metadata(context, metadata) == []
        assert store.count_posts() == 3
        assert store.get_post(post_ids[0]).classification.kind == "grievance"
        assert store.load_problem_state() is None
        new = Posts(store, segmenter)
        new.count = len(CHAIN)
        new.save([(ORIGINAL + "。", "车主D")])
        assert count_rows(store, problems) == 1


def test_downgrade_to_0002_keeps_posts(store, posts):
    posts.save(CHAIN)

    downgrade(store.engine, "0002")

    with store.engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
    assert not {"problems", "incidents", "problem_posts", "incident_authors"} & tables
    assert store.count_posts() == 3
    store.migrate()
    assert store.load_problem_state() is None
