"""Decide which graded posts become alerts, and for whom.

Pure functions of the item, its assessment and the alert settings: no I/O and
no sender, so every rule can be tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from alerts.policy import distinct_addresses
from config import Alerts
from items import Assessment, Item

ALERTED_KINDS = ("grievance", "complaint")


@dataclass(frozen=True, slots=True)
class AlertDecision:
    """An alert to raise: its level, why, and who receives it."""

    dedup_key: str
    level: str
    kind: str
    high_risk: bool
    departments: tuple[str, ...]
    recipients: tuple[str, ...]


def decide(
    item: Item, assessment: Assessment, settings: Alerts
) -> AlertDecision | None:
    """Return the alert that a graded post calls for, or None.

    A post alerts when it is about the brand, is a grievance or a complaint,
    and its level is one of ``settings.alert_levels``. A grievance flagged as
    high risk alerts at its level even below those levels. Such a grievance is
    about to become a complaint, or is dangerous through its author or its
    reach, and someone should step in before the complaint is filed.
    """
    grading = assessment.grading
    kind = assessment.classification.kind
    if (
        grading is None
        or kind not in ALERTED_KINDS
        or not assessment.relevance.relevant
    ):
        return None
    risky_grievance = kind == "grievance" and grading.high_risk
    if grading.level not in settings.alert_levels and not risky_grievance:
        return None

    departments, recipients = route(grading.level, settings)
    if not recipients:
        return None
    return AlertDecision(
        dedup_key=f"{item.source}/{item.external_id}/{grading.level}",
        level=grading.level,
        kind=kind,
        high_risk=grading.high_risk,
        departments=departments,
        recipients=recipients,
    )


def route(level: str, settings: Alerts) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return the departments and the distinct addresses that a level reaches."""
    route_for_level = settings.routing.get(level)
    if route_for_level is None:
        return (), ()
    candidates: list[str] = []
    for name in route_for_level.departments:
        candidates.extend(settings.departments[name].recipients)
    candidates.extend(route_for_level.recipients)
    return tuple(route_for_level.departments), distinct_addresses(candidates)
