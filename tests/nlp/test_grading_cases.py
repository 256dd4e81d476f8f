"""Grading cases from the product brief, run through both classifiers."""

from __future__ import annotations

import pytest
from conftest import make_item

import config
from nlp import Analyzer

STRATEGIES = ("customer_first", "balanced", "assertive")
LEVEL_ORDER = ("normal", "medium", "critical")


@pytest.fixture(params=["lexicon", "trained"])
def either_analyzer(request) -> Analyzer:
    name = "analyzer" if request.param == "lexicon" else "trained_analyzer"
    return request.getfixturevalue(name)


def grade(analyzer: Analyzer, text: str, **options):
    [assessment] = analyzer.analyse([make_item("启程QC7" + text, **options)])
    assert assessment.grading is not None, assessment.classification
    return assessment.grading


def test_brake_failure_reported_to_regulator_is_critical(either_analyzer):
    grading = grade(
        either_analyzer, "刹车失灵差点撞上护栏，要求退车并赔偿，已经向12315投诉"
    )
    loss = grading.factor("customer_loss")
    assert grading.level == "critical"
    assert grading.safety
    assert loss.score == 3
    assert any("刹车失灵" in evidence for evidence in loss.evidence), loss.evidence


def test_price_and_repeated_repair_raise_loss_and_fault(either_analyzer):
    grading = grade(
        either_analyzer, "车子花了32.8万，开了三个月电池报故障，修了三次还是一样"
    )
    loss = grading.factor("customer_loss")
    fault = grading.factor("company_fault")
    assert loss.score >= 2
    assert any("32.8万" in evidence for evidence in loss.evidence), loss.evidence
    assert fault.score >= 2
    assert any("修了三次" in evidence for evidence in fault.evidence), fault.evidence


@pytest.mark.parametrize(
    "text",
    [
        "中控屏死机两次了，4S店说等升级，希望尽快给个解决方案，我已经打了客服电话投诉",
        "交车延期一个月，销售一直说在排产，我要求按合同赔偿违约金，已向客服投诉",
        "空调不制冷修了两次没修好，花了两千多块，要求厂家承担费用，已向客服投诉",
    ],
)
def test_firmer_strategy_never_grades_higher(brand, text):
    levels = []
    for strategy in STRATEGIES:
        thresholds = config.DEFAULT_STRATEGIES[strategy]
        analyzer = Analyzer(brand, thresholds, strategy)
        # A little engagement, as a post with a few likes has.
        levels.append(LEVEL_ORDER.index(grade(analyzer, text, likes=20).level))
    assert levels == sorted(levels, reverse=True), dict(
        zip(STRATEGIES, levels, strict=True)
    )
    assert levels[0] > levels[-1], "the strategies should not all agree here"
