"""When an incident's alert is opened, updated, held back and escalated.

Pure functions of what the job saw and what was sent before, with no I/O, so
that every rule is tested without a database or a sender. The job turns
their results into stored alerts, messages and deliveries.

One alert covers one incident: a post, its copies and its reposts. A post of
an incident that already has an alert does not open another. It may update
the alert, in the same mail thread, when the level rose, the reach doubled,
another owner reports the same thing, a grievance turned into a complaint or
the post is forecast to go viral.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from email.utils import parseaddr
from zoneinfo import ZoneInfo

from config import Alerts, QuietHours

LEVEL_RANK = {"normal": 0, "medium": 1, "critical": 2}
ALERTED_KINDS = ("grievance", "complaint")

LEVEL_RAISED = "level raised"
REACH_DOUBLED = "reach doubled"
NEW_OWNER = "another owner"
TURNED_COMPLAINT = "turned into a complaint"
FORECAST_VIRAL = "forecast to go viral"


@dataclass(frozen=True, slots=True)
class Sighting:
    """A graded post of an incident, with what the incident amounts to so far.

    ``reach`` and ``owners`` are the incident's, counting this post: its
    interactions (likes, reposts, comments) over all its posts, and the people
    who reported it. ``posted_at`` is when the post appeared, if known.
    """

    post_id: int
    incident_id: int | None
    level: str
    kind: str
    relevant: bool
    high_risk: bool
    viral: bool
    reach: int
    owners: int
    root_cause: str | None
    deadline: datetime | None
    posted_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AlertState:
    """An incident's alert as it was at its last message."""

    level: str
    kind: str
    reach: int
    owners: int
    viral: bool
    status: str
    last_message_at: datetime | None


@dataclass(frozen=True, slots=True)
class Plan:
    """Open an alert, or send an update of one, at ``send_at`` at the earliest."""

    opens: bool
    level: str
    reasons: tuple[str, ...]
    send_at: datetime


def incident_key(sighting: Sighting) -> str:
    """Return the key of the alert that covers a sighting's incident."""
    if sighting.incident_id is not None:
        return f"incident:{sighting.incident_id}"
    return f"post:{sighting.post_id}"


def plan(
    sighting: Sighting,
    state: AlertState | None,
    settings: Alerts,
    now: datetime,
    timezone: str,
) -> Plan | None:
    """Return what a newly graded post calls for, or None.

    Without an alert for the incident, the post opens one when its level is
    in ``settings.alert_levels``, when it is a grievance flagged as high
    risk, or when it is forecast to go viral and that signal alerts. A
    medium alert waits for the batching window counted from the post's
    appearance, so that a post read long after it appeared (a backfill) is
    not held. With an
    alert, the post updates it for the reasons it brings (see the module).
    An acknowledged alert is still updated, and a closed one only when the
    level rises. Updates wait for the cooldown unless the level rises. Everything
    but a critical alert waits for the end of quiet hours.
    """
    if not sighting.relevant or sighting.kind not in ALERTED_KINDS:
        return None
    if state is None:
        if not _opens(sighting, settings):
            return None
        delay = 0.0 if sighting.level == "critical" else settings.medium_batch_minutes
        appeared = min(now, sighting.posted_at or now)
        send_at = max(now, appeared + timedelta(minutes=delay))
        return Plan(
            True,
            sighting.level,
            (),
            after_quiet(send_at, sighting.level, settings, timezone),
        )
    reasons = update_reasons(sighting, state, settings)
    raised = LEVEL_RAISED in reasons
    if not reasons or (state.status == "closed" and not raised):
        return None
    level = max(sighting.level, state.level, key=LEVEL_RANK.__getitem__)
    send_at = now
    if not raised and state.last_message_at is not None:
        send_at = max(
            now, state.last_message_at + timedelta(minutes=settings.cooldown_minutes)
        )
    return Plan(False, level, reasons, after_quiet(send_at, level, settings, timezone))


def _opens(sighting: Sighting, settings: Alerts) -> bool:
    if sighting.level in settings.alert_levels:
        return True
    if sighting.kind == "grievance" and sighting.high_risk:
        return True
    return sighting.viral and "viral" in settings.signals


def update_reasons(
    sighting: Sighting, state: AlertState, settings: Alerts
) -> tuple[str, ...]:
    """Return why a post of an incident with an alert is worth an update."""
    reasons = []
    if LEVEL_RANK[sighting.level] > LEVEL_RANK[state.level]:
        reasons.append(LEVEL_RAISED)
    if sighting.reach >= 2 * max(state.reach, 1):
        reasons.append(REACH_DOUBLED)
    if sighting.owners > state.owners:
        reasons.append(NEW_OWNER)
    turned = state.kind == "grievance" and sighting.kind == "complaint"
    if turned and "turned_complaint" in settings.signals:
        reasons.append(TURNED_COMPLAINT)
    if sighting.viral and not state.viral and "viral" in settings.signals:
        reasons.append(FORECAST_VIRAL)
    return tuple(reasons)


