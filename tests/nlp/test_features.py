"""Tests for nlp.features: the cue counts the trained classifier reads."""

from __future__ import annotations

from conftest import make_item

from nlp.features import MAX_COUNT, cue_features, readable
from nlp.normalize import normalize

OFFICIAL = ("@启程汽车",)


def features(text, **options):
    return cue_features(normalize(text), make_item(text, **options), OFFICIAL)


def test_action_and_threat_counted_apart():
    done = features("今天已向12315投诉,要求退车")
    threat = features("再不解决我就去12315,要求退车")
    assert done["action_taken"] == 1
    assert done["channel=12315"] == 1
    assert "threatened" not in done
    assert threat["threatened"] == 1
    assert "action_taken" not in threat
    assert done["strong_demand"] == 1


def test_emoticons_counted_per_code():
    result = features("[怒][怒]车机第三次黑屏了[doge]")
    assert result["emoticon=[怒]"] == 2
    assert result["emoticon=[doge]"] == 1


def test_complaint_platform_flag():
    assert features("QC5异响", platform="heimao")["complaint_platform"] == 1
    assert "complaint_platform" not in features("QC5异响", platform="weibo")


def test_question_marks_and_negation():
    result = features("不是不满意,就是这价格合理吗??")
    assert result["question_mark"] == 2
    assert result["negation"] == 1


def test_counts_capped_and_no_length():
    short = features("QC7又死机了,失望")
    long = features("QC7又死机了,失望," * 10)
    assert max(long.values()) <= MAX_COUNT
    assert set(long) == set(short)
    assert not any("length" in name for name in long)


def test_author_role_feature():
    assert features("QC7到店", role="dealer")["author_role=dealer"] == 1


def test_readable_names():
    assert readable("action_taken") == "action taken"
    assert readable("channel=12315") == "channel used 12315"


def test_platform_named_in_text_is_action():
    result = features("我昨天在车质网投诉了QC7异响,要求维修", platform="weibo")
    assert result["action_taken"] == 1
    assert result["channel=12365auto"] == 1


def test_filing_platform_not_counted_as_text_action():
    result = features("QC5异响多次维修未解决", platform="12365auto")
    assert result["complaint_platform"] == 1
    assert "action_taken" not in result
