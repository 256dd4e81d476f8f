"""Tests for nlp.classifier on invented borderline posts."""

from __future__ import annotations

import time

import pytest
from conftest import make_item

from items import Cue, Relevance
from nlp.classifier import MODEL_VERSION, LexiconClassifier
from nlp.normalize import normalize


def kind_of(assess, text, **options):
    return assess(text, **options).classification


def cue_names(classification):
    return {cue.name for cue in classification.cues}


# Threat versus action


def test_threat_alone_is_grievance(assess):
    result = kind_of(assess, "QC7充电慢得要命,这周末再没人联系我,我就打12315")
    assert result.kind == "grievance"
    assert result.channels == ()
    assert result.demands == ("repair",)
    assert "threat" in cue_names(result)


def test_action_then_threat_is_complaint(assess):
    text = "昨天已经在APP投诉要求换件,QC5到今天还没人理,明天我就去12315"
    result = kind_of(assess, text)
    assert result.kind == "complaint"
    assert result.channels == ("company",)
    assert "replace_part" in result.demands


def test_threat_to_sue_is_grievance(assess):
    result = kind_of(assess, "QC9漏水修了三次还漏,准备起诉启程汽车,要求退车")
    assert result.kind == "grievance"
    assert result.channels == ()
    assert result.demands == ("return_car",)


def test_completed_regulator_filing_is_complaint(assess):
    result = kind_of(assess, "QC9漏水修了三次还漏,今天已向12315投诉,要求退车")
    assert result.kind == "complaint"
    assert result.channels == ("12315",)
    assert result.demands == ("return_car",)
    assert any(c.name == "channel:12315" and "12315" in c.text for c in result.cues)
    assert Cue("demand:return_car", "要求退车") in result.cues


def test_advice_about_channels_is_not_action(assess):
    result = kind_of(assess, "QC5车主们,遇到定金不退可以去12315投诉吗")
    assert result.kind != "complaint"
    assert result.channels == ()


# Tagging the official account


def test_official_tag_without_demand_is_grievance(assess):
    result = kind_of(assess, "@启程汽车 车机又卡了,服了")
    assert result.kind == "grievance"
    assert result.channels == ()


def test_official_tag_with_demand_is_complaint(assess):
    result = kind_of(assess, "@启程汽车 我正式要求你们对我的QC5漏水问题给出书面答复")
    assert result.kind == "complaint"
    assert result.channels == ("brand_social",)
    assert result.demands == ("explanation",)


def test_official_tag_with_demand_after_hotline_call(assess):
    result = kind_of(assess, "@启程汽车 打了客服也没用,要求尽快维修我的QC7")
    assert result.kind == "complaint"
    assert "brand_social" in result.channels


# Resolved cases


def test_resolved_and_satisfied_is_praise(assess):
    text = "QC5在黑猫上投诉的退款上周到账了,客服还专门回访,这次服务可以"
    result = kind_of(assess, text)
    assert result.kind == "praise"
    assert "resolved" in cue_names(result)


def test_resolved_on_complaint_platform_is_praise(assess):
    text = "投诉对象:启程汽车 投诉要求:退还定金 进展:定金已到账,处理及时,满意"
    result = kind_of(assess, text, platform="heimao")
    assert result.kind == "praise"


def test_resolved_but_still_unhappy_is_grievance(assess):
    text = "QC7异响虽然修好了,但是前后折腾了一个月,真的心累"
    assert kind_of(assess, text).kind == "grievance"


# Complaint platforms


def test_complaint_platform_record_is_complaint(assess):
    text = "投诉对象:启程汽车 QC5 投诉要求:退还定金 问题:交付一拖再拖,销售不接电话"
    result = kind_of(assess, text, platform="heimao")
    assert result.kind == "complaint"
    assert result.channels == ("heimao",)
    assert result.demands == ("refund",)
    assert result.root_cause == "process"


def test_complaint_platform_without_demand_words(assess):
    result = kind_of(assess, "启程QC7车机频繁黑屏", platform="12365auto")
    assert result.kind == "complaint"
    assert result.channels == ("12365auto",)
    assert result.demands == ("repair",)
    assert "demand:implied" in cue_names(result)


def test_social_post_about_filing_on_platform(assess):
    result = kind_of(assess, "我在车质网投诉了QC7的异响,要求厂家给个说法")
    assert result.kind == "complaint"
    assert result.channels == ("12365auto",)
    assert result.demands == ("explanation",)


