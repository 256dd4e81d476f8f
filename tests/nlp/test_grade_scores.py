"""Grading figures: levels derived from labels, per-level scores, factor agreement."""

from __future__ import annotations

from items import (
    Assessment,
    Classification,
    FactorScore,
    Grading,
    NormalizedText,
    Relevance,
)
from nlp.grade_scores import grading_figures, true_level


def factors(loss=0, fault=0, impact=0, identity=0) -> dict[str, int]:
    return {
        "customer_loss": loss,
        "company_fault": fault,
        "public_impact": impact,
        "customer_identity": identity,
    }


def assessed(kind: str, level: str | None, loss=0, fault=0) -> Assessment:
    grading = None
    if level is not None:
        scores = (
            FactorScore("customer_loss", loss),
            FactorScore("company_fault", fault),
            FactorScore("public_impact", 0),
            FactorScore("customer_identity", 0),
        )
        grading = Grading(
            factors=scores,
            level=level,
            strategy="balanced",
            deadline=None,
            reason="",
        )
    return Assessment(
        NormalizedText(text="x"),
        Relevance(relevant=True),
        Classification(kind=kind, confidence=0.9),
        grading,
    )


def test_complaint_level_is_taken_from_label():
    label = {"kind": "complaint", "level": "medium", "factors": factors()}

    assert true_level(label) == "medium"


def test_grievance_level_follows_from_factors():
    calm = {"kind": "grievance", "factors": factors(loss=1)}
    unsafe = {"kind": "grievance", "factors": factors(loss=3), "safety": True}

    assert true_level(calm) == "normal"
    assert true_level(unsafe) == "critical"


def test_other_kinds_have_no_level():
    assert true_level({"kind": "praise", "factors": None}) is None


def test_figures_count_levels_and_factors():
    labels = [
        {"kind": "complaint", "level": "medium", "factors": factors(2, 2)},
        {"kind": "complaint", "level": "critical", "factors": factors(3, 1)},
        {"kind": "grievance", "factors": factors(loss=1)},
        {"kind": "neutral", "factors": None},
    ]
    assessments = [
        assessed("complaint", "medium", loss=2, fault=0),
        assessed("complaint", "medium", loss=3, fault=1),
        assessed("neutral", None),
        assessed("neutral", None),
    ]

    figures = grading_figures(labels, assessments)

    assert figures.support == 3
    assert figures.accuracy == 1 / 3
    assert figures.complaint_accuracy == 1 / 2
    assert figures.per_level["medium"].precision == 1 / 2
    assert figures.per_level["critical"].recall == 0.0
    assert figures.factors["customer_loss"] == 1.0
    assert figures.factors["company_fault"] == 2 / 3
    assert figures.factor_support == 3
