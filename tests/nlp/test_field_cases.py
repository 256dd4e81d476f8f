"""Hard field cases: competitor models, emoticons, feed markup, negation.

Cases the classifier gets wrong today are marked xfail(strict=True), so each
one fails loudly once it is fixed and the mark must go.
"""

from __future__ import annotations

import pytest
from conftest import make_item

from nlp.evaluation import analyse
from nlp.normalize import normalize
from nlp.segment import Segmenter

LEXICON_MISS = pytest.mark.xfail(
    strict=True,
    reason="the lexicon classifier calls short venting and plain fault reports "
    "without its cue phrases neutral",
)


def kind_of(analyzer, text: str) -> str:
    """Classify a post as if it were about the monitored brand."""
    [assessment] = analyse(analyzer, [make_item(text)], assume_relevant=True)
    return assessment.classification.kind


@pytest.mark.parametrize(
    ("text", "competitor"),
    [
        ("小米ＳＵ７高速刹车异响", "小米"),
        ("问界Ｍ7 车机又卡死", "问界"),
        ("SU7 Ultra 提车三天就漏水", "小米"),
        ("理想l9 二排屏幕黑了", "理想"),
        ("蔚來ES6車機當機，剎車也有異音，客服說無法處理", "蔚来"),
        ("問界M7 續航縮水", "问界"),
    ],
)
def test_competitor_found_however_typed(analyzer, text, competitor):
    [assessment] = analyzer.analyse([make_item(text)])

    assert competitor in assessment.relevance.competitors
    assert assessment.relevance.relevant is False


def test_competitor_model_recorded(analyzer):
    [assessment] = analyzer.analyse([make_item("小米ＳＵ７高速刹车异响")])

    assert "SU7" in assessment.relevance.models


@pytest.mark.parametrize(
    ("text", "code", "count", "words"),
    [
        ("[怒][怒]车机第三次黑屏了", "怒", 2, ["车机", "第三次", "黑屏", "了"]),
        ("新车真香[心][心]", "心", 2, ["新车", "真", "香"]),
        ("[doge]这售后服务绝了", "doge", 1, ["这", "售后服务", "绝", "了"]),
    ],
)
def test_emoticons_become_counts(brand, text, code, count, words):
    normalized = normalize(text)

    assert normalized.emoticons == {code: count}
    assert Segmenter.for_brand(brand)(normalized.text) == words


def test_feed_title_markup_cleaned():
    title = '<img alt=[围观] src="x"/> - 转发'
    with_spaces = normalize(f"{title} 车机黑屏了 O网页链接\u200b\u200b\u200b")
    without = normalize(f"{title} 车机黑屏了 O网页链接")

    assert with_spaces.text == "车机黑屏了"
    assert with_spaces.emoticons == {"围观": 1}
    assert with_spaces == without


# The kind each case must get. The configured classifier (trained) gets every
# one. The lexicon classifier, kept as the fallback, misses the cases marked.
KIND_CASES = [
    ("无语，真生气", "grievance", "lexicon"),
    ("不是不满意，就是觉得不值这个价", "grievance", "lexicon"),
    ("我今天很不高兴", "grievance", None),
    ("不投诉了，直接起诉", "complaint", None),
    ("蔚來ES6車機當機，剎車也有異音，客服說無法處理", "grievance", "lexicon"),
    ("問界M7 續航縮水", "grievance", None),
]


def kind_cases():
    for name in ("trained", "lexicon"):
        for text, kind, missed_by in KIND_CASES:
            marks = [LEXICON_MISS] if missed_by == name else []
            yield pytest.param(name, text, kind, marks=marks, id=f"{name}-{text}")


@pytest.fixture(scope="module")
def analyzers(analyzer, trained_analyzer):
    return {"lexicon": analyzer, "trained": trained_analyzer}


@pytest.mark.parametrize(("name", "text", "kind"), list(kind_cases()))
def test_kind_cases(analyzers, name, text, kind):
    assert kind_of(analyzers[name], text) == kind


@pytest.mark.parametrize("name", ["trained", "lexicon"])
def test_no_brake_problem_tagged(analyzers, name):
    [assessment] = analyse(
        analyzers[name],
        [make_item("并不是刹车问题，是脚垫卡住了")],
        assume_relevant=True,
    )

    assert assessment.classification.kind != "complaint"
    assert not any("刹车" in cue.text for cue in assessment.classification.cues)


def test_traditional_text_kept_for_analysts(trained_analyzer):
    text = "蔚來ES6車機當機，剎車也有異音，客服說無法處理"
    item = make_item(text)
    [assessment] = trained_analyzer.analyse([item])

    assert item.text == text
    assert "蔚来" in assessment.relevance.competitors
    assert "ES6" in assessment.relevance.models


@pytest.mark.parametrize(
    "text",
    [
        "启程汽车QC7自燃",
        "启程汽车QC5起火了",
        "启程汽车QC7电池起火，车主受伤",
        "启程汽车QC9车主:高速上安全气囊没弹出,人受伤住院",
        "启程汽车的QC7在小区地库自燃,烧了三辆车",
    ],
)
def test_safety_reports_graded_critical(trained_analyzer, text):
    [assessment] = trained_analyzer.analyse([make_item(text)])

    assert assessment.classification.kind in ("grievance", "complaint")
    assert assessment.grading.level == "critical"
