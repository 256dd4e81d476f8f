"""Tests for nlp.grading, nlp.factors and nlp.amounts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import CREATED, make_item

from config import DEFAULT_STRATEGIES, Thresholds
from items import Classification, FactorScore
from nlp.amounts import find_amounts, parse_chinese_number
from nlp.grading import Grader, level_for


def factor(grading, name):
    return grading.factor(name).score


# Money


@pytest.mark.parametrize(
    ("text", "yuan"),
    [
        ("损失30万", 300_000),
        ("多收了2.5万元", 25_000),
        ("白花了八千块", 8_000),
        ("维修报价5k", 5_000),
        ("贬值¥12,000", 12_000),
        ("亏了1.2w", 12_000),
        ("赔了两万五", 25_000),
        ("补差价一万二", 12_000),
        ("花了500元", 500),
        ("扣了 RMB 3000", 3_000),
        ("损失三十万", 300_000),
    ],
)
def test_money_amounts_parsed(text, yuan):
    amounts = find_amounts(text)
    assert [amount.yuan for amount in amounts] == [yuan]


@pytest.mark.parametrize(
    "text",
    [
        "开了3万公里",
        "5k粉丝",
        "QC5",
        "打12315",
        "跑了5km",
        "等了三天",
        "第三次",
        "千万别买",
        "万一起火",
        "路上万一出事",
    ],
)
def test_numbers_that_are_not_money(text):
    assert find_amounts(text) == []


@pytest.mark.parametrize(("text", "yuan"), [("亏了几万", 10_000), ("好几千", 1_000)])
def test_rough_counts_are_money(text, yuan):
    assert [amount.yuan for amount in find_amounts(text)] == [yuan]


@pytest.mark.parametrize(
    ("numeral", "value"),
    [
        ("八千", 8000),
        ("两万五", 25000),
        ("三十万", 300000),
        ("一万二千", 12000),
        ("五百", 500),
    ],
)
def test_chinese_numerals(numeral, value):
    assert parse_chinese_number(numeral) == value


def test_chinese_numeral_rejects_other_text():
    assert parse_chinese_number("三块") is None


# Customer loss


def test_safety_event_is_loss_three_and_safety(assess):
    grading = assess("QC7高速上刹车失灵,差点追尾,吓死了").grading
    assert factor(grading, "customer_loss") == 3
    assert grading.safety
    assert any("刹车失灵" in e for e in grading.factor("customer_loss").evidence)


def test_hypothetical_event_is_only_a_hazard(assess):
    grading = assess("QC7电池包磕了一下,万一起火怎么办,太危险了").grading
    assert factor(grading, "customer_loss") == 2
    assert not grading.safety


def test_money_loss_bands(assess):
    cases = {
        "QC5刚提车就降价2.5万,太坑了": 2,
        "QC5保养被多收了300元,真离谱": 1,
        "QC5车机坏了,维修自费八千块,无语": 2,
    }
    for text, expected in cases.items():
        assert factor(assess(text).grading, "customer_loss") == expected, text


def test_car_price_is_not_a_loss(assess):
    grading = assess("30万落地的QC9,车机天天死机,失望").grading
    assert factor(grading, "customer_loss") < 3


def test_large_money_loss_alone_is_not_critical(assess):
    text = "我们网约车公司9台QC7同时趴窝,已经打400投诉,要求赔偿停运损失"
    result = assess(text, role="fleet_operator", followers=300)
    grading = result.grading
    assert result.classification.kind == "complaint"
    assert factor(grading, "customer_loss") == 3
    assert factor(grading, "customer_identity") == 2
    assert not grading.safety
    assert grading.level == "medium"


def test_near_collision_grievance_is_critical(assess):
    text = "QC9车道保持突然把方向往右拽,我用力回正才没撞上隔离带,还没顾上去店里"
    result = assess(text)
    assert result.classification.kind == "grievance"
    assert result.grading.safety
    assert result.grading.level == "critical"


def test_workshop_damage_is_not_safety(assess):
    text = "服务中心保养时把我QC7的前杠撞了,还瞒着我,已经打400投诉要求赔偿"
    result = assess(text)
    assert result.classification.kind == "complaint"
    assert not result.grading.safety
    assert factor(result.grading, "customer_loss") == 2
    assert factor(result.grading, "company_fault") == 3
    assert result.grading.level == "medium"


def test_unusable_car_and_health(assess):
    assert (
        factor(assess("QC9趴窝三天了,拖车都等了半天,烦死").grading, "customer_loss")
        == 2
    )
    assert (
        factor(assess("QC5新车甲醛超标,孩子坐车就头晕,气人").grading, "customer_loss")
        == 2
    )


# Company fault


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("QC5店里拒绝三包,说是人为损坏,太恶心", 3),
        ("买到的QC7竟然是翻新车,门店一直隐瞒", 3),
        ("QC7异响修了三次都没修好,失望", 2),
        ("QC9销售态度恶劣,爱答不理", 2),
        ("服务区的第三方充电桩坏了一半,开QC7出门排了一小时,心累", 0),
    ],
)
def test_company_fault_anchors(assess, text, score):
    assert factor(assess(text).grading, "company_fault") == score


# Public impact


@pytest.mark.parametrize(
    ("likes", "expected", "evidence"),
    [
        (3, 0, "互动3"),
        (50, 1, "互动50"),
        (2_000, 2, "互动2000"),
        (21_000, 3, "互动2.1万"),
    ],
)
def test_interaction_bands(assess, likes, expected, evidence):
    grading = assess("QC7车机又黑屏了,服了", likes=likes).grading
    assert factor(grading, "public_impact") == expected
    assert evidence in grading.factor("public_impact").evidence


def test_complaint_platform_entry(assess):
    text = "投诉对象:启程汽车 QC5 投诉要求:退还定金"
    assert factor(assess(text, platform="heimao").grading, "public_impact") == 1
    followed = assess(text, platform="heimao", likes=350).grading
    assert factor(followed, "public_impact") == 1
    assert "互动350" in followed.factor("public_impact").evidence


def test_similar_entries_stated_in_text(assess):
    text = "投诉对象:启程汽车 QC5 投诉要求:修好空调 本平台同类投诉已有三百多条"
    grading = assess(text, platform="heimao", likes=40).grading
    assert factor(grading, "public_impact") == 2


def test_owners_counted_with_model_code(assess):
    text = "今天我们35位QC7车主一起到市场监管局递交了投诉材料,要求补偿差价"
    result = assess(text, likes=30)
    assert result.classification.kind == "complaint"
    assert factor(result.grading, "public_impact") == 3
    assert result.grading.level == "critical"


def test_trending_and_group_action(assess):
    trending = assess("#启程QC7自燃# 上热搜了,我的车也冒过烟,太吓人").grading
    assert factor(trending, "public_impact") == 3
    group = assess("QC5车主群里十几个车主都是同样的异响问题,太坑").grading
    assert factor(group, "public_impact") == 2


def test_offline_protest_is_impact_three(assess):
    result = assess("QC7车主今天在门店拉横幅维权,要求退车")
    assert result.classification.kind == "complaint"
    assert factor(result.grading, "public_impact") == 3
    assert result.grading.level == "critical"


# Customer identity


@pytest.mark.parametrize(
    ("options", "score"),
    [
        ({"followers": 2_000_000}, 3),
        ({"verified": "government", "followers": 5_000}, 3),
        ({"role": "journalist", "followers": 5_000}, 3),
        ({"role": "lawyer", "followers": 800}, 2),
        ({"role": "kol", "followers": 300_000}, 2),
        ({"verified": "personal", "followers": 800}, 1),
        ({"followers": 20_000}, 1),
        ({"followers": 50}, 0),
    ],
)
def test_author_identity(assess, options, score):
    grading = assess("我的QC7车机又黑屏了,服了", **options).grading
    assert factor(grading, "customer_identity") == score


def test_self_described_lawyer_grievance_is_high_risk(assess):
    result = assess("本人律师,QC7开了半年,隔音真的配不上这个价")
    assert result.classification.kind == "grievance"
    assert factor(result.grading, "customer_identity") == 2
    assert result.grading.high_risk


def test_repost_uses_reach_not_reposter_identity(assess):
    text = "大家看看//@车主小刘:QC7刹车异响修了三次没修好,已经打400投诉要求换车"
    result = assess(text, role="kol", followers=2_000_000, likes=20_000, reposts=8_000)
    grading = result.grading
    assert result.classification.kind == "complaint"
    assert factor(grading, "customer_identity") == 0
    assert factor(grading, "public_impact") == 3
    assert grading.level == "critical"


def test_same_complaint_by_ordinary_user_is_lower(assess):
    text = "QC7刹车异响修了三次没修好,已经打400投诉要求换车"
    grading = assess(text, likes=20, comments=5).grading
    assert grading.level in ("normal", "medium")
    assert factor(grading, "public_impact") == 1


# Levels, high risk, deadlines and reasons


def test_safety_complaint_is_critical(assess):
    text = "QC7挂着P挡在坡上自己往前溜了半米,吓出一身汗,已经报警并打了400要求彻查"
    result = assess(text)
    assert result.classification.kind == "complaint"
    assert result.grading.level == "critical"
    assert result.grading.safety
    assert result.grading.deadline == CREATED + timedelta(hours=1)


def test_safety_grievance_is_high_risk(assess):
    result = assess("QC7挂着P挡在坡上自己往前溜了半米,吓出一身汗,还没联系店里")
    assert result.classification.kind == "grievance"
    assert factor(result.grading, "customer_loss") == 3
    assert result.grading.high_risk


def test_threat_grievance_is_high_risk(assess):
    result = assess("QC7充电慢得要命,这周末再没人联系我,我就打12315")
    assert result.grading.high_risk


def test_plain_grievance_is_not_high_risk(assess):
    result = assess("QC7车机又卡了,服了")
    assert result.classification.kind == "grievance"
    assert not result.grading.high_risk
    assert result.grading.level == "normal"


@pytest.mark.parametrize(
    "text", ["QC5提车一个月,很满意", "QC5落地价多少?", "明天启程回老家"]
)
def test_no_grading_for_other_kinds(assess, text):
    assert assess(text).grading is None


def scores(loss, fault, impact, identity):
    values = dict(
        customer_loss=loss,
        company_fault=fault,
        public_impact=impact,
        customer_identity=identity,
    )
    return tuple(FactorScore(name, score) for name, score in values.items())


@pytest.mark.parametrize(
    ("factors", "safety", "expected"),
    [
        ((1, 1, 1, 1), False, ("medium", "normal", "normal")),
        ((2, 2, 1, 0), False, ("medium", "medium", "normal")),
        ((3, 2, 1, 2), False, ("critical", "medium", "medium")),
        ((3, 3, 1, 2), False, ("critical", "critical", "medium")),
        ((0, 3, 0, 0), False, ("medium", "medium", "normal")),
        ((0, 0, 2, 0), False, ("medium", "medium", "medium")),
        ((0, 0, 0, 3), False, ("critical", "critical", "critical")),
        ((0, 0, 3, 0), False, ("critical", "critical", "critical")),
        ((3, 0, 0, 0), True, ("critical", "critical", "critical")),
        ((1, 1, 0, 0), False, ("normal", "normal", "normal")),
    ],
)
def test_level_rule_under_each_strategy(factors, safety, expected):
    strategies = ("customer_first", "balanced", "assertive")
    levels = tuple(
        level_for(scores(*factors), safety, DEFAULT_STRATEGIES[name])
        for name in strategies
    )
    assert levels == expected


@pytest.mark.parametrize(
    ("strategy", "hours"), [("customer_first", 12), ("balanced", 24), ("assertive", 48)]
)
def test_deadline_follows_strategy(strategy, hours):
    grader = Grader(DEFAULT_STRATEGIES[strategy], strategy)
    item = make_item("QC5异响修了三次没修好,已经打400投诉要求退款", likes=2_000)
    classification = Classification(
        "complaint", 0.8, demands=("refund",), channels=("company",)
    )
    from nlp.normalize import normalize

    grading = grader.grade(item, normalize(item.text), classification)
    assert grading.level == "medium"
    assert grading.deadline == CREATED + timedelta(hours=hours)
    assert grading.strategy == strategy


def test_deadline_falls_back_to_collection_time():
    from nlp.normalize import normalize

    grader = Grader(DEFAULT_STRATEGIES["balanced"], "balanced")
    item = make_item("QC7车机又死机了", created_at=None)
    grading = grader.grade(item, normalize(item.text), Classification("grievance", 0.6))
    assert grading.deadline == item.collected_at + timedelta(hours=48)


def test_reason_names_level_strategy_and_evidence(assess):
    text = "QC7高速上刹车失灵,已经打400投诉,要求彻查"
    grading = assess(text, reposts=21_000).grading
    assert grading.reason.startswith("危机:发生安全事件(刹车失灵)")
    assert "公共影响3(互动2.1万)" in grading.reason
    assert grading.reason.endswith("平等关系策略下须1小时内响应")


@pytest.mark.parametrize(
    ("strategy", "ending"),
    [
        ("customer_first", "客户至上策略下须12小时内响应"),
        ("balanced", "平等关系策略下须24小时内响应"),
        ("assertive", "强势理性策略下须48小时内响应"),
    ],
)
def test_reason_names_each_strategy(brand, strategy, ending):
    from nlp import Analyzer

    analyzer = Analyzer(brand, DEFAULT_STRATEGIES[strategy], strategy)
    text = "QC5异响修了三次没修好,已经打400投诉要求退款"
    grading = analyzer.analyse([make_item(text, likes=2_000)])[0].grading
    assert grading.reason.startswith("中等:")
    assert grading.reason.endswith(ending)


def test_grievance_reason_says_grievance(assess):
    grading = assess("QC7充电慢得要命,这周末再没人联系我,我就打12315").grading
    assert grading.reason.startswith("抱怨(高风险),普通级")


def test_evidence_is_short(assess):
    text = (
        "我是一名律师,我的QC7在高速上行驶时突然黑屏看不到车速,修了三次都没修好,"
        "门店态度恶劣一直推诿,损失了两万五,已经向12315和消协投诉,要求退车赔偿,"
        "#启程QC7黑屏# 已经上热搜"
    )
    grading = assess(text, likes=30_000).grading
    for score in grading.factors:
        for evidence in score.evidence:
            assert len(evidence) <= 20, evidence
    assert len(grading.reason) < 200


def test_grader_rejects_unknown_strategy():
    with pytest.raises(ValueError, match="unknown strategy"):
        Grader(DEFAULT_STRATEGIES["balanced"], "friendly")


def test_grader_rejects_incomplete_response_hours():
    thresholds = Thresholds(
        critical_sum=9, medium_sum=5, response_hours={"critical": 1.0}
    )
    with pytest.raises(ValueError, match="response_hours"):
        Grader(thresholds, "balanced")