def merge(pending: Plan, later: Plan) -> Plan:
    """Return one update that carries two updates not sent yet.

    The merged update keeps every reason once, the higher level and the
    earlier time, so that a rise in level is not held back by the update
    already waiting.
    """
    level = max(pending.level, later.level, key=LEVEL_RANK.__getitem__)
    reasons = tuple(dict.fromkeys([*pending.reasons, *later.reasons]))
    return Plan(pending.opens, level, reasons, min(pending.send_at, later.send_at))


def after_quiet(
    moment: datetime, level: str, settings: Alerts, timezone: str
) -> datetime:
    """Return ``moment``, or the end of the quiet hours around it for an alert
    below critical."""
    if level == "critical" or settings.quiet_hours is None:
        return moment
    return quiet_end(moment, settings.quiet_hours, timezone) or moment


def quiet_end(moment: datetime, quiet: QuietHours, timezone: str) -> datetime | None:
    """Return when the quiet hours around ``moment`` end, or None outside them."""
    zone = ZoneInfo(timezone)
    local = moment.astimezone(zone)
    start, end = _clock(quiet.start), _clock(quiet.end)
    now = local.time()
    if start < end:
        inside = start <= now < end
        end_day = local.date()
    else:
        inside = now >= start or now < end
        end_day = local.date() + timedelta(days=1 if now >= start else 0)
    if not inside:
        return None
    return datetime.combine(end_day, end, tzinfo=zone).astimezone(moment.tzinfo)


def _clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def cap_allows(
    recent: Sequence[tuple[datetime, str]],
    level: str,
    now: datetime,
    cap: int,
) -> datetime | None:
    """Return None when a recipient may get a mail of ``level`` now, else when.

    ``recent`` contains the time and level of the mails the recipient got. Within
    the hour before ``now`` at most ``cap`` are allowed, and one more only
    when its level is above all of theirs.
    """
    window = [(sent, lvl) for sent, lvl in recent if now - sent < timedelta(hours=1)]
    if len(window) < cap:
        return None
    if all(LEVEL_RANK[level] > LEVEL_RANK[lvl] for _, lvl in window):
        return None
    oldest = sorted(sent for sent, _ in window)[len(window) - cap]
    return oldest + timedelta(hours=1)


def recipients(
    level: str, root_cause: str | None, settings: Alerts
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return the departments and distinct addresses an alert of ``level`` reaches.

    The level's route comes first, then the departments of the root cause.
    """
    route = settings.routing.get(level)
    departments = list(route.departments) if route else []
    for department in settings.cause_departments.get(root_cause or "", ()):
        if department not in departments:
            departments.append(department)
    addresses = [a for d in departments for a in settings.departments[d].recipients]
    addresses += route.recipients if route else ()
    return tuple(departments), distinct_addresses(addresses)


def distinct_addresses(candidates: Sequence[str]) -> tuple[str, ...]:
    """Return the addresses once each, keeping the first spelling of a mailbox."""
    by_address: dict[str, str] = {}
    for candidate in candidates:
        by_address.setdefault(parseaddr(candidate)[1].lower(), candidate)
    return tuple(by_address.values())


def escalation_due(
    level: str,
    created_at: datetime,
    deadline: datetime | None,
    tiers_done: int,
    now: datetime,
    settings: Alerts,
) -> int | None:
    """Return the index of the escalation tier to tell now, or None.

    The first tier hears of an alert not acknowledged by its deadline; each
    further tier one response time (deadline minus creation) later. Each
    tier is notified once: ``tiers_done`` counts the tiers already notified.
    """
    tiers = settings.escalation.get(level, ())
    if deadline is None or tiers_done >= len(tiers):
        return None
    window = max(deadline - created_at, timedelta(minutes=1))
    if now >= deadline + tiers_done * window:
        return tiers_done
    return None


def ack_token(secret: str, alert_id: int) -> str:
    """Return the signature that makes an acknowledgement link for an alert."""
    message = f"ack:{alert_id}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def ack_token_valid(secret: str, alert_id: int, token: str) -> bool:
    """Return whether ``token`` is the acknowledgement signature of an alert."""
    # compare_digest takes str only when it is ASCII; a link may carry anything.
    if not secret or not token.isascii():
        return False
    return hmac.compare_digest(ack_token(secret, alert_id), token)


def ack_url(review_url: str, secret: str, alert_id: int) -> str | None:
    """Return the acknowledgement link of an alert on the review page, or None
    when the review page's address or the signing secret is not set."""
    if not review_url.strip() or not secret:
        return None
    token = ack_token(secret, alert_id)
    return f"{review_url.rstrip('/')}/alerts/{alert_id}/ack?token={token}"