# Relevance-driven kinds


def test_competitor_complaint_is_irrelevant(assess):
    result = kind_of(assess, "特斯拉的车我已经投诉到12315了")
    assert result.kind == "irrelevant"
    assert "competitor_only" in cue_names(result)


def test_ordinary_word_post_is_irrelevant(assess):
    assert kind_of(assess, "出发吧,启程吧,去看海").kind == "irrelevant"


def test_quality_control_post_is_irrelevant(assess):
    assert kind_of(assess, "工厂QC9批次抽检不合格,全部返工").kind == "irrelevant"


def test_spam_is_irrelevant(assess):
    assert kind_of(assess, "QC5专用脚垫,全网最低,加微信").kind == "irrelevant"


# Sarcasm, negation, mixed feelings, questions


def test_sarcasm_is_grievance(assess):
    result = kind_of(assess, "真是“靠谱”,QC5新车三个月进了三次钣喷[微笑]")
    assert result.kind == "grievance"
    assert "sarcasm" in cue_names(result)
    assert result.root_cause == "product"


def test_sarcastic_thanks_is_grievance(assess):
    result = kind_of(assess, "真是谢谢启程售后,QC7保养一次等了五个小时[允悲]")
    assert result.kind == "grievance"


def test_double_negation_is_praise(assess):
    assert kind_of(assess, "倒也不是不喜欢QC7,就是觉得值这个价").kind == "praise"


def test_negation_shifts_to_delivery(assess):
    result = kind_of(assess, "QC9倒不是不行,就是交付等得人心累")
    assert result.kind == "grievance"
    assert result.root_cause == "process"


def test_not_the_car_but_the_service(assess):
    result = kind_of(assess, "不是QC7车不好,是门店销售的态度太差,爱答不理")
    assert result.kind == "grievance"
    assert result.root_cause == "service"


def test_mixed_praise_and_fault_is_grievance(assess):
    assert kind_of(assess, "QC7车是真好开,就是车机三天两头死机").kind == "grievance"


def test_dissatisfied_question_is_grievance(assess):
    assert kind_of(assess, "QC5冬天掉电这么多正常吗?有点后悔").kind == "grievance"


def test_information_question_is_neutral(assess):
    assert kind_of(assess, "QC5落地价多少?有没有优惠").kind == "neutral"


def test_first_service_visit_is_neutral(assess):
    assert kind_of(assess, "周一送修异响,QC5").kind == "neutral"


def test_third_failed_repair_is_grievance(assess):
    result = kind_of(assess, "QC5第三次送修异响了,这次再修不好真没耐心了")
    assert result.kind == "grievance"


def test_bystander_opinion_is_neutral(assess):
    assert kind_of(assess, "启程的车就是不行").kind == "neutral"


def test_owner_praise(assess):
    result = kind_of(assess, "QC5提车一个月,续航扎实,车机流畅,很满意")
    assert result.kind == "praise"
    assert "positive" in cue_names(result)


# Organising versus acting, third parties


def test_organising_is_grievance_with_demand(assess):
    result = kind_of(assess, "QC5老车主都来群里,咱们一起去要补偿")
    assert result.kind == "grievance"
    assert result.demands == ("compensation",)
    assert result.channels == ()


def test_joint_letter_sent_is_complaint(assess):
    result = kind_of(assess, "我们车主群已经把联名信寄到启程总部")
    assert result.kind == "complaint"
    assert result.channels == ("company",)


def test_media_report_of_case_is_complaint(assess):
    text = "据某电视台报道,一位QC7车主因车机问题已向市场监管局投诉,要求退车"
    result = kind_of(assess, text, role="media", verified="media", followers=500_000)
    assert result.kind == "complaint"
    assert set(result.channels) == {"market_regulator", "media"}
    assert result.demands == ("return_car",)


def test_company_statement_is_neutral(assess):
    assert kind_of(assess, "启程汽车就车展事件发布致歉声明").kind == "neutral"


def test_brand_official_author_is_neutral(assess):
    result = kind_of(
        assess, "QC7 3.2版本OTA今晚推送,修复车机卡顿", role="brand_official"
    )
    assert result.kind == "neutral"


def test_lawyer_letter_sent_is_complaint(assess):
    text = "受当事人委托,已就其QC9电池故障向启程汽车发出律师函,要求更换电池包"
    result = kind_of(assess, text, role="lawyer")
    assert result.kind == "complaint"
    assert "lawyer" in result.channels
    assert "replace_part" in result.demands


