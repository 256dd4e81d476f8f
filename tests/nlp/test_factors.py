"""Tests for the company fault score of nlp.factors."""

from __future__ import annotations

import pytest

from nlp import cues, factors


def fault(text):
    return factors.company_fault(cues.scan(text))


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("QC7车机黑屏了,烦死了", 2),
        ("销售电话打了三天没人接", 2),
        ("真的受够了,再也不买了", 1),
        ("QC5异响,后来发现是我自己装的配件", 1),
        ("QC7刚提车就降价了,没有价保", 1),
        ("QC5在路口被人撞了,对方全责", 0),
    ],
)
def test_company_fault_default_and_exceptions(text, score):
    assert fault(text).score == score


def test_company_fault_default_names_defect():
    evidence = fault("QC7车机黑屏了,烦死了").evidence
    assert "故障:黑屏" in evidence
    assert "产品问题:车机" in evidence


def test_company_fault_unclear_without_defect_words():
    assert fault("真的受够了,再也不买了").evidence == ()


def test_company_fault_no_fault_phrase_is_evidence():
    score = fault("QC5在路口被人撞了,对方全责")
    assert score.evidence == ("非企业责任:被人撞",)
