"""Store tests, run on a SQLite file and on PostgreSQL (see tests/conftest.py)."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError

from items import (
    Assessment,
    Author,
    Classification,
    Cue,
    Engagement,
    FactorScore,
    Grading,
    Item,
    NormalizedText,
    Relevance,
)
from storage import (
    AttemptOutcome,
    NewAlert,
    NewDelivery,
    NewMessage,
    Store,
    alembic_config,
    create_store_engine,
    rows,
)
from storage.engine import HEAD_REVISION, current_revision, downgrade, upgrade
from storage.search import include_name
from storage.tables import (
    classifications,
    engagement_snapshots,
    metadata,
    posts,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2025, 3, 1, 9, 30, tzinfo=SHANGHAI)


def make_item(
    external_id: str,
    *,
    source: str = "weibo-rss",
    likes: int = 0,
    reposts: int = 0,
    comments: int = 0,
    collected_at: datetime = T0,
    **fields: object,
) -> Item:
    values: dict[str, object] = {
        "platform": "weibo",
        "text": f"QC7 刹车异响，第{external_id}次去4S店了",
        "created_at": collected_at - timedelta(hours=1),
        "url": f"https://weibo.example/{external_id}",
        "raw": {"id": external_id},
    }
    values.update(fields)
    return Item(
        source=source,
        external_id=external_id,
        collected_at=collected_at,
        engagement=Engagement(likes, reposts, comments),
        **values,
    )


def make_grading(level: str = "medium") -> Grading:
    return Grading(
        factors=(
            FactorScore("customer_loss", 2, ("维修费 8000 元",)),
            FactorScore("company_fault", 1, ("售后推诿",)),
            FactorScore("public_impact", 2, ("转发 1200",)),
            FactorScore("customer_identity", 0),
        ),
        level=level,
        strategy="balanced",
        deadline=datetime(2025, 3, 2, 9, 30, tzinfo=SHANGHAI),
        reason="刹车异响多次维修未果，转发量上升",
        safety=True,
        high_risk=False,
    )


def make_assessment(kind: str = "complaint", *, graded: bool = True) -> Assessment:
    return Assessment(
        normalized=NormalizedText(text="刹车异响", truncated=True),
        relevance=Relevance(
            relevant=True,
            brand="启程汽车",
            models=("QC7", "汉"),
            competitors=("比亚迪",),
            competitor_models=("汉",),
        ),
        classification=Classification(
            kind=kind,
            confidence=0.87,
            cues=(Cue("action", "投诉"), Cue("demand", "退车")),
            demands=("退车",),
            channels=("12315",),
            root_cause="product",
            model_version="test-1",
        ),
        grading=make_grading() if graded else None,
    )


def make_alert(
    key: str, post_id: int | None, message_id: str | None = None
) -> NewAlert:
    message = NewMessage(
        reason="new",
        message_id=message_id or f"<{key}@fenghuo.localhost>",
        subject="【危机】QC7 刹车异响投诉",
        message=f"Subject: alert {key}\r\n\r\nbody\r\n",
        deliveries=(
            NewDelivery("smtp", "pr@qicheng.example"),
            NewDelivery("smtp", "exec@qicheng.example"),
        ),
    )
    return NewAlert(
        post_id=post_id,
        dedup_key=key,
        level="critical",
        kind="complaint",
        subject="【危机】QC7 刹车异响投诉",
        message=message,
    )


def alert_keys(store: Store) -> list[str]:
    return [summary.alert.dedup_key for summary in reversed(store.list_alerts())]


def count_rows(store: Store, table, **where: object) -> int:
    statement = select(func.count()).select_from(table)
    for column, value in where.items():
        statement = statement.where(table.c[column] == value)
    with store.engine.connect() as connection:
        return connection.execute(statement).scalar_one()


def add_failing_trigger(store: Store) -> None:
    """Make the database reject any engagement snapshot with 424242 likes."""
    with store.engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql(
                "CREATE TRIGGER reject_marked BEFORE INSERT ON engagement_snapshots "
                "WHEN NEW.likes = 424242 "
                "BEGIN SELECT RAISE(ABORT, 'rejected by test trigger'); END"
            )
        else:
            connection.exec_driver_sql(
                "CREATE FUNCTION reject_marked() RETURNS trigger AS $$ BEGIN "
                "IF NEW.likes = 424242 THEN "
                "RAISE EXCEPTION 'rejected by test trigger'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            connection.exec_driver_sql(
                "CREATE TRIGGER reject_marked BEFORE INSERT ON engagement_snapshots "
                "FOR EACH ROW EXECUTE FUNCTION reject_marked()"
            )


# Posts


def test_add_items_returns_new_ids(store: Store) -> None:
    ids = store.add_items([make_item("1"), make_item("2")])

    assert all(isinstance(post_id, int) for post_id in ids)
    assert ids[0] != ids[1]
    assert store.count_posts() == 2


def test_add_items_dedups_within_batch(store: Store) -> None:
    ids = store.add_items([make_item("1"), make_item("2"), make_item("1", likes=9)])

    assert ids[0] is not None
    assert ids[1] is not None
    assert ids[2] is None
    assert store.count_posts() == 2
    assert store.get_post(ids[0]).item.engagement.likes == 0


def test_add_items_dedups_across_batches(store: Store) -> None:
    first = store.add_items([make_item("1"), make_item("2")])
    second = store.add_items([make_item("2"), make_item("3"), make_item("1")])

    assert second[0] is None
    assert second[2] is None
    assert second[1] is not None
    assert second[1] not in first
    assert store.count_posts() == 3


def test_same_external_id_in_two_sources(store: Store) -> None:
    ids = store.add_items([make_item("1", source="a"), make_item("1", source="b")])

    assert None not in ids
    assert store.count_posts() == 2


def test_snapshot_added_only_on_change(store: Store) -> None:
    [post_id] = store.add_items([make_item("1", likes=5)])
    later = T0 + timedelta(minutes=15)

    store.add_items([make_item("1", likes=5, collected_at=later)])
    assert count_rows(store, engagement_snapshots, post_id=post_id) == 1
    assert store.get_post(post_id).last_seen_at == later

    store.add_items([make_item("1", likes=5, comments=2, collected_at=later)])
    assert count_rows(store, engagement_snapshots, post_id=post_id) == 2
    assert store.get_post(post_id).item.engagement == Engagement(5, 0, 2)


def test_last_seen_never_moves_back(store: Store) -> None:
    [post_id] = store.add_items([make_item("1")])

    store.add_items([make_item("1", collected_at=T0 - timedelta(days=1))])

    assert store.get_post(post_id).last_seen_at == T0


def test_add_items_empty_batch(store: Store) -> None:
    assert store.add_items([]) == []
    assert store.count_posts() == 0


def test_external_id_too_long_rejected(store: Store) -> None:
    items = [make_item("ok"), make_item("x" * 513)]

    with pytest.raises(ValueError, match="external_id longer than 512"):
        store.add_items(items, cursor=("weibo-rss", "c1"))

    assert store.count_posts() == 0
    assert store.get_cursor("weibo-rss") is None


def test_counts_beyond_bigint_clamped(store: Store) -> None:
    [post_id] = store.add_items([make_item("1", likes=2**70, reposts=-1)])

    engagement = store.get_post(post_id).item.engagement
    assert engagement.likes == 2**63 - 1
    assert engagement.reposts == 0


def test_get_post_round_trip(store: Store) -> None:
    item = make_item(
        "1",
        likes=3,
        reposts=4,
        comments=5,
        title="标题",
        lang="zh",
        author=Author(
            name="车主小王",
            id="u42",
            followers=12000,
            verified="personal",
            role="owner",
        ),
        raw={"id": "1", "nested": {"list": [1, 2.5, None, True]}, "文本": "中文"},
    )
    [post_id] = store.add_items([item])

    record = store.get_post(post_id)
    assert record.id == post_id
    assert record.item == item
    assert record.classification is None
    assert record.grading is None
    assert store.get_post(post_id + 1000) is None


# Time zones and hostile text


def test_timezone_round_trip(store: Store) -> None:
    created = datetime(2025, 1, 28, 23, 59, 59, 123456, tzinfo=SHANGHAI)
    [post_id] = store.add_items([make_item("1", created_at=created)])

    stored = store.get_post(post_id).item
    assert stored.created_at == created
    assert stored.created_at.utcoffset() == timedelta(0)
    assert stored.created_at.astimezone(SHANGHAI).hour == 23
    assert stored.collected_at == T0


def test_naive_datetime_rejected(store: Store) -> None:
    naive = datetime(2025, 1, 1, 12, 0)

    with pytest.raises(StatementError, match="timezone-aware"):
        store.add_items([make_item("1", created_at=naive)])
    assert store.count_posts() == 0


def test_large_text_stored_intact(store: Store) -> None:
    controls = "".join(chr(code) for code in range(1, 32)) + "\x7f\x85\u2028\u202e"
    big = ("刹车异响" + controls + "4S店 <script>alert(1)</script>") * 40_000
    assert len(big.encode()) > 2_000_000
    title = "标题\r\nBcc: victim@example.com"
    long_field = "长" * 1000
    [post_id] = store.add_items(
        [
            make_item(
                "1",
                text=big,
                title=title,
                platform=long_field,
                lang=long_field,
                author=Author(name=long_field, verified=long_field),
                raw={"text": controls},
            )
        ]
    )

    item = store.get_post(post_id).item
    assert item.text == big
    assert item.title == title
    assert item.platform == long_field
    assert item.lang == long_field
    assert item.author.verified == long_field
    assert item.raw == {"text": controls}


def test_nul_and_lone_surrogate_replaced(store: Store) -> None:
    [post_id] = store.add_items(
        [make_item("1", text="a\x00b\ud800c", raw={"text": "x\x00y\udfffz"})]
    )

    item = store.get_post(post_id).item
    assert item.text == "a\ufffdb\ufffdc"
    assert item.raw == {"text": "x\x00y\udfffz"}


# Collector cursors


def test_cursor_saved_with_posts(store: Store) -> None:
    assert store.get_cursor("weibo-rss") is None

    store.add_items([make_item("1")], cursor=("weibo-rss", "page=2"))
    assert store.get_cursor("weibo-rss") == "page=2"

    store.add_items([make_item("2")], cursor=("weibo-rss", "page=3"))
    assert store.get_cursor("weibo-rss") == "page=3"
    assert store.get_cursor("other") is None


def test_cursor_saved_without_items(store: Store) -> None:
    store.add_items([], cursor=("reddit", "t3_abc"))

    assert store.get_cursor("reddit") == "t3_abc"


def test_cursor_rolled_back_with_failed_insert(store: Store) -> None:
    store.add_items([make_item("1")], cursor=("weibo-rss", "c1"))
    add_failing_trigger(store)
    batch = [make_item("2"), make_item("1", likes=1), make_item("3", likes=424242)]

    with pytest.raises(DBAPIError, match="rejected by test trigger"):
        store.add_items(batch, cursor=("weibo-rss", "c2"))

    assert store.get_cursor("weibo-rss") == "c1"
    assert store.count_posts() == 1
    assert count_rows(store, engagement_snapshots) == 1
    # The same batch goes through once the cause is gone.
    retry = store.add_items(batch[:2], cursor=("weibo-rss", "c2"))
    assert retry[0] is not None
    assert store.get_cursor("weibo-rss") == "c2"


# Assessments


def test_save_assessments_round_trip(store: Store) -> None:
    ids = store.add_items([make_item("1"), make_item("2")])
    complaint = make_assessment("complaint")
    praise = make_assessment("praise", graded=False)

    store.save_assessments(ids, [complaint, praise])

    first = store.get_post(ids[0])
    assert first.classification == complaint.classification
    assert first.grading == complaint.grading
    assert first.relevance == complaint.relevance
    assert first.truncated is True
    assert first.classified_at is not None
    second = store.get_post(ids[1])
    assert second.classification.kind == "praise"
    assert second.grading is None


def test_latest_assessment_wins(store: Store) -> None:
    [post_id] = store.add_items([make_item("1")])
    store.save_assessments([post_id], [make_assessment("complaint")])

    store.save_assessments([post_id], [make_assessment("neutral", graded=False)])

    record = store.get_post(post_id)
    assert record.classification.kind == "neutral"
    assert record.grading is None
    assert count_rows(store, classifications, post_id=post_id) == 2


def test_save_assessments_length_mismatch(store: Store) -> None:
    [post_id] = store.add_items([make_item("1")])

    with pytest.raises(ValueError, match="1 post ids for 2 assessments"):
        store.save_assessments([post_id], [make_assessment(), make_assessment()])


def test_save_assessments_missing_factor(store: Store) -> None:
    ids = store.add_items([make_item("1"), make_item("2")])
    broken = make_assessment()
    grading = Grading(
        factors=broken.grading.factors[:3],
        level="medium",
        strategy="balanced",
        deadline=None,
        reason="",
    )
    broken = Assessment(
        broken.normalized, broken.relevance, broken.classification, grading
    )

    with pytest.raises(ValueError, match="no factor 'customer_identity'"):
        store.save_assessments(ids, [make_assessment(), broken])

    assert count_rows(store, classifications) == 0


# Runs and status


def test_start_run_closes_interrupted_run(store: Store, caplog) -> None:
    crashed = store.start_run("weibo-rss")
    other = store.start_run("reddit")

    with caplog.at_level(logging.WARNING, logger="storage.store"):
        current = store.start_run("weibo-rss")

    assert current != crashed
    assert f"closed interrupted run source=weibo-rss run_id={crashed}" in caplog.text
    [reddit, weibo] = store.status().sources
    assert weibo.last_status == "running"
    assert weibo.last_error == "interrupted"
    assert reddit.last_status == "running"
    store.finish_run(other, status="ok", fetched=0, new=0, duplicates=0, bad=0)
    with store.engine.connect() as connection:
        row = connection.execute(
            text("SELECT status, error, finished_at FROM source_runs WHERE id = :id"),
            {"id": crashed},
        ).one()
    assert row.status == "failed"
    assert row.error == "interrupted"
    assert row.finished_at is not None


def test_finish_run_records_counts(store: Store) -> None:
    run_id = store.start_run("weibo-rss")

    store.finish_run(
        run_id,
        status="partial",
        fetched=10,
        new=6,
        duplicates=3,
        bad=1,
        error="x" * 5000,
    )

    [source] = store.status().sources
    assert source.name == "weibo-rss"
    assert source.last_status == "partial"
    assert source.last_bad == 1
    assert source.last_finished_at >= source.last_started_at
    assert source.last_error == "x" * 2000


def test_finish_run_rejects_invalid(store: Store) -> None:
    run_id = store.start_run("weibo-rss")

    with pytest.raises(ValueError, match="invalid run status 'running'"):
        store.finish_run(
            run_id, status="running", fetched=0, new=0, duplicates=0, bad=0
        )
    with pytest.raises(LookupError, match="run 999 not found"):
        store.finish_run(999, status="ok", fetched=0, new=0, duplicates=0, bad=0)


def test_status_counts(store: Store) -> None:
    ids = store.add_items([make_item(str(i)) for i in range(6)])
    store.add_items([make_item("r1", source="reddit")])
    store.save_assessments(
        ids,
        [
            make_assessment("complaint"),
            make_assessment("complaint"),
            make_assessment("grievance"),
            make_assessment("praise", graded=False),
            make_assessment("complaint"),
            make_assessment("irrelevant", graded=False),
        ],
    )
    # The fifth post is reclassified: its old grading no longer counts.
    store.save_assessments([ids[4]], [make_assessment("neutral", graded=False)])
    critical = make_assessment("complaint")
    critical = Assessment(
        critical.normalized,
        critical.relevance,
        critical.classification,
        make_grading("critical"),
    )
    store.save_assessments([ids[1]], [critical])
    first = store.start_run("weibo-rss")
    store.finish_run(
        first, status="failed", fetched=0, new=0, duplicates=0, bad=0, error="HTTP 503"
    )
    second = store.start_run("weibo-rss")
    store.finish_run(second, status="ok", fetched=6, new=6, duplicates=0, bad=2)
    store.add_alerts([make_alert(f"k{i}", None) for i in range(3)], now=T0)
    claimed = store.claim_deliveries(T0, mail_channel="smtp", max_messages=3)
    first, second, failed, waiting, sent, also_sent = [d.id for d in claimed.deliveries]
    store.release_deliveries([first, second, waiting])
    store.record_attempts(
        [
            AttemptOutcome(failed, "failed", "550 no such user", 550),
            AttemptOutcome(sent, "sent"),
            AttemptOutcome(also_sent, "sent"),
        ],
        T0,
    )

    report = store.status()

    assert report.posts == 7
    assert report.kinds == {
        "complaint": 2,
        "grievance": 1,
        "praise": 1,
        "neutral": 1,
        "irrelevant": 1,
    }
    assert report.levels == {"medium": 2, "critical": 1}
    assert report.levels_by_kind == {
        "complaint": {"medium": 1, "critical": 1},
        "grievance": {"medium": 1},
    }
    assert report.pending_alerts == 2
    assert report.failed_alerts == 1
    assert report.unconfirmed_alerts == 0
    [reddit, weibo] = report.sources
    assert (reddit.name, reddit.posts, reddit.last_status) == ("reddit", 1, None)
    assert (weibo.name, weibo.posts, weibo.last_status) == ("weibo-rss", 6, "ok")
    assert weibo.last_bad == 2
    assert weibo.last_error == "HTTP 503"
    assert weibo.last_error_at < weibo.last_started_at


def test_status_empty_database(store: Store) -> None:
    report = store.status()

    assert report.sources == ()
    assert report.posts == 0
    assert report.kinds == {}
    assert report.levels == {}
    assert report.pending_alerts == 0


# Engines, concurrency and migrations


def test_concurrent_writers(database_url: str) -> None:
    """Threads sharing one Store and a second Store write without lock errors."""
    shared = Store(database_url)
    shared.migrate()
    separate = Store(database_url)
    errors: list[BaseException] = []

    def collect(store: Store, source: str) -> None:
        try:
            for batch in range(10):
                items = [make_item(f"{batch}-{i}", source=source) for i in range(50)]
                store.add_items(items, cursor=(source, str(batch)))
                store.status()
        except BaseException as exc:
            errors.append(exc)

    stores = [shared, shared, separate]
    threads = [
        threading.Thread(target=collect, args=(store, f"s{i}"))
        for i, store in enumerate(stores)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    try:
        assert errors == []
        assert shared.count_posts() == 1500
        assert separate.get_cursor("s2") == "9"
        assert shared.engine.pool.checkedout() == 0
    finally:
        shared.close()
        separate.close()


def test_migrations_from_empty_to_head(database_url: str) -> None:
    with Store(database_url) as store:
        store.migrate()
        store.migrate()

        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        # A database at HEAD_REVISION skips Alembic at start, so it must be the head.
        assert head == HEAD_REVISION
        assert current_revision(store.engine) == head
        with store.engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"include_name": include_name}
            )
            assert context.get_current_revision() == head
            assert compare_metadata(context, metadata) == []

        downgrade(store.engine, "base")
        with store.engine.connect() as connection:
            assert inspect(connection).get_table_names() == ["alembic_version"]

        store.migrate()
        assert store.count_posts() == 0


def test_upgrade_keeps_rows_without_competitor_models(store: Store) -> None:
    [post_id] = store.add_items([make_item("1")])
    store.save_assessments([post_id], [make_assessment()])
    downgrade(store.engine, "0001")

    store.migrate()

    relevance = store.get_post(post_id).relevance
    assert relevance.models == ("QC7", "汉")
    assert relevance.competitor_models == ()


def test_sqlite_connection_settings(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'folder' / 'fenghuo.db'}"

    with Store(url) as store:
        store.migrate()
        with store.engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            assert pragma("PRAGMA busy_timeout").scalar() == 30_000

    assert (tmp_path / "nested" / "folder" / "fenghuo.db").exists()


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "mysql://localhost/fenghuo"]
)
def test_unsupported_url_rejected(url: str) -> None:
    with pytest.raises(ValueError, match="not supported|unsupported database URL"):
        Store(url)


def test_foreign_keys_enforced(store: Store) -> None:
    with pytest.raises(IntegrityError):
        store.save_assessments([12345], [make_assessment()])


def test_set_cursor_and_forget(store: Store) -> None:
    store.set_cursor("weibo-rss", "page=2")
    assert store.get_cursor("weibo-rss") == "page=2"

    store.set_cursor("weibo-rss", None)

    assert store.get_cursor("weibo-rss") is None


def test_unassessed_posts_lists_only_unclassified(store: Store) -> None:
    first, second = store.add_items([make_item("a"), make_item("b")])
    store.save_assessments([first], [make_assessment()])

    found = store.unassessed_posts()

    assert [post_id for post_id, _ in found] == [second]
    assert found[0][1].external_id == "b"


def test_alerts_save_with_assessments(store: Store) -> None:
    (post_id,) = store.add_items([make_item("a")])

    alert_ids = store.save_assessments(
        [post_id], [make_assessment()], [make_alert("k1", post_id)]
    )

    assert alert_ids[0] is not None
    assert store.unassessed_posts() == []
    assert alert_keys(store) == ["k1"]


def test_assessments_and_alerts_commit_together(store: Store) -> None:
    (post_id,) = store.add_items([make_item("a")])
    clashing = [
        make_alert("k1", post_id, message_id="<same@x>"),
        make_alert("k2", post_id, message_id="<same@x>"),
    ]

    with pytest.raises(IntegrityError):
        store.save_assessments([post_id], [make_assessment()], clashing)

    assert store.unassessed_posts() != []
    assert alert_keys(store) == []


# One row per platform and native post id


def test_native_post_stored_once_across_sources(store: Store) -> None:
    [post_id] = store.add_items(
        [make_item("weibo:5101", source="feed-user", native=True, likes=3)]
    )
    later = T0 + timedelta(minutes=20)
    again = make_item(
        "weibo:5101", source="feed-keyword", native=True, likes=8, collected_at=later
    )

    stored = store.add_batch([again])

    assert stored.ids == [None]
    assert stored.refreshed == [post_id]
    assert store.count_posts() == 1
    record = store.get_post(post_id)
    assert record.item.source == "feed-user"
    assert record.item.native
    assert record.last_seen_at == later
    assert record.item.engagement.likes == 8
    assert count_rows(store, engagement_snapshots, post_id=post_id) == 2


def test_second_source_same_counts_no_snapshot(store: Store) -> None:
    [post_id] = store.add_items(
        [make_item("weibo:5101", source="feed-user", native=True, likes=3)]
    )

    stored = store.add_batch(
        [make_item("weibo:5101", source="feed-keyword", native=True, likes=3)]
    )

    assert stored.ids == [None]
    assert stored.refreshed == []
    assert count_rows(store, engagement_snapshots, post_id=post_id) == 1


@pytest.mark.parametrize("platform", ["weibo", "Weibo"])
def test_feed_link_id_matches_bare_mid(store: Store, platform: str) -> None:
    [post_id] = store.add_items([make_item("weibo:5101", source="feed", native=True)])

    stored = store.add_batch(
        [make_item("5101", source="api", platform=platform, native=True, likes=4)]
    )

    assert stored.ids == [None]
    assert stored.refreshed == [post_id]
    assert store.count_posts() == 1


@pytest.mark.parametrize(
    ("platform", "native"), [("weibo", False), ("unknown", True), ("微博", True)]
)
def test_non_native_post_kept_per_source(
    store: Store, platform: str, native: bool
) -> None:
    items = [
        make_item("weibo:5101", source=source, platform=platform, native=native)
        for source in ("replay-a", "replay-b")
    ]

    ids = store.add_items(items)

    assert None not in ids
    assert store.count_posts() == 2
    assert store.add_items(items) == [None, None]


def test_batch_repeating_native_post_stores_first(store: Store) -> None:
    items = [
        make_item("weibo:5101", source="feed", native=True, likes=1),
        make_item("5101", source="api", native=True, likes=9),
    ]

    ids = store.add_items(items)

    assert ids[0] is not None
    assert ids[1] is None
    assert store.count_posts() == 1
    assert store.get_post(ids[0]).item.engagement.likes == 1
    assert count_rows(store, engagement_snapshots) == 1


def test_batch_repeating_id_on_two_platforms(store: Store) -> None:
    items = [
        make_item("5101", source="api", platform="weibo", native=True),
        make_item("5101", source="api", platform="douyin", native=True, likes=9),
    ]

    ids = store.add_items(items)

    assert ids[0] is not None
    assert ids[1] is None
    assert store.count_posts() == 1


def identity_keys(store: Store) -> dict[int, str]:
    statement = select(posts.c.id, posts.c.identity_key)
    with store.engine.connect() as connection:
        return dict(connection.execute(statement).all())


def fill_0007_database(url: str, items: list[Item]) -> list[int]:
    """Store posts with their snapshots in a database at revision 0007."""
    engine = create_store_engine(url)
    try:
        upgrade(engine, "0007")
        post_ids = []
        with engine.begin() as connection:
            for item in items:
                row = rows.post_row(item, "")
                del row["identity_key"]
                result = connection.execute(posts.insert().values(row))
                post_id = result.inserted_primary_key[0]
                snapshot = rows.snapshot_row(post_id, item)
                connection.execute(engagement_snapshots.insert().values(snapshot))
                post_ids.append(post_id)
    finally:
        engine.dispose()
    return post_ids


def test_upgrade_from_0007_keys_existing_posts(database_url: str) -> None:
    old = [
        make_item("weibo:5101", source="feed-user"),
        make_item("weibo:5101", source="feed-keyword"),
        make_item("t3_abc", source="reddit", platform="reddit"),
        make_item("demo-1", source="replay"),
        make_item("5102", source="api"),
        make_item("unknown:7", source="forum", platform="unknown"),
    ]
    post_ids = fill_0007_database(database_url, old)

    with Store(database_url) as store:
        store.migrate()

        assert identity_keys(store) == dict(
            zip(
                post_ids,
                [
                    "native:weibo:5101",
                    "source:feed-keyword:weibo:5101",
                    "native:reddit:t3_abc",
                    "source:replay:demo-1",
                    "source:api:5102",
                    "source:forum:unknown:7",
                ],
                strict=True,
            )
        )
        with store.engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"include_name": include_name}
            )
            assert compare_metadata(context, metadata) == []

        again = [
            make_item("weibo:5101", source="feed-other", native=True),
            make_item("t3_abc", source="reddit", platform="reddit", native=True),
            make_item("demo-1", source="replay"),
            make_item("5102", source="api", native=True, likes=6),
        ]
        stored = store.add_batch(again)
        assert stored.ids == [None, None, None, None]
        assert stored.refreshed == [post_ids[4]]
        assert store.count_posts() == len(old)


def test_downgrade_to_0007_keeps_posts(store: Store) -> None:
    [post_id] = store.add_items([make_item("weibo:5101", source="feed", native=True)])

    downgrade(store.engine, "0007")

    with store.engine.connect() as connection:
        columns = {
            column["name"] for column in inspect(connection).get_columns("posts")
        }
    assert "identity_key" not in columns
    assert store.count_posts() == 1
    store.migrate()
    assert identity_keys(store) == {post_id: "native:weibo:5101"}
