"""Tests for nlp.relevance: brand words, models, ordinary senses and competitors."""

from __future__ import annotations

import pytest
from conftest import make_item

from config import Brand, Competitor
from nlp.normalize import normalize
from nlp.relevance import RelevanceMatcher


@pytest.fixture(scope="module")
def matcher(brand):
    return RelevanceMatcher(brand)


def match(matcher, text):
    return matcher.match(normalize(text), text)


@pytest.mark.parametrize(
    "text",
    [
        "启程汽车的售后今天给我回电话了",
        "QC5冬天续航掉得厉害",
        "qc7的车机比上一代流畅",
        "ＱＣ９六座版到店了",
        "提了台QC9,家里人都满意",
        "@启程汽车 什么时候推送OTA",
        "Qicheng QC7 owners, how is the range in winter?",
        "Just test drove a Qicheng and loved it",
        "已經向啟程汽車投訴",
    ],
)
def test_brand_evidence_makes_post_relevant(matcher, text):
    result = match(matcher, text)
    assert result.relevant
    assert result.brand == "启程汽车"
    assert result.evidence


@pytest.mark.parametrize(
    "text",
    [
        "QC50打印机卡纸了",
        "AQC5型号的配件",
        "QC7号线今天停线检修",
        "质检QC说这批料不合格",
        "工厂QC9批次抽检不合格,全部返工",
        "新买的扫地机QC7一直报错",
    ],
)
def test_qc_codes_that_are_not_models(matcher, text):
    assert not match(matcher, text).relevant


@pytest.mark.parametrize(
    "text",
    [
        "出发吧,启程吧,去看海",
        "下周启程回老家",
        "明天启程,坐火车回家",
        "即将启程,前往新的城市",
        "新的启程,新的开始",
        "启程旅行社的导游很热情",
        "住在启程小区三年了",
    ],
)
def test_ordinary_word_is_not_the_brand(matcher, text):
    assert not match(matcher, text).relevant


def test_ambiguous_alias_with_context_word(matcher):
    result = match(matcher, "启程的售后真让人无语")
    assert result.relevant
    assert result.evidence == ("启程…售后",)


def test_ambiguous_alias_without_context(matcher):
    assert not match(matcher, "终于要启程了,心情激动").relevant


def test_ordinary_sense_wins_over_context(matcher):
    assert not match(matcher, "启程去4S店的路上堵车了").relevant


def test_model_counts_next_to_ordinary_alias(matcher):
    result = match(matcher, "启程QC5今天提车")
    assert result.relevant
    assert result.models == ("QC5",)


def test_competitor_only_post_is_not_relevant(matcher):
    result = match(matcher, "特斯拉的车我已经投诉到12315了,Model Y异响")
    assert not result.relevant
    assert result.competitors == ("特斯拉",)


def test_comparison_records_competitors(matcher):
    result = match(matcher, "开过小鹏汽车再开QC7,比亚迪宋L也试了")
    assert result.relevant
    assert set(result.competitors) == {"小鹏", "比亚迪"}


def test_competitor_name_as_ordinary_word(matcher):
    result = match(matcher, "我的理想是开车环游世界")
    assert result.competitors == ()


def test_official_account_in_raw_html(matcher):
    raw = '<a href="https://weibo.example/n/启程汽车客服">链接</a> 还没回复'
    result = matcher.match(normalize(raw), raw)
    assert result.relevant
    assert result.evidence == ("@启程汽车客服",)


def test_official_mention_counts(matcher):
    result = match(matcher, "@启程汽车客服 在吗")
    assert result.relevant
    assert "@启程汽车客服" in result.evidence


def test_repost_chain_about_brand(matcher):
    result = match(matcher, "转发//@车主小李:QC7又黑屏了")
    assert result.relevant
    assert result.models == ("QC7",)


