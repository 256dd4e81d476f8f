"""Tests for alerts.policy: opening, updating, holding back and escalating alerts."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from alerts import policy
from alerts.policy import AlertState, Sighting
from config import Alerts, Department, QuietHours, Route

NOW = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)  # 12:00 in Asia/Shanghai
ZONE = "Asia/Shanghai"

SETTINGS = Alerts(
    departments={
        "pr": Department(name="公关部", recipients=("公关 <pr@brand.example>",)),
        "cr": Department(name="客户关系部", recipients=("cr@brand.example",)),
        "product": Department(name="产品部", recipients=("PR@brand.example",)),
        "exec": Department(name="管理层", recipients=("ceo@brand.example",)),
        "legal": Department(name="法务部", recipients=("law@brand.example",)),
    },
    routing={
        "critical": Route(departments=("exec", "pr")),
        "medium": Route(departments=("cr", "pr"), recipients=("duty@brand.example",)),
        "normal": Route(departments=("cr",)),
    },
    cause_departments={"product": ("product",)},
    escalation={"critical": (("exec",), ("legal",)), "medium": (("exec",),)},
)


def sighting(**changes) -> Sighting:
    values = {
        "post_id": 7,
        "incident_id": 3,
        "level": "medium",
        "kind": "complaint",
        "relevant": True,
        "high_risk": False,
        "viral": False,
        "reach": 100,
        "owners": 1,
        "root_cause": None,
        "deadline": NOW + timedelta(hours=24),
    }
    return Sighting(**{**values, **changes})


def state(**changes) -> AlertState:
    values = {
        "level": "medium",
        "kind": "complaint",
        "reach": 100,
        "owners": 1,
        "viral": False,
        "status": "open",
        "last_message_at": NOW - timedelta(minutes=5),
    }
    return AlertState(**{**values, **changes})


def test_critical_post_opens_at_once():
    found = policy.plan(sighting(level="critical"), None, SETTINGS, NOW, ZONE)
    assert found == policy.Plan(True, "critical", (), NOW)


def test_medium_post_waits_for_its_batch_window():
    found = policy.plan(sighting(), None, SETTINGS, NOW, ZONE)
    assert found.opens
    assert found.send_at == NOW + timedelta(minutes=SETTINGS.medium_batch_minutes)


@pytest.mark.parametrize(
    "changes",
    [
        {"level": "normal"},
        {"kind": "neutral", "level": "critical"},
        {"relevant": False, "level": "critical"},
    ],
)
def test_posts_that_open_nothing(changes):
    assert policy.plan(sighting(**changes), None, SETTINGS, NOW, ZONE) is None


def test_risky_and_viral_open_below_levels():
    risky = sighting(level="normal", kind="grievance", high_risk=True)
    assert policy.plan(risky, None, SETTINGS, NOW, ZONE).level == "normal"
    viral = sighting(level="normal", viral=True)
    assert policy.plan(viral, None, SETTINGS, NOW, ZONE).opens
    quiet = dataclasses.replace(SETTINGS, signals=("burst",))
    assert policy.plan(viral, None, quiet, NOW, ZONE) is None


def test_copy_that_changes_nothing_sends_nothing():
    assert policy.plan(sighting(reach=150), state(), SETTINGS, NOW, ZONE) is None


def test_update_reasons():
    found = policy.plan(
        sighting(level="critical", reach=200, owners=2, viral=True),
        state(kind="grievance"),
        SETTINGS,
        NOW,
        ZONE,
    )
    assert not found.opens
    assert found.level == "critical"
    assert found.reasons == (
        policy.LEVEL_RAISED,
        policy.REACH_DOUBLED,
        policy.NEW_OWNER,
        policy.TURNED_COMPLAINT,
        policy.FORECAST_VIRAL,
    )


def test_update_waits_for_cooldown():
    last = NOW - timedelta(minutes=5)
    doubled = policy.plan(sighting(reach=300), state(), SETTINGS, NOW, ZONE)
    assert doubled.send_at == last + timedelta(minutes=SETTINGS.cooldown_minutes)
    raised = policy.plan(sighting(level="critical"), state(), SETTINGS, NOW, ZONE)
    assert raised.send_at == NOW


def test_lower_level_copy_keeps_the_alert_level():
    found = policy.plan(
        sighting(level="normal", owners=3), state(level="critical"), SETTINGS, NOW, ZONE
    )
    assert found.level == "critical"
    assert found.reasons == (policy.NEW_OWNER,)


def test_closed_alert_reopens_only_when_the_level_rises():
    closed = state(status="closed")
    assert policy.plan(sighting(owners=5), closed, SETTINGS, NOW, ZONE) is None
    assert policy.plan(sighting(level="critical"), closed, SETTINGS, NOW, ZONE)


def test_merge_of_pending_updates():
    pending = policy.Plan(False, "medium", ("a", "b"), NOW + timedelta(minutes=20))
    later = policy.Plan(False, "critical", ("b", "c"), NOW)
    assert policy.merge(pending, later) == policy.Plan(
        False, "critical", ("a", "b", "c"), NOW
    )


QUIET = dataclasses.replace(SETTINGS, quiet_hours=QuietHours("22:00", "07:00"))


@pytest.mark.parametrize(
    ("local_hour", "held_until_hour"),
    [(23, 7), (2, 7), (6, 7), (7, None), (12, None), (21, None)],
)
def test_quiet_hours_across_midnight(local_hour, held_until_hour):
    moment = datetime(2026, 6, 1, local_hour, 30, tzinfo=UTC) - timedelta(hours=8)
    end = policy.quiet_end(moment, QUIET.quiet_hours, ZONE)
    if held_until_hour is None:
        assert end is None
    else:
        local_end = end.astimezone(policy.ZoneInfo(ZONE))
        assert (local_end.hour, local_end.minute) == (held_until_hour, 0)
        assert timedelta(0) < end - moment < timedelta(hours=9)


def test_quiet_hours_within_one_day():
    quiet = QuietHours("12:00", "13:30")
    end = policy.quiet_end(NOW + timedelta(minutes=10), quiet, ZONE)
    assert end == NOW + timedelta(minutes=90)
    assert policy.quiet_end(NOW + timedelta(minutes=90), quiet, ZONE) is None


def test_quiet_hours_hold_all_but_critical():
    night = datetime(2026, 6, 1, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    medium = policy.plan(sighting(), None, QUIET, night, ZONE)
    assert medium.send_at == datetime(2026, 6, 1, 23, 0, tzinfo=UTC)
    critical = policy.plan(sighting(level="critical"), None, QUIET, night, ZONE)
    assert critical.send_at == night


def test_cap_per_recipient_hour():
    sent = [(NOW - timedelta(minutes=m), "medium") for m in (50, 40, 30)]
    assert policy.cap_allows(sent[:2], "medium", NOW, 3) is None
    assert policy.cap_allows(sent, "medium", NOW, 3) == NOW + timedelta(minutes=10)
    # Only a level above every mail of the hour breaks the cap.
    assert policy.cap_allows(sent, "critical", NOW, 3) is None
    mixed = [*sent[:2], (NOW - timedelta(minutes=30), "critical")]
    assert policy.cap_allows(mixed, "critical", NOW, 3) is not None
    old = [(NOW - timedelta(minutes=m), "medium") for m in (90, 70, 61)]
    assert policy.cap_allows(old, "medium", NOW, 3) is None


def test_recipients_by_level_and_root_cause():
    departments, addresses = policy.recipients("medium", "product", SETTINGS)
    assert departments == ("cr", "pr", "product")
    # PR@brand.example of the product team is the PR mailbox again.
    assert addresses == (
        "cr@brand.example",
        "公关 <pr@brand.example>",
        "duty@brand.example",
    )
    assert policy.recipients("critical", None, SETTINGS)[0] == ("exec", "pr")
    assert policy.recipients("unknown", None, SETTINGS) == ((), ())


def test_escalation_one_tier_per_deadline_missed():
    created = NOW
    deadline = NOW + timedelta(hours=1)
    due = lambda done, at: policy.escalation_due(  # noqa: E731
        "critical", created, deadline, done, at, SETTINGS
    )
    assert due(0, deadline - timedelta(seconds=1)) is None
    assert due(0, deadline) == 0
    assert due(1, deadline + timedelta(minutes=30)) is None
    assert due(1, deadline + timedelta(hours=1)) == 1
    assert due(2, deadline + timedelta(hours=9)) is None
    assert policy.escalation_due("normal", created, deadline, 0, NOW, SETTINGS) is None
    assert policy.escalation_due("medium", created, None, 0, NOW, SETTINGS) is None


def test_ack_token():
    token = policy.ack_token("secret", 12)
    assert policy.ack_token_valid("secret", 12, token)
    assert not policy.ack_token_valid("secret", 13, token)
    assert not policy.ack_token_valid("other", 12, token)
    assert not policy.ack_token_valid("secret", 12, "é" + token[1:])
    assert not policy.ack_token_valid("", 12, policy.ack_token("", 12))


def test_incident_key():
    assert policy.incident_key(sighting()) == "incident:3"
    assert policy.incident_key(sighting(incident_id=None)) == "post:7"
