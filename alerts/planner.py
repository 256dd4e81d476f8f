"""Turn the graded posts of a batch into alerts and alert updates to store.

:mod:`alerts.policy` decides for one post at a time. This module walks a
batch in post order and keeps one plan per incident, so the copies of an
incident in one batch make one message. A message not sent yet takes in what
later posts add, instead of being followed by another.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from config import Alerts
from items import Assessment, Item
from storage import KnownAlert, PendingMessage
from storage.alert_store import UPDATE_PREFIX

from . import policy
from .policy import LEVEL_RANK, AlertState, Plan, Sighting

# The short names of the update reasons, stored in a message's reason.
REASON_CODES = {
    policy.LEVEL_RAISED: "level",
    policy.REACH_DOUBLED: "reach",
    policy.NEW_OWNER: "owner",
    policy.TURNED_COMPLAINT: "complaint",
    policy.FORECAST_VIRAL: "viral",
}
_REASONS_BY_CODE = {code: reason for reason, code in REASON_CODES.items()}


@dataclass(frozen=True, slots=True)
class Candidate:
    """A graded post of the batch, with what its incident amounts to so far."""

    post_id: int
    item: Item
    assessment: Assessment
    sighting: Sighting


@dataclass(slots=True)
class IncidentPlan:
    """The message one incident calls for in this batch.

    ``known`` is the incident's stored alert, None when the plan opens one.
    ``plan`` carries the level, the update reasons and the send time. ``shown``
    is the post the message shows: the highest level, the first of them for a
    new alert and the latest for an update. ``state`` is what the message will
    report, kept with the alert for the next post's comparison.
    """

    key: str
    known: KnownAlert | None
    plan: Plan
    shown: Candidate
    state: AlertState
    latest: Sighting

    @property
    def replaces(self) -> int | None:
        """The stored message this one takes the place of, if any."""
        if self.known is None or self.known.pending is None:
            return None
        return self.known.pending.id


def plan_batch(
    candidates: Iterable[Candidate],
    known: Mapping[str, KnownAlert],
    settings: Alerts,
    now: datetime,
    timezone: str,
) -> list[IncidentPlan]:
    """Return one plan per incident that the batch opens or updates an alert for.

    ``known`` maps incident keys (:func:`alerts.policy.incident_key`) to the
    stored alerts. A stored message that is still untouched (see
    :class:`storage.PendingMessage`) is merged with what the batch brings.
    """
    plans: dict[str, IncidentPlan] = {}
    for candidate in candidates:
        sighting = candidate.sighting
        key = policy.incident_key(sighting)
        current = plans.get(key)
        stored = known.get(key)
        if current is not None:
            state = current.state
        elif stored is not None:
            state = state_of(stored)
        else:
            state = None
        step = policy.plan(sighting, state, settings, now, timezone)
        if step is None:
            continue
        if current is None:
            pending = stored.pending if stored is not None else None
            if pending is not None:
                step = policy.merge(_pending_plan(pending, state), step)
            plans[key] = IncidentPlan(
                key=key,
                known=stored,
                plan=step,
                shown=candidate,
                state=_state_after(state, sighting, step),
                latest=sighting,
            )
            continue
        merged = policy.merge(current.plan, step)
        current.plan = merged
        current.state = _state_after(current.state, sighting, merged)
        current.latest = sighting
        if _shows_better(candidate, current.shown, opens=merged.opens):
            current.shown = candidate
    return list(plans.values())


def state_of(stored: KnownAlert) -> AlertState:
    """Return what a stored alert's last message reported."""
    alert = stored.alert
    return AlertState(
        level=alert.level,
        kind=alert.kind,
        reach=alert.reach,
        owners=alert.owners,
        viral=alert.viral,
        status=alert.status,
        last_message_at=alert.last_message_at,
    )


def _pending_plan(pending: PendingMessage, state: AlertState | None) -> Plan:
    level = state.level if state is not None else "normal"
    reasons = reasons_from_codes(pending.reasons)
    return Plan(pending.sequence == 0, level, reasons, pending.send_at)


def _state_after(
    state: AlertState | None, sighting: Sighting, step: Plan
) -> AlertState:
    kind = sighting.kind
    if state is not None and state.kind == "complaint":
        kind = "complaint"
    return AlertState(
        level=step.level,
        kind=kind,
        reach=max(sighting.reach, state.reach if state else 0),
        owners=max(sighting.owners, state.owners if state else 0),
        viral=sighting.viral or (state.viral if state else False),
        status=state.status if state is not None else "open",
        last_message_at=step.send_at,
    )


def _shows_better(candidate: Candidate, shown: Candidate, *, opens: bool) -> bool:
    new = LEVEL_RANK[candidate.sighting.level]
    old = LEVEL_RANK[shown.sighting.level]
    return new > old or (new == old and not opens)


def reason_text(reasons: Sequence[str]) -> str:
    """Return the stored reason of a message: "new" or the update's reasons."""
    if not reasons:
        return "new"
    return UPDATE_PREFIX + "+".join(REASON_CODES[r] for r in reasons)


def reasons_from_codes(codes: Sequence[str]) -> tuple[str, ...]:
    """Return the update reasons named by stored short names, unknown ones left out."""
    return tuple(_REASONS_BY_CODE[c] for c in codes if c in _REASONS_BY_CODE)


def delivery_times(
    recipients: Sequence[str],
    level: str,
    send_at: datetime,
    recent: Sequence[tuple[int, str, datetime, str]],
    cap: int,
    *,
    replaced: PendingMessage | None = None,
) -> dict[str, datetime]:
    """Return when each mail recipient may get a message of ``level``.

    ``recent`` lists (message id, recipient, time, level) of the mail sent or
    due around ``send_at``. Only the mail due by ``send_at`` counts, so that a
    message is not pushed behind mail planned for later. A recipient at the
    hourly cap waits until the cap allows (see
    :func:`alerts.policy.cap_allows`). A message that replaces ``replaced``
    keeps each recipient's place, and that message's mail is not counted.
    """
    leave_out = replaced.id if replaced is not None else None
    kept = replaced.due if replaced is not None else {}
    by_recipient: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for message_id, recipient, moment, sent_level in recent:
        if message_id != leave_out and moment <= send_at:
            by_recipient[recipient.lower()].append((moment, sent_level))
    times = {}
    for recipient in recipients:
        key = recipient.lower()
        later = policy.cap_allows(by_recipient.get(key, []), level, send_at, cap)
        moment = send_at if later is None else max(send_at, later)
        if key in kept:
            moment = min(moment, kept[key])
        times[recipient] = moment
    return times
