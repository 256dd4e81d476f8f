"""Grading figures of an evaluation: levels and factors against the labels.

A labelled complaint carries its level. A labelled grievance carries its
factors and safety flag, and its level follows from them by the level rule
under the balanced stance, the stance the label sets were graded under. A
post that the analyzer did not grade counts with level None and every factor
at 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import config
from items import FACTORS, LEVELS, Assessment, FactorScore
from nlp.grading import level_for

GRADED_KINDS = ("grievance", "complaint")


@dataclass(frozen=True)
class LevelScores:
    """Precision, recall and F1 of one level, with its number of true posts."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class GradingFigures:
    """Level and factor agreement over labelled grievances and complaints.

    ``accuracy`` counts every labelled grievance and complaint,
    ``complaint_accuracy`` the complaints alone. ``factors`` maps each factor
    to the share of posts scored within one point of the label. Shares are
    None when the data has no such post.
    """

    accuracy: float | None
    complaint_accuracy: float | None
    support: int
    per_level: dict[str, LevelScores]
    factors: dict[str, float | None]
    factor_support: int


def true_level(label: Mapping[str, Any]) -> str | None:
    """Return a labelled post's level: given for complaints, derived for grievances."""
    if label.get("kind") == "complaint" and label.get("level") in LEVELS:
        return label["level"]
    factors = label.get("factors")
    if label.get("kind") not in GRADED_KINDS or not isinstance(factors, Mapping):
        return None
    scores = tuple(FactorScore(name, int(factors.get(name) or 0)) for name in FACTORS)
    balanced = config.DEFAULT_STRATEGIES["balanced"]
    return level_for(scores, bool(label.get("safety")), balanced)


def grading_figures(
    labels: Sequence[Mapping[str, Any]], assessments: Sequence[Assessment]
) -> GradingFigures:
    """Compare predicted levels and factors with the labels of graded posts."""
    pairs, complaint_hits, complaints = [], 0, 0
    for label, assessment in zip(labels, assessments, strict=True):
        truth = true_level(label)
        if truth is None:
            continue
        predicted = assessment.grading.level if assessment.grading else None
        pairs.append((truth, predicted))
        if label["kind"] == "complaint":
            complaints += 1
            complaint_hits += predicted == truth
    hits = sum(truth == predicted for truth, predicted in pairs)
    factors, factor_support = _factor_agreement(labels, assessments)
    return GradingFigures(
        accuracy=hits / len(pairs) if pairs else None,
        complaint_accuracy=complaint_hits / complaints if complaints else None,
        support=len(pairs),
        per_level={level: _level_scores(pairs, level) for level in LEVELS},
        factors=factors,
        factor_support=factor_support,
    )


def _level_scores(pairs: Sequence[tuple[str, str | None]], level: str) -> LevelScores:
    true_positive = sum(t == level and p == level for t, p in pairs)
    predicted = sum(p == level for _, p in pairs)
    actual = sum(t == level for t, _ in pairs)
    precision = true_positive / predicted if predicted else 0.0
    recall = true_positive / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return LevelScores(precision, recall, f1, actual)


def _factor_agreement(
    labels: Sequence[Mapping[str, Any]], assessments: Sequence[Assessment]
) -> tuple[dict[str, float | None], int]:
    within = dict.fromkeys(FACTORS, 0)
    total = 0
    for label, assessment in zip(labels, assessments, strict=True):
        factors = label.get("factors")
        if label.get("kind") not in GRADED_KINDS or not isinstance(factors, Mapping):
            continue
        total += 1
        predicted = _predicted_factors(assessment)
        for name in FACTORS:
            within[name] += abs(predicted[name] - int(factors.get(name) or 0)) <= 1
    shares = {name: within[name] / total if total else None for name in FACTORS}
    return shares, total


def _predicted_factors(assessment: Assessment) -> dict[str, int]:
    if assessment.grading is None:
        return dict.fromkeys(FACTORS, 0)
    return {score.name: score.score for score in assessment.grading.factors}
