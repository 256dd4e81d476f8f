"""Planning a batch's alerts per incident, without a database or a sender."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts import policy
from alerts.planner import (
    Candidate,
    delivery_times,
    plan_batch,
    reason_text,
    reasons_from_codes,
)
from config import Alerts
from storage import AlertRecord, KnownAlert, PendingMessage

NOW = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
SETTINGS = Alerts(cooldown_minutes=30, medium_batch_minutes=10)


def sighting(post_id: int, incident: int | None = 7, **changes) -> policy.Sighting:
    values = {
        "post_id": post_id,
        "incident_id": incident,
        "level": "critical",
        "kind": "complaint",
        "relevant": True,
        "high_risk": False,
        "viral": False,
        "reach": 10,
        "owners": 1,
        "root_cause": "product",
        "deadline": NOW + timedelta(hours=1),
        **changes,
    }
    return policy.Sighting(**values)


def candidate(post_id: int, **changes) -> Candidate:
    return Candidate(post_id, None, None, sighting(post_id, **changes))


def known(
    level="critical", pending: PendingMessage | None = None, **state
) -> KnownAlert:
    values = {"reach": 10, "owners": 1, "last_message_at": NOW - timedelta(minutes=5)}
    values.update(state)
    record = AlertRecord(
        id=3,
        post_id=1,
        dedup_key="incident:7",
        level=level,
        kind="complaint",
        subject="s",
        status="open",
        deadline=None,
        acknowledged_at=None,
        acknowledged_by=None,
        escalation_tier=0,
        created_at=NOW - timedelta(minutes=5),
        updated_at=NOW - timedelta(minutes=5),
        **values,
    )
    return KnownAlert(record, ("<a@x>",), "s", pending)


def test_copies_in_batch_make_one_plan():
    plans = plan_batch(
        [candidate(1), candidate(2, owners=2), candidate(3, owners=3)],
        {},
        SETTINGS,
        NOW,
        "UTC",
    )

    [plan] = plans
    assert plan.plan.opens
    assert plan.plan.send_at == NOW
    assert plan.shown.post_id == 1
    assert plan.state.owners == 3


def test_separate_incidents_separate_plans():
    plans = plan_batch(
        [candidate(1), candidate(2, incident=8), candidate(3, incident=None)],
        {},
        SETTINGS,
        NOW,
        "UTC",
    )

    assert [p.key for p in plans] == ["incident:7", "incident:8", "post:3"]


def test_update_after_cooldown():
    [plan] = plan_batch(
        [candidate(2, owners=2)], {"incident:7": known()}, SETTINGS, NOW, "UTC"
    )

    assert not plan.plan.opens
    assert plan.plan.reasons == (policy.NEW_OWNER,)
    assert plan.plan.send_at == NOW + timedelta(minutes=25)
    assert plan.replaces is None


def test_nothing_new_no_plan():
    plans = plan_batch([candidate(2)], {"incident:7": known()}, SETTINGS, NOW, "UTC")

    assert plans == []


def test_pending_update_merged_and_replaced():
    pending = PendingMessage(9, 1, "<u@x>", ("reach",), NOW + timedelta(minutes=20))
    stored = known(pending=pending)

    [plan] = plan_batch(
        [candidate(2, owners=2)], {"incident:7": stored}, SETTINGS, NOW, "UTC"
    )

    assert plan.replaces == 9
    assert plan.plan.reasons == (policy.REACH_DOUBLED, policy.NEW_OWNER)
    assert plan.plan.send_at == NOW + timedelta(minutes=20)


def test_level_raise_shows_higher_post():
    stored = known(level="medium")

    [plan] = plan_batch(
        [candidate(2, level="medium", owners=2), candidate(3, owners=2)],
        {"incident:7": stored},
        SETTINGS,
        NOW,
        "UTC",
    )

    assert plan.plan.level == "critical"
    assert plan.plan.send_at == NOW
    assert plan.shown.post_id == 3


def test_reason_codes_round_trip():
    reasons = (policy.LEVEL_RAISED, policy.FORECAST_VIRAL)

    text = reason_text(reasons)

    assert text == "update:level+viral"
    assert len(reason_text(tuple(policy_reasons()))) <= 64
    assert reasons_from_codes(text.removeprefix("update:").split("+")) == reasons
    assert reason_text(()) == "new"


def policy_reasons():
    return (
        policy.LEVEL_RAISED,
        policy.REACH_DOUBLED,
        policy.NEW_OWNER,
        policy.TURNED_COMPLAINT,
        policy.FORECAST_VIRAL,
    )


def test_cap_holds_recipient_not_others():
    recent = [
        (i, "pr@x", NOW - timedelta(minutes=50 - i), "critical") for i in range(3)
    ]

    times = delivery_times(["pr@x", "cr@x"], "critical", NOW, recent, cap=3)

    assert times["cr@x"] == NOW
    assert times["pr@x"] == NOW + timedelta(minutes=10)


def test_cap_leaves_out_replaced_message():
    recent = [(i, "pr@x", NOW - timedelta(minutes=10), "medium") for i in range(3)]
    pending = PendingMessage(2, 1, "<u@x>", (), NOW, due={"pr@x": NOW})

    times = delivery_times(["pr@x"], "medium", NOW, recent, cap=3, replaced=pending)

    assert times["pr@x"] == NOW


def test_cap_ignores_mail_planned_later():
    recent = [(i, "pr@x", NOW + timedelta(hours=i), "medium") for i in range(1, 9)]

    times = delivery_times(["pr@x"], "medium", NOW, recent, cap=1)

    assert times["pr@x"] == NOW


def test_replaced_message_keeps_its_place():
    recent = [(i, "pr@x", NOW - timedelta(minutes=30), "medium") for i in range(5)]
    slot = NOW + timedelta(minutes=5)
    pending = PendingMessage(9, 1, "<u@x>", (), slot, due={"pr@x": slot})

    times = delivery_times(["PR@x"], "medium", NOW, recent, cap=3, replaced=pending)

    assert times["PR@x"] == slot


def test_cap_counts_mailbox_any_case():
    recent = [(1, "PR@x", NOW - timedelta(minutes=5), "medium")]

    times = delivery_times(["pr@x"], "medium", NOW, recent, cap=1)

    assert times["pr@x"] == NOW + timedelta(minutes=55)
