"""Tests for the customer loss and company fault scores of nlp.factors."""

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


def loss(text, demands=()):
    return factors.customer_loss(cues.scan(text), demands)


@pytest.mark.parametrize(
    "text",
    [
        "QC7下坡时刹车踏板一下子变硬,怎么也踩不动",
        "QC9高速上自适应巡航突然减速,后车差一点就追尾了",
        "QC5夜里开着开着仪表全黑了,车速都看不见",
        "变道时车道保持把方向往右拽,我用力回正才没撞上隔离带",
        "My QC7's brakes slammed on at a green light, the truck stopped inches from me",
    ],
)
def test_customer_loss_safety_events(text):
    score, safety = loss(text)
    assert score.score == 3
    assert safety


def test_customer_loss_workshop_collision_is_damage():
    score, safety = loss("洗车时工作人员把我QC5的后视镜撞坏了")
    assert score.score == 2
    assert not safety
    assert score.evidence[0].startswith("车辆受损:")


def test_customer_loss_road_collision_after_service_stays_event():
    score, safety = loss("上午去做了保养,回家路上被追尾了")
    assert score.score == 3
    assert safety


@pytest.mark.parametrize(
    "text", ["QC9仪表上电池报警反复出现,店里查不出原因", "QC5的巡航开着开着就自己退出"]
)
def test_customer_loss_warning_is_hazard(text):
    score, safety = loss(text)
    assert score.score == 2
    assert not safety


@pytest.mark.parametrize(
    ("text", "evidence"),
    [
        ("QC7的倒车影像坏了三天了,店里说等软件更新", "功能失效:坏了三天"),
        ("QC5导航两天打不开了,服了", "功能失效:两天打不开"),
        ("QC9的车停在服务中心两个礼拜了", "无法用车:停在服务中心"),
    ],
)
def test_customer_loss_function_lost_for_days(text, evidence):
    score, _ = loss(text)
    assert score.score == 2
    assert evidence in score.evidence


@pytest.mark.parametrize(
    "text",
    [
        "QC7车机黑屏一天三次,烦死",
        "QC9天窗异响,售后说等件,已经等了十天",
        "QC5提车半个月,车机卡顿严重,失望",
        "QC7毛病太多,想推荐给朋友都开不了口",
        "QC7保养要在店里干坐四个小时",
        "QC7座椅加热不热,冬天坐着冰凉",
    ],
)
def test_customer_loss_minor_annoyance(text):
    assert loss(text)[0].score == 1


def test_customer_loss_idioms_are_not_money():
    score, _ = loss("千万别买QC7,万一坏了修起来很麻烦")
    assert not any(e.startswith("金额") for e in score.evidence)


def test_customer_loss_return_demand_skips_car_price():
    text = "投诉要求:退车 涉诉金额:185000元"
    assert loss(text)[0].score == 3
    assert loss(text, ("return_car",))[0].score < 3
    assert loss(text, ("compensation",))[0].score == 3


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("QC9空调维修三次还没好,已打400投诉要求换件", 2),
        ("QC5异响送修了两次依然没解决", 2),
        ("服务中心把我的车漆刮了还瞒着我", 3),
        ("QC5雨刮刮不干净,下雨只能慢慢开", 2),
        ("QC9交付太慢了", 1),
    ],
)
def test_company_fault_repairs_concealment_and_slowness(text, score):
    assert fault(text).score == score
