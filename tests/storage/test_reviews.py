"""Review state, notes, corrections and training labels, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from graded_posts import T0, add_graded_post, add_post_alert, regrade
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from storage import Store
from storage.accounts import insert_audit
from storage.queue import QueueFilter, ReviewQueue
from storage.reviews import (
    MAX_NOTE_LENGTH,
    PostClosed,
    PostNotClosed,
    PostReviews,
    add_correction,
    add_note,
    close,
    current_value,
    reopen,
    set_assignee,
)
from storage.web_tables import audit_log, corrections


@pytest.fixture
def reviews(store: Store) -> PostReviews:
    return PostReviews(store.engine)


def correct(reviews: PostReviews, post_id: int, field: str, value: str, by: str):
    with reviews.write() as connection:
        return add_correction(connection, post_id, field, value, by, T0)


def test_new_post_is_open(store: Store, reviews: PostReviews) -> None:
    post_id = add_graded_post(store, "1", level="critical", kind="complaint")

    overview = reviews.overview(post_id)

    assert overview.state.status == "open"
    assert overview.state.assignee is None
    assert overview.notes == []
    assert overview.corrections == []
    assert overview.alert is None
    assert (overview.kind, overview.level) == ("complaint", "critical")


def test_value_in_force_follows_corrections(store: Store, reviews: PostReviews):
    post_id = add_graded_post(store, "1", level="medium", kind="complaint")
    regrade(store, post_id, "critical", None)

    first = correct(reviews, post_id, "level", "normal", "ana")
    second = correct(reviews, post_id, "level", "medium", "lead")

    assert first.old_value == "critical"
    assert second.old_value == "normal"
    with store.engine.connect() as connection:
        assert current_value(connection, post_id, "level") == "medium"
        assert current_value(connection, post_id, "kind") == "complaint"


def test_ungraded_post_has_no_level(store: Store, reviews: PostReviews) -> None:
    post_id = add_graded_post(store, "1", level=None, kind="praise")

    correction = correct(reviews, post_id, "level", "medium", "ana")

    assert correction.old_value is None
    assert reviews.overview(post_id).level == "medium"


@pytest.mark.parametrize(
    ("field", "value"), [("kind", "critical"), ("level", "complaint"), ("text", "x")]
)
def test_invalid_correction_raises(store, reviews, field, value) -> None:
    post_id = add_graded_post(store, "1")

    with pytest.raises(ValueError, match="invalid"):
        correct(reviews, post_id, field, value, "ana")


def test_database_rejects_unknown_label(store: Store, reviews: PostReviews) -> None:
    post_id = add_graded_post(store, "1")
    row = {
        "post_id": post_id,
        "field": "kind",
        "new_value": "critical",
        "corrected_by": "ana",
        "corrected_at": T0,
    }

    with pytest.raises(IntegrityError), reviews.write() as connection:
        connection.execute(corrections.insert().values(row))


def test_corrections_move_queue(store: Store, reviews: PostReviews) -> None:
    queue = ReviewQueue(store.engine)
    first = add_graded_post(store, "1", level="medium")
    second = add_graded_post(store, "2", level="medium")
    quiet = add_graded_post(store, "3", level="normal")

    correct(reviews, second, "level", "critical", "ana")
    correct(reviews, first, "level", "normal", "ana")
    correct(reviews, quiet, "level", "medium", "ana")
    correct(reviews, quiet, "kind", "grievance", "ana")

    rows = queue.page(10)
    assert [row.post_id for row in rows] == [second, quiet]
    assert [row.level for row in rows] == ["critical", "medium"]
    assert rows[1].kind == "grievance"
    kept = queue.page(10, QueueFilter(kind="grievance"))
    assert [row.post_id for row in kept] == [quiet]


def test_assign_close_reopen(store: Store, reviews: PostReviews) -> None:
    post_id = add_graded_post(store, "1")

    with reviews.write() as connection:
        set_assignee(connection, post_id, "ana", "lead", T0)
    with reviews.write() as connection:
        closed = close(connection, post_id, "false_alarm", None, "ana", T0)
    with reviews.write() as connection:
        reopened = reopen(connection, post_id, "lead", T0 + timedelta(hours=1))

    assert closed.status == "closed"
    assert closed.resolution == "false_alarm"
    assert closed.closed_by == "ana"
    assert reopened.status == "assigned"
    assert reopened.assignee == "ana"
    assert reopened.resolution is None
    assert reopened.closed_at is None
    assert reopened.updated_by == "lead"
    assert reopened.updated_at == T0 + timedelta(hours=1)


def test_close_closes_post_alert(store: Store, reviews: PostReviews) -> None:
    post_id = add_graded_post(store, "1")
    alert_id = add_post_alert(store, post_id)

    with reviews.write() as connection:
        close(connection, post_id, "handled", True, "ana", T0)
    with reviews.write() as connection:
        reopen(connection, post_id, "ana", T0 + timedelta(hours=1))

    alert = store.get_alert(alert_id).alert
    assert alert.status == "closed"
    assert alert.updated_at == T0


def test_conflicts_raise(store: Store, reviews: PostReviews) -> None:
    post_id = add_graded_post(store, "1")

    with pytest.raises(PostNotClosed), reviews.write() as connection:
        reopen(connection, post_id, "ana", T0)
    with reviews.write() as connection:
        close(connection, post_id, "handled", True, "ana", T0)
    with pytest.raises(PostClosed), reviews.write() as connection:
        close(connection, post_id, "handled", True, "ana", T0)
    with pytest.raises(PostClosed), reviews.write() as connection:
        set_assignee(connection, post_id, "ana", "ana", T0)


def test_invalid_resolution_raises(store: Store, reviews: PostReviews) -> None:
    post_id = add_graded_post(store, "1")

    with pytest.raises(ValueError, match="resolution"), reviews.write() as c:
        close(c, post_id, "fixed", None, "ana", T0)

    assert reviews.overview(post_id).state.status == "open"


@pytest.mark.parametrize("text", ["", "  ", "x" * (MAX_NOTE_LENGTH + 1)])
def test_invalid_note_raises(store: Store, reviews: PostReviews, text: str) -> None:
    post_id = add_graded_post(store, "1")

    with pytest.raises(ValueError, match="note"), reviews.write() as connection:
        add_note(connection, post_id, "ana", text, T0)


def test_notes_in_order(store: Store, reviews: PostReviews) -> None:
    post_id = add_graded_post(store, "1")

    with reviews.write() as connection:
        add_note(connection, post_id, "ana", "第一条", T0)
        add_note(connection, post_id, "lead", "第二条", T0 + timedelta(minutes=1))

    notes = reviews.overview(post_id).notes
    assert [(n.author, n.text) for n in notes] == [
        ("ana", "第一条"),
        ("lead", "第二条"),
    ]


def test_overview_shows_newest_alert(store: Store, reviews: PostReviews) -> None:
    post_id = add_graded_post(store, "1")
    alert_id = add_post_alert(store, post_id)

    alert = reviews.overview(post_id).alert

    assert alert is not None
    assert alert.id == alert_id
    assert alert.status == "open"


def test_rollback_drops_change_and_audit(store: Store, reviews: PostReviews) -> None:
    post_id = add_graded_post(store, "1")

    with pytest.raises(RuntimeError), reviews.write() as connection:
        add_correction(connection, post_id, "kind", "praise", "ana", T0)
        insert_audit(connection, "ana", "post.correct", ("post", post_id), {}, T0)
        raise RuntimeError("failed after both writes")

    with store.engine.connect() as connection:
        assert (
            connection.execute(select(func.count()).select_from(corrections)).scalar()
            == 0
        )
        assert (
            connection.execute(select(func.count()).select_from(audit_log)).scalar()
            == 0
        )


def test_training_labels_latest_per_post(store: Store, reviews: PostReviews) -> None:
    first = add_graded_post(store, "1", kind="complaint", text="第一条帖子")
    second = add_graded_post(store, "2", kind="grievance", text="第二条帖子")
    third = add_graded_post(store, "3", kind="neutral", text="第三条帖子")
    correct(reviews, first, "kind", "grievance", "ana")
    correct(reviews, first, "kind", "praise", "bo")
    correct(reviews, second, "kind", "grievance", "ana")
    correct(reviews, second, "level", "critical", "ana")
    last = correct(reviews, third, "level", "normal", "bo")

    labels = reviews.training_labels()

    assert [(label.post_id, label.kind) for label in labels.kinds] == [
        (first, "praise"),
        (second, "grievance"),
    ]
    assert [label.corrected_by for label in labels.kinds] == ["bo", "ana"]
    assert labels.kinds[0].post["text"] == "第一条帖子"
    assert labels.kinds[0].post["platform"] == "weibo"
    assert labels.level_posts == 2
    assert labels.last_id == last.id
    assert reviews.corrections_after(0) == 5
    assert reviews.corrections_after(last.id) == 0


def test_no_training_labels(reviews: PostReviews) -> None:
    labels = reviews.training_labels()

    assert labels.kinds == []
    assert labels.level_posts == 0
    assert labels.last_id == 0