def test_other_brand_config():
    brand = Brand(
        name="小米汽车",
        aliases=("小米",),
        models=("SU7",),
        ordinary_senses=("小米粥", "小米手机"),
        context_words=("车", "交付"),
        competitors=(Competitor(name="特斯拉", models=("Model 3",)),),
    )
    matcher = RelevanceMatcher(brand)
    assert match(matcher, "SU7今天交付了").relevant
    assert match(matcher, "小米的车交付慢").relevant
    assert not match(matcher, "早上喝了小米粥").relevant
    assert not match(matcher, "小米手机续航不错").relevant
    assert not match(matcher, "Model 3 降价了").relevant


def test_empty_text(matcher):
    result = match(matcher, "")
    assert not result.relevant
    assert result.evidence == ()


def test_competitor_model_kept_apart(matcher):
    result = match(matcher, "小米ＳＵ７高速刹车异响")
    assert not result.relevant
    assert result.competitors == ("小米",)
    assert result.models == ("SU7",)
    assert result.competitor_models == ("SU7",)


def test_own_models_listed_before_competitors(matcher):
    result = match(matcher, "开过小鹏P7再开QC7,还是QC7舒服")
    assert result.relevant
    assert result.models == ("QC7", "P7")
    assert result.competitor_models == ("P7",)
    assert "P7" not in result.evidence


def test_competitor_model_of_other_product_skipped(matcher):
    result = match(matcher, "华为P7手机又卡了")
    assert result.models == ()
    assert result.competitors == ()


def test_competitor_model_spelled_as_in_config(matcher):
    result = match(matcher, "model y 提车一周就异响")
    assert result.competitor_models == ("Model Y",)
    assert result.competitors == ("特斯拉",)


def test_competitor_sharing_own_model_name():
    brand = Brand(
        name="启程汽车",
        models=("M7",),
        competitors=(Competitor(name="问界", models=("M7", "M9")),),
    )
    result = match(RelevanceMatcher(brand), "M7和M9都试驾了")
    assert result.relevant
    assert result.models == ("M7", "M9")
    assert result.competitor_models == ("M9",)


@pytest.mark.parametrize(
    ("text", "competitor", "model"),
    [
        ("蔚來ES6車機當機，剎車也有異音，客服說無法處理", "蔚来", "ES6"),
        ("問界M7 續航縮水", "问界", "M7"),
    ],
)
def test_traditional_post_finds_competitor_and_model(analyzer, text, competitor, model):
    item = make_item(text)
    [assessment] = analyzer.analyse([item])

    assert assessment.relevance.competitors == (competitor,)
    assert assessment.relevance.competitor_models == (model,)
    assert not assessment.relevance.relevant
    assert item.text == text
    assert assessment.normalized.text != text


def test_traditional_brand_word_in_config():
    brand = Brand(
        name="啟程汽車",
        aliases=("啟程",),
        models=("QC7",),
        context_words=("車", "售後"),
        ordinary_senses=("啟程去",),
    )
    matcher = RelevanceMatcher(brand)
    for text in ("啟程汽車的車機", "启程汽车的车机", "啟程的售後", "启程的售后"):
        result = matcher.match(normalize(text, matcher.protected), text)
        assert result.relevant, text
        assert result.brand == "啟程汽車", text
    for text in ("明天啟程去上海,坐車", "明天启程去上海,坐车"):
        result = matcher.match(normalize(text, matcher.protected), text)
        assert not result.relevant, text


def test_place_in_config_is_no_brand_evidence(brand):
    matcher = RelevanceMatcher(brand)
    text = "乾安的路很乾淨"
    result = matcher.match(normalize(text, matcher.protected), text)
    assert not result.relevant
    assert "乾安" in matcher.protected


@pytest.mark.parametrize(
    "text",
    [
        "启程出发!自驾去川西,车子刹车失灵差点出事,已报警",
        "准备启程,滴滴司机开车太猛,刹车失灵了,已投诉要求赔偿",
        "终于启程了,租的车半路抛锚,客服电话打不通",
        "启程大酒店的服务太差了,投诉了也没人管",
        "启程教育退费难,已向12315投诉",
    ],
)
def test_trips_and_namesakes_not_the_brand(project_config, text):
    matcher = RelevanceMatcher(project_config.brand)

    assert not matcher.match(normalize(text), text).relevant
