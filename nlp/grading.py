"""Grade grievances and complaints: four factors, a level, a deadline and a reason.

The level follows one rule whose thresholds come from the configured strategy:

- critical: a safety event happened, or public impact or customer identity
  reaches ``critical_single``, or the factor sum reaches ``critical_sum``;
- medium: the sum reaches ``medium_sum``, or public impact or customer
  identity reaches ``medium_single``, or company fault reaches
  ``medium_company_fault``;
- normal otherwise.

A grievance gets a level by the same rule, and is flagged high risk when its
public impact or customer identity is 2 or more, a safety event happened, or it
states a demand (a threat, or owners organising).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from config import STRATEGY_NAMES, Thresholds
from items import (
    FACTOR_NAMES_ZH,
    LEVEL_NAMES_ZH,
    Classification,
    FactorScore,
    Grading,
    Item,
    NormalizedText,
)
from nlp import cues, factors
from nlp.classifier import post_text

GRADED_KINDS = frozenset({"grievance", "complaint"})
STRATEGY_NAMES_ZH = {
    "customer_first": "客户至上",
    "balanced": "平等关系",
    "assertive": "强势理性",
}
HIGH_RISK_FACTOR = 2


class Grader:
    """Grader of classified posts under one strategy's thresholds."""

    def __init__(self, thresholds: Thresholds, strategy: str):
        if strategy not in STRATEGY_NAMES:
            raise ValueError(
                f"unknown strategy {strategy!r}; "
                f"expected one of {', '.join(STRATEGY_NAMES)}"
            )
        missing = {"critical", "medium", "normal"} - set(thresholds.response_hours)
        if missing:
            raise ValueError(
                f"thresholds.response_hours: missing {', '.join(sorted(missing))}"
            )
        self.thresholds = thresholds
        self.strategy = strategy

    def grade(
        self, item: Item, normalized: NormalizedText, classification: Classification
    ) -> Grading | None:
        """Return the grading of a grievance or complaint, or None for other kinds."""
        if classification.kind not in GRADED_KINDS:
            return None
        scores, safety = score_factors(item, normalized, classification)
        return self.from_scores(item, classification, scores, safety)

    def from_scores(
        self,
        item: Item,
        classification: Classification,
        scores: tuple[FactorScore, ...],
        safety: bool,
    ) -> Grading:
        """Return the grading that factor scores imply under this strategy.

        The job calls it when context beyond the post raises a factor.
        """
        level = level_for(scores, safety, self.thresholds)
        high_risk = classification.kind == "grievance" and is_high_risk(
            scores, safety, classification
        )
        return Grading(
            factors=scores,
            level=level,
            strategy=self.strategy,
            deadline=response_deadline(item, self.thresholds.response_hours[level]),
            reason=self.reason(classification.kind, scores, level, safety, high_risk),
            safety=safety,
            high_risk=high_risk,
        )

    def reason(
        self,
        kind: str,
        scores: tuple[FactorScore, ...],
        level: str,
        safety: bool,
        high_risk: bool,
    ) -> str:
        """Write the one-sentence reason an analyst reads for a grading."""
        head = LEVEL_NAMES_ZH[level]
        if kind == "grievance":
            head = f"抱怨{'(高风险)' if high_risk else ''},{head}级"
        drivers = _drivers(scores, level, safety, self.thresholds)
        hours = _format_hours(self.thresholds.response_hours[level])
        strategy = STRATEGY_NAMES_ZH[self.strategy]
        return f"{head}:{','.join(drivers)},{strategy}策略下须{hours}小时内响应"


def score_factors(
    item: Item, normalized: NormalizedText, classification: Classification
) -> tuple[tuple[FactorScore, ...], bool]:
    """Score the four factors in the order of items.FACTORS.

    Also returns whether a safety event actually happened.
    """
    scan = cues.scan(post_text(normalized))
    relayed = factors.is_relayed(item, normalized)
    loss, safety = factors.customer_loss(scan, classification.demands)
    scores = (
        loss,
        factors.company_fault(scan),
        factors.public_impact(item, scan, normalized, classification, relayed),
        factors.customer_identity(item, scan, author_is_customer=not relayed),
    )
    return scores, safety


def level_for(
    scores: tuple[FactorScore, ...], safety: bool, thresholds: Thresholds
) -> str:
    """Return the level that the factor scores imply under ``thresholds``."""
    value = {score.name: score.score for score in scores}
    total = sum(value.values())
    impact, identity = value["public_impact"], value["customer_identity"]
    if (
        safety
        or impact >= thresholds.critical_single
        or identity >= thresholds.critical_single
        or total >= thresholds.critical_sum
    ):
        return "critical"
    if (
        total >= thresholds.medium_sum
        or impact >= thresholds.medium_single
        or identity >= thresholds.medium_single
        or value["company_fault"] >= thresholds.medium_company_fault
    ):
        return "medium"
    return "normal"


def is_high_risk(
    scores: tuple[FactorScore, ...], safety: bool, classification: Classification
) -> bool:
    """Return True for a grievance likely to become a complaint or to spread."""
    value = {score.name: score.score for score in scores}
    return (
        value["public_impact"] >= HIGH_RISK_FACTOR
        or value["customer_identity"] >= HIGH_RISK_FACTOR
        or safety
        or bool(classification.demands)
    )


def _drivers(
    scores: tuple[FactorScore, ...], level: str, safety: bool, thresholds: Thresholds
) -> list[str]:
    """Name the factors that set the level, each with its first evidence."""
    by_name = {score.name: score for score in scores}
    drivers = []
    if safety:
        event = by_name["customer_loss"].evidence
        drivers.append(
            f"发生安全事件({event[0].split(':', 1)[-1] if event else '安全'})"
        )
    floor = {"critical": thresholds.critical_single, "medium": thresholds.medium_single}
    strong = [
        s
        for s in scores
        if s.score >= floor.get(level, 1) and not (safety and s.name == "customer_loss")
    ]
    if not strong:
        strong = [
            s
            for s in scores
            if s.score > 0 and not (safety and s.name == "customer_loss")
        ]
    drivers += [_describe(score) for score in strong]
    total = sum(score.score for score in scores)
    if level != "normal" and not safety and len(strong) > 1:
        drivers.append(f"合计{total}")
    return drivers or ["四项因素均为0"]


def _describe(score: FactorScore) -> str:
    name = FACTOR_NAMES_ZH[score.name]
    if score.evidence:
        return f"{name}{score.score}({score.evidence[0]})"
    return f"{name}{score.score}"


def _format_hours(hours: float) -> str:
    return str(int(hours)) if float(hours).is_integer() else f"{hours:g}"


def response_deadline(item: Item, hours: float) -> datetime | None:
    """Return when the first response is due: ``hours`` after the post appeared.

    A creation time later than the collection time cannot be right, so the
    clock then starts at collection.
    """
    start = item.created_at
    if start is None or (item.collected_at is not None and start > item.collected_at):
        start = item.collected_at
    if start is None:
        return None
    try:
        return start + timedelta(hours=hours)
    except OverflowError:
        return None