# Traditional Chinese, Cantonese and English


def test_traditional_formal_complaint(assess):
    result = kind_of(assess, "已經向啟程正式投訴")
    assert result.kind == "complaint"
    assert result.channels == ("company",)


def test_cantonese_consumer_council(assess):
    result = kind_of(assess, "已經入咗消委會投訴,要求退款,啟程QC5嘅定金到而家都冇退")
    assert result.kind == "complaint"
    assert result.channels == ("consumer_association",)
    assert "refund" in result.demands


def test_english_email_to_support_is_complaint(assess):
    text = "Emailed Qicheng support demanding they fix the charging port under warranty"
    result = kind_of(assess, text, platform="reddit")
    assert result.kind == "complaint"
    assert result.channels == ("company",)
    assert result.demands == ("repair",)


def test_english_disappointment_is_grievance(assess):
    text = "Qicheng QC7 owner here, pretty disappointed with the winter range"
    assert kind_of(assess, text, platform="reddit").kind == "grievance"


def test_english_threat_is_grievance(assess):
    text = (
        "My QC5 screen froze again. "
        "If they don't fix it I will go to the consumer council"
    )
    result = kind_of(assess, text, platform="reddit")
    assert result.kind == "grievance"
    assert result.channels == ()
    assert result.demands


# Confidence, cues and the batch interface


def test_confidence_grows_with_agreeing_cues(assess):
    weak = kind_of(assess, "已经向启程正式投诉")
    strong = kind_of(assess, "已经向12315和消协投诉QC7刹车异响,要求退车并赔偿,太失望了")
    assert weak.kind == strong.kind == "complaint"
    assert 0.0 <= weak.confidence < strong.confidence <= 1.0


def test_model_version_and_cue_types(assess):
    result = kind_of(assess, "QC9漏水修了三次还漏,今天已向12315投诉,要求退车")
    assert result.model_version == MODEL_VERSION == "lexicon-1"
    assert all(isinstance(cue, Cue) for cue in result.cues)
    assert all(len(cue.text) <= 20 for cue in result.cues)


def test_irrelevant_when_not_relevant():
    classifier = LexiconClassifier()
    item = make_item("QC7车机又黑屏了,要求退车,已投诉12315")
    result = classifier.classify(normalize(item.text), Relevance(relevant=False), item)
    assert result.kind == "irrelevant"
    assert result.demands == ()
    assert result.channels == ()


def test_classify_batch_matches_single_calls(brand):
    from nlp.relevance import RelevanceMatcher

    classifier = LexiconClassifier(brand.official_accounts)
    matcher = RelevanceMatcher(brand)
    texts = ["QC5续航不错,很满意", "QC7车机又黑屏了,服了", "明天启程去北京"]
    items = [make_item(text) for text in texts]
    normalized = [normalize(text) for text in texts]
    relevance = [matcher.match(n, t) for n, t in zip(normalized, texts, strict=True)]
    batch = classifier.classify_batch(normalized, relevance, items)
    single = [
        classifier.classify(n, r, i)
        for n, r, i in zip(normalized, relevance, items, strict=True)
    ]
    assert batch == single
    assert [c.kind for c in batch] == ["praise", "grievance", "irrelevant"]


def test_classify_batch_rejects_mismatched_lengths():
    classifier = LexiconClassifier()
    with pytest.raises(ValueError, match="lengths differ"):
        classifier.classify_batch([normalize("QC5")], [], [])


# Hostile input through the whole analyzer


@pytest.mark.parametrize(
    "text",
    ["", "\x00\x01\x02", "<script>alert('QC5')</script>", "@" * 1000, "[怒]" * 500],
)
def test_hostile_short_input(assess, text):
    result = assess(text)
    assert result.classification.kind in ("irrelevant", "neutral", "grievance")


def test_two_megabyte_post_is_analysed_quickly(analyzer):
    text = ("QC7车机黑屏,已经向12315投诉要求退车[怒]<b>x</b>\u200b " * 60_000)[
        : 2 * 1024 * 1024
    ]
    start = time.perf_counter()
    result = analyzer.analyse([make_item(text)])[0]
    assert time.perf_counter() - start < 1.0
    assert result.normalized.truncated
    assert result.classification.kind == "complaint"
