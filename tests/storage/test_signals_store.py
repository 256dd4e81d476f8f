"""Early-warning signals and the series behind them, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import select
from test_store import T0, count_rows, make_assessment, make_grading, make_item

from items import Relevance, Signal
from storage import Store
from storage.tables import gradings, posts, signals


def make_signal(key: str, **fields) -> Signal:
    values = {
        "kind": "critical",
        "subject": "post",
        "reason": "危机:客户损失3",
        "occurred_at": T0,
    }
    values.update(fields)
    return Signal(key=key, **values)


def test_signals_are_stored_once_per_key(store: Store):
    [post_id] = store.add_items([make_item("1")])
    first = store.add_signals(
        [make_signal("critical:post:1", post_id=post_id, detail={"peak": 3})]
    )
    again = store.add_signals(
        [make_signal("critical:post:1", post_id=post_id), make_signal("viral:post:1")]
    )
    assert first[0] is not None
    assert again[0] is None
    assert again[1] is not None
    [latest, earliest] = store.recent_signals()
    assert latest.signal.key == "viral:post:1"
    assert earliest.signal.detail == {"peak": 3}
    assert earliest.signal.post_id == post_id


def test_duplicate_keys_in_one_batch_keep_the_first(store: Store):
    ids = store.add_signals(
        [make_signal("k", reason="first"), make_signal("k", reason="second")]
    )
    assert ids[1] is None
    [record] = store.recent_signals()
    assert record.signal.reason == "first"


def test_signal_reason_is_made_storable(store: Store):
    store.add_signals([make_signal("nul", reason="原文\x00带空字符")])
    [record] = store.recent_signals()
    assert record.signal.reason == "原文\ufffd带空字符"


def test_recent_signals_since(store: Store):
    store.add_signals([make_signal("old")])
    [record] = store.recent_signals()
    later = record.created_at + timedelta(seconds=1)
    assert store.recent_signals(since=later) == []
    assert len(store.recent_signals(since=record.created_at)) == 1


def test_last_burst_starts_by_problem_and_brand(store: Store):
    store.add_signals(
        [
            make_signal("b1", kind="burst", subject="brand", occurred_at=T0),
            make_signal(
                "b2", kind="burst", subject="brand", occurred_at=T0 + timedelta(hours=5)
            ),
            make_signal("c1", kind="critical", occurred_at=T0 + timedelta(days=9)),
        ]
    )
    last = store.last_burst_starts([None, 7])
    assert last == {None: T0 + timedelta(hours=5)}


def test_regrading_adds_a_grading_to_the_latest_classification(store: Store):
    [post_id] = store.add_items([make_item("1")])
    store.save_assessments([post_id], [make_assessment()])
    critical = dataclasses.replace(make_grading("critical"), reason="转发预计破万")

    saved = store.save_regradings(
        [(post_id, critical)], new_signals=[make_signal("critical:post:1")]
    )

    assert saved.signal_ids[0] is not None
    record = store.get_post(post_id)
    assert record.grading.level == "critical"
    assert record.grading.reason == "转发预计破万"
    assert count_rows(store, gradings) == 2


def test_regrading_an_unclassified_post_stores_nothing(store: Store):
    [post_id] = store.add_items([make_item("1")])
    with pytest.raises(LookupError, match=f"post {post_id} has no classification"):
        store.save_regradings(
            [(post_id, make_grading())], new_signals=[make_signal("critical:post:1")]
        )
    assert count_rows(store, signals) == 0


def test_new_engagement_marks_a_post_refreshed(store: Store):
    first = store.add_batch([make_item("1", reposts=5), make_item("2")])
    later = T0 + timedelta(minutes=30)
    second = store.add_batch(
        [
            make_item("1", reposts=50, collected_at=later),
            make_item("2", collected_at=later),
        ]
    )
    assert second.ids == [None, None]
    assert second.refreshed == [first.ids[0]]
    history = store.engagement_history([first.ids[0]])
    assert [(t, e.reposts) for t, e in history[first.ids[0]]] == [(T0, 5), (later, 50)]
    assert store.pending_regrades() == [first.ids[0]]
    store.save_regradings([], done=[first.ids[0]])
    assert store.pending_regrades() == []


def test_brand_post_times_read_the_latest_classification(store: Store):
    ids = store.add_items([make_item(str(n)) for n in range(4)])
    store.save_assessments(ids, [make_assessment("complaint")] * 4)
    irrelevant = dataclasses.replace(
        make_assessment("irrelevant", graded=False),
        relevance=Relevance(relevant=False),
    )
    store.save_assessments(
        ids[:2], [make_assessment("praise", graded=False), irrelevant]
    )
    since = T0 - timedelta(days=1)
    found = sorted(store.brand_post_times(since), key=lambda pair: pair[1])
    assert [negative for _, negative in found] == [False, True, True]
    assert all(moment == T0 - timedelta(hours=1) for moment, _ in found)
    assert store.newest_post_time() == T0 - timedelta(hours=1)


def test_estimated_times_stay_out_of_the_series(store: Store):
    known, estimated = store.add_items(
        [
            make_item("1"),
            make_item("2", created_at=T0 - timedelta(days=30), time_estimated=True),
        ]
    )
    store.save_assessments([known, estimated], [make_assessment()] * 2)
    assert store.get_post(estimated).item.time_estimated is True
    assert len(store.brand_post_times(T0 - timedelta(days=60))) == 1
    assert store.newest_post_time() == T0 - timedelta(hours=1)


def test_removal_is_recorded_once_and_keeps_the_text(store: Store):
    [post_id] = store.add_items([make_item("1")])
    text = store.get_post(post_id).item.text
    later = T0 + timedelta(hours=2)
    store.add_items([make_item("1", text="", removed=True, collected_at=later)])
    store.add_items(
        [make_item("1", text="", removed=True, collected_at=later + timedelta(hours=1))]
    )
    record = store.get_post(post_id)
    assert record.item.removed is True
    assert record.item.text == text
    with store.engine.connect() as connection:
        removed_at = connection.execute(
            select(posts.c.removed_at).where(posts.c.id == post_id)
        ).scalar_one()
    assert removed_at == later


def test_coverage_stops_at_the_first_day_without_posts(store: Store):
    end = T0 + timedelta(hours=1)
    days_ago = [0.5, 1.5, 2.5, 4.5]
    store.add_items(
        [
            make_item(str(n), created_at=end - timedelta(days=d))
            for n, d in enumerate(days_ago)
        ]
    )
    assert store.covered_since(end - timedelta(days=9), end) == end - timedelta(days=3)
    assert store.covered_since(end - timedelta(days=2), end) == end - timedelta(days=2)
    assert store.covered_since(end, end + timedelta(days=1)) == end + timedelta(days=1)
