"""Chat-robot cards of alerts: built from a graded post, stored as JSON.

The store keeps a card with its message as plain JSON values, so that a
robot delivery tried later, or by another process, shows the card as it was
when the alert was raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from alerts.robots import AlertCard
from alerts.rules import AlertDecision
from items import FACTOR_NAMES_ZH, Assessment, Item


def card_for(
    decision: AlertDecision,
    item: Item,
    assessment: Assessment,
    *,
    post_id: int,
    review_url: str,
    problem: tuple[str, int] | None = None,
) -> AlertCard:
    """Build the robot card of an alert about a graded post.

    ``problem`` is the label of the post's problem and how many people
    reported it, when the post belongs to one.
    """
    grading = assessment.grading
    assert grading is not None, "only graded posts alert"
    factors = tuple(
        (FACTOR_NAMES_ZH[factor.name], factor.score, "；".join(factor.evidence))
        for factor in grading.factors
    )
    label, people = problem if problem is not None else (None, None)
    return AlertCard(
        level=decision.level,
        kind=decision.kind,
        title=item.title or assessment.normalized.text or item.text,
        reason=grading.reason,
        factors=factors,
        excerpt=item.text,
        author=item.author.name,
        followers=item.author.followers,
        reposts=item.engagement.reposts,
        post_url=item.url,
        review_url=f"{review_url.rstrip('/')}/posts/{post_id}",
        deadline=grading.deadline,
        problem=label,
        problem_people=people,
    )


def card_to_json(card: AlertCard) -> dict[str, Any]:
    """Return the fields of ``card`` as JSON values, the deadline in ISO 8601."""
    return {
        "level": card.level,
        "kind": card.kind,
        "title": card.title,
        "reason": card.reason,
        "factors": [list(factor) for factor in card.factors],
        "excerpt": card.excerpt,
        "author": card.author,
        "followers": card.followers,
        "reposts": card.reposts,
        "post_url": card.post_url,
        "review_url": card.review_url,
        "deadline": None if card.deadline is None else card.deadline.isoformat(),
        "problem": card.problem,
        "problem_people": card.problem_people,
        "update": card.update,
    }


def card_from_json(data: Mapping[str, Any]) -> AlertCard:
    """Rebuild a card from :func:`card_to_json` values.

    Raises ValueError when a field is missing or invalid.
    """
    try:
        deadline = data["deadline"]
        return AlertCard(
            level=data["level"],
            kind=data["kind"],
            title=data["title"],
            reason=data["reason"],
            factors=tuple(
                (str(name), int(score), str(evidence))
                for name, score, evidence in data["factors"]
            ),
            excerpt=data["excerpt"],
            author=data["author"],
            followers=data["followers"],
            reposts=data["reposts"],
            post_url=data["post_url"],
            review_url=data["review_url"],
            deadline=None if deadline is None else datetime.fromisoformat(deadline),
            problem=data.get("problem"),
            problem_people=data.get("problem_people"),
            update=bool(data.get("update", False)),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"invalid stored robot card: {exc!r}") from None
