"""Tests for nlp.segment: the user dictionary, negation and the tokenizer object."""

from __future__ import annotations

import importlib.metadata
import pickle

import jieba
import pytest
import rjieba

from nlp.segment import (
    JiebaSegmenter,
    Segmenter,
    dictionary_hash,
    join_negation,
    user_words,
)


@pytest.fixture(scope="module")
def segmenter(brand) -> Segmenter:
    return Segmenter.for_brand(brand)


@pytest.mark.parametrize(
    ("text", "brand_word", "model_word"),
    [
        ("小米ＳＵ７高速刹车异响", "小米", "su7"),
        ("问界Ｍ7 车机又卡死", "问界", "m7"),
        ("理想l9 二排屏幕黑了", "理想", "l9"),
        ("启程QC5降价了", "启程", "qc5"),
        ("对蔚来的售后不满意,ES6也一般", "蔚来", "es6"),
    ],
)
def test_brand_and_model_stay_whole(segmenter, text, brand_word, model_word):
    words = segmenter(text)
    assert brand_word in words
    assert model_word in words


def test_inner_space_joined(segmenter):
    assert "su7" in segmenter("SU7 Ultra 提车三天就漏水")
    assert "model3" in segmenter("Model 3 的续航")
    assert "qichengauto" in segmenter("Qicheng  Auto service")


def test_spaced_word_with_punctuation_joined():
    segmenter = Segmenter(["C-HR", "Model 3"])
    words = segmenter("丰田C- HR和Model  3")
    assert "c-hr" in words
    assert "model3" in words


def test_traditional_alias_folded(brand, segmenter):
    assert "啟程" not in user_words(brand)
    assert "启程汽车" in segmenter("啟程汽車的QC7")


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("对服务很不满意", "不满意"),
        ("我今天很不高兴", "不高兴"),
        ("不是不满意,就是觉得不值这个价", "不是不满意"),
        ("车机没反应", "没反应"),
    ],
)
def test_negation_joined(segmenter, text, word):
    assert word in segmenter(text)


def test_wuyu_is_not_a_negator(segmenter):
    words = segmenter("无语,真生气")
    assert "无语" in words
    assert "生气" in words


def test_negator_before_punctuation_stays_alone():
    assert join_negation(["不", ",", "好"]) == ["不", ",", "好"]


def test_emoticons_leave_the_words(segmenter):
    words = segmenter("[怒][怒]车机第三次黑屏了")
    assert not any("[" in word or "怒" in word for word in words)
    assert "黑屏" in words


def test_global_tokenizers_untouched(brand, segmenter):
    segmenter("启程QC7")
    JiebaSegmenter.for_brand(brand)("启程QC7")
    jieba.dt.initialize()
    assert "qc7" not in jieba.dt.FREQ
    assert "启程汽车" not in jieba.dt.FREQ
    assert not rjieba.has_word("qc7")
    assert not rjieba.has_word("启程汽车")


@pytest.mark.parametrize(
    "text",
    [
        "小米ＳＵ７高速刹车异响",
        "问界Ｍ7 车机又卡死",
        "SU7 Ultra 提车三天就漏水",
        "理想l9 二排屏幕黑了",
        "对启程QC7的售后很不满意,不是不喜欢车",
    ],
)
def test_rjieba_agrees_with_jieba(brand, segmenter, text):
    reference = JiebaSegmenter.for_brand(brand)
    assert segmenter(text) == reference(text)
    assert segmenter.cut(segmenter.fold(text)) == reference.cut(reference.fold(text))


def test_engine_versions():
    assert (
        Segmenter.engine_version() == f"rjieba {importlib.metadata.version('rjieba')}"
    )
    assert JiebaSegmenter.engine_version() == f"jieba {jieba.__version__}"


def test_lone_surrogate_is_cut(segmenter):
    words = segmenter("QC7 \ud83d 车机黑屏")
    assert words[0] == "qc7"
    assert words[1] == "\ufffd"
    assert words[-1] == "黑屏"
    assert len(words) == 4


def test_pickle_round_trip(segmenter):
    copy = pickle.loads(pickle.dumps(segmenter))
    assert copy.words == segmenter.words
    assert copy("理想L9不好开") == segmenter("理想L9不好开")
    assert len(pickle.dumps(segmenter)) < 2000


def test_dictionary_hash_follows_words(brand, segmenter):
    assert segmenter.dictionary_hash == dictionary_hash(user_words(brand))
    assert dictionary_hash(("a", "b")) != dictionary_hash(("a", "c"))
