"""Tests for nlp.features: the cue counts the trained classifier reads."""

from __future__ import annotations

import json

from conftest import PROJECT_ROOT, make_item

from items import Relevance
from nlp import cues
from nlp.classifier import LexiconClassifier
from nlp.evaluation import record_to_item
from nlp.features import MAX_COUNT, cue_features, evidence_features, readable
from nlp.normalize import normalize
from nlp.trained import official_handles

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


def demo_posts():
    path = PROJECT_ROOT / "demo" / "posts.jsonl"
    records = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    return [record_to_item(record, index) for index, record in enumerate(records)]


def test_shared_scan_gives_same_features(brand):
    classifier = LexiconClassifier(official_accounts=brand.official_accounts)
    official = official_handles(brand)
    relevant = Relevance(relevant=True, brand=brand.name)
    items = demo_posts()
    assert len(items) > 100
    for item in items:
        normalized = normalize(item.text)
        cues.scan.cache_clear()
        separate = cue_features(normalized, item, official)
        cues.scan.cache_clear()
        scan, evidence = classifier.examine(normalized, item)
        decided = classifier.decide(scan, evidence, item)
        shared = evidence_features(scan, evidence, normalized, item)
        assert shared == separate, item.external_id
        assert decided == classifier.classify(normalized, relevant, item)
