"""Write the messages that incident plans call for, ready for the outbox.

A plan (see :mod:`alerts.planner`) opens an alert or updates one. This module
composes the mail and the robot card, chooses the recipients by level and root
cause, keeps each mail recipient within the hourly cap, and returns the
:class:`storage.NewAlert` and :class:`storage.AlertUpdate` records that the job
saves with the batch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from config import Alerts
from storage import AlertUpdate, IncidentFacts, NewAlert, NewDelivery, NewMessage

from . import policy
from .cards import card_for, card_to_json
from .mail import Thread, compose, subject_line
from .outbox import bare_addresses, mail_channel
from .planner import IncidentPlan, delivery_times, reason_text
from .robots import robots_for_level
from .rules import AlertDecision


@dataclass(frozen=True, slots=True)
class IncidentSize:
    """How many posts an incident has, and its problem's label and people."""

    posts: int = 1
    problem: str | None = None
    people: int = 0


@dataclass
class Written:
    """The alerts to open and the updates to stored alerts, for one save."""

    alerts: list[NewAlert]
    updates: list[AlertUpdate]


class AlertWriter:
    """Compose the messages of incident plans under the alert settings.

    ``recent_mail`` returns (message id, recipient, time, level) for the mail
    deliveries sent or due since a time (see :meth:`storage.Store.recent_mail`).
    """

    def __init__(
        self,
        settings: Alerts,
        timezone: str,
        recent_mail: Callable[[Sequence[str], datetime], list],
    ) -> None:
        self.settings = settings
        self.timezone = timezone
        self.recent_mail = recent_mail

    def write(
        self,
        plans: Sequence[IncidentPlan],
        sizes: dict[str, IncidentSize],
        now: datetime,
    ) -> Written:
        """Return the alerts and updates of ``plans``; ``sizes`` by incident key."""
        written = Written([], [])
        routes = {plan.key: self._route(plan) for plan in plans}
        addresses = {
            a
            for _, recipients, _ in routes.values()
            for a in bare_addresses(recipients)
        }
        recent = self.recent_mail(sorted(addresses), now - timedelta(hours=1))
        for plan in plans:
            _, recipients, robots = routes[plan.key]
            if not recipients and not robots:
                continue
            size = sizes.get(plan.key, IncidentSize())
            deliveries = self._deliveries(plan, recipients, robots, recent)
            if plan.known is None:
                written.alerts.append(
                    self._new_alert(plan, routes, size, deliveries, now)
                )
            else:
                written.updates.append(
                    self._update(plan, routes, size, deliveries, now)
                )
        return written

    def _route(
        self, plan: IncidentPlan
    ) -> tuple[tuple[str, ...], tuple[str, ...], tuple]:
        root_cause = plan.latest.root_cause
        if root_cause is None and plan.known is not None:
            root_cause = plan.known.alert.root_cause
        departments, recipients = policy.recipients(
            plan.plan.level, root_cause, self.settings
        )
        robots = tuple(robots_for_level(self.settings.robots, plan.plan.level))
        return departments, recipients, robots

    def _deliveries(
        self,
        plan: IncidentPlan,
        recipients: tuple[str, ...],
        robots: tuple,
        recent: list,
    ) -> tuple[NewDelivery, ...]:
        """Return the deliveries of a plan's message, each at its earliest time,
        and count its mail in ``recent`` for the plans after it."""
        send_at = plan.plan.send_at
        # Deliveries and the cap go by bare address, as the SMTP envelope does.
        recipients = bare_addresses(recipients)
        pending = plan.known.pending if plan.known is not None else None
        times = delivery_times(
            recipients,
            plan.plan.level,
            send_at,
            recent,
            self.settings.max_per_recipient_hour,
            replaced=pending if plan.replaces is not None else None,
        )
        # A mail the cap moved is still held by quiet hours.
        times = {
            r: policy.after_quiet(t, plan.plan.level, self.settings, self.timezone)
            for r, t in times.items()
        }
        channel = mail_channel(self.settings)
        deliveries = [NewDelivery(channel, r, not_before=times[r]) for r in recipients]
        deliveries += [
            NewDelivery(robot.kind, robot.name, not_before=send_at) for robot in robots
        ]
        recent.extend((-1, r, times[r], plan.plan.level) for r in recipients)
        return tuple(deliveries)

    def _decision(self, plan: IncidentPlan, routes: dict) -> AlertDecision:
        departments, recipients, _ = routes[plan.key]
        grading = plan.shown.assessment.grading
        return AlertDecision(
            dedup_key=plan.key,
            level=plan.plan.level,
            kind=plan.state.kind,
            high_risk=bool(grading and grading.high_risk),
            departments=departments,
            recipients=recipients,
        )

    def _facts(self, plan: IncidentPlan) -> IncidentFacts:
        root_cause = plan.latest.root_cause
        if root_cause is None and plan.known is not None:
            root_cause = plan.known.alert.root_cause
        return IncidentFacts(
            incident_id=plan.latest.incident_id,
            root_cause=root_cause,
            reach=plan.state.reach,
            owners=plan.state.owners,
            viral=plan.state.viral,
            last_message_at=plan.plan.send_at,
        )

    def _new_alert(
        self,
        plan: IncidentPlan,
        routes: dict,
        size: IncidentSize,
        deliveries: tuple[NewDelivery, ...],
        now: datetime,
    ) -> NewAlert:
        decision = self._decision(plan, routes)
        shown = plan.shown

        def first_message(alert_id: int) -> NewMessage:
            thread = Thread(
                key=plan.key,
                ack_url=self._ack_url(alert_id),
                problem=size.problem,
                people=size.people,
                posts=size.posts,
                reach=plan.state.reach,
            )
            return self._message(plan, decision, thread, deliveries, now, size)

        return NewAlert(
            post_id=shown.post_id,
            dedup_key=plan.key,
            level=decision.level,
            kind=decision.kind,
            subject=subject_line(decision, shown.item, shown.assessment),
            message=first_message,
            deadline=shown.assessment.grading.deadline,
            state=self._facts(plan),
        )

    def _update(
        self,
        plan: IncidentPlan,
        routes: dict,
        size: IncidentSize,
        deliveries: tuple[NewDelivery, ...],
        now: datetime,
    ) -> AlertUpdate:
        known = plan.known
        assert known is not None
        alert = known.alert
        decision = self._decision(plan, routes)

        # A replaced message leaves the thread, so the update follows the one before.
        thread_ids = known.message_ids
        if plan.replaces is not None:
            thread_ids = thread_ids[:-1]
        common = {
            "ack_url": self._ack_url(alert.id),
            "problem": size.problem,
            "people": size.people,
            "posts": size.posts,
            "reach": plan.state.reach,
        }
        if plan.plan.opens or not thread_ids:
            thread = Thread(key=plan.key, **common)
        else:
            stamp = now.strftime("%Y%m%d%H%M%S%f")
            thread = Thread(
                key=f"{plan.key}/{len(thread_ids)}/{stamp}",
                reasons=plan.plan.reasons,
                parent=thread_ids[-1],
                references=thread_ids,
                subject=known.first_subject,
                **common,
            )
        message = self._message(plan, decision, thread, deliveries, now, size)

        # A raised level brings the earlier deadline of the higher level.
        deadline = alert.deadline
        raised = policy.LEVEL_RANK[plan.plan.level] > policy.LEVEL_RANK[alert.level]
        new_deadline = plan.shown.assessment.grading.deadline
        if raised and new_deadline is not None:
            deadline = new_deadline if deadline is None else min(deadline, new_deadline)
        return AlertUpdate(
            alert_id=alert.id,
            follows=thread_ids[-1] if thread_ids else None,
            message=message,
            level=plan.plan.level,
            kind=plan.state.kind,
            deadline=deadline,
            state=self._facts(plan),
            replaces=plan.replaces,
        )

    def _message(
        self,
        plan: IncidentPlan,
        decision: AlertDecision,
        thread: Thread,
        deliveries: tuple[NewDelivery, ...],
        now: datetime,
        size: IncidentSize,
    ) -> NewMessage:
        shown = plan.shown
        composed = compose(
            decision,
            shown.item,
            shown.assessment,
            post_id=shown.post_id,
            sender=self.settings.sender,
            review_url=self.settings.review_url,
            timezone=self.timezone,
            now=now,
            thread=thread,
        )
        problem = (size.problem, size.people) if size.problem else None
        card = card_for(
            decision,
            shown.item,
            shown.assessment,
            post_id=shown.post_id,
            review_url=self.settings.review_url,
            problem=problem,
        )
        reasons = () if plan.plan.opens else plan.plan.reasons
        if reasons:
            card = replace(card, update=True)
        return NewMessage(
            reason=reason_text(reasons),
            message_id=composed.message_id,
            subject=composed.subject,
            message=composed.message,
            deliveries=deliveries,
            in_reply_to=thread.parent,
            references=" ".join(thread.references) or None,
            card=card_to_json(card),
        )

    def _ack_url(self, alert_id: int) -> str | None:
        """Return the signed acknowledgement link of an alert, or None when the
        secret or the review page's address is not set."""
        secret = os.environ.get(self.settings.ack_secret_env, "")
        return policy.ack_url(self.settings.review_url, secret, alert_id)
