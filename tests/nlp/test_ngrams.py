"""Tests for nlp.ngrams: the batch vectorizers against scikit-learn's own."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from conftest import PROJECT_ROOT
from sklearn.feature_extraction.text import TfidfVectorizer

from nlp.codes import CodeTable
from nlp.ngrams import CharNgramVectorizer, WordNgramVectorizer
from nlp.segment import Segmenter

HARD_TEXTS = [
    "",
    "x",
    "  ",
    "a  b\n\n c\t\td",
    "emoji 😀😀 and 𠀀 beyond the basic plane",
    "half an emoji \ud83d here",
    "不 不 不是不满意,没 问题",
    "車機當機,剎車異音",
    "qc7 qc7 qc7 车机 车机",
]


@pytest.fixture(scope="module")
def segmenter(brand) -> Segmenter:
    return Segmenter.for_brand(brand)


@pytest.fixture(scope="module")
def texts(segmenter) -> list[str]:
    lines = (PROJECT_ROOT / "demo" / "posts.jsonl").read_text("utf-8").splitlines()
    posts = [json.loads(line)["text"] for line in lines]
    return [segmenter.fold(text) for text in posts + HARD_TEXTS]


def assert_same_matrix(expected, found):
    expected, found = expected.tocsr(), found.tocsr()
    assert type(found) is type(expected)
    assert found.shape == expected.shape
    assert found.indices.dtype == expected.indices.dtype
    assert np.array_equal(found.indptr, expected.indptr)
    assert np.array_equal(found.indices, expected.indices)
    assert np.array_equal(found.data, expected.data)


@pytest.mark.parametrize(
    "options",
    [
        {"ngram_range": (1, 3), "min_df": 2, "sublinear_tf": True},
        {"ngram_range": (2, 3), "min_df": 1},
        {"ngram_range": (1, 1), "max_df": 0.5, "norm": None, "use_idf": False},
    ],
)
def test_char_vectorizer_matches_sklearn(texts, options):
    options = {"analyzer": "char", "lowercase": False, **options}
    training = texts[::2]
    expected = TfidfVectorizer(**options).fit(training)
    fast = CharNgramVectorizer(**options).fit(training)
    assert fast.vocabulary_ == expected.vocabulary_
    for batch in (texts, texts[-len(HARD_TEXTS) :], texts[:1]):
        assert_same_matrix(expected.transform(batch), fast.transform(batch))


@pytest.mark.parametrize(
    "options",
    [
        {"ngram_range": (1, 2), "min_df": 2, "sublinear_tf": True},
        {"ngram_range": (2, 2), "min_df": 1},
        {"ngram_range": (1, 1), "min_df": 2, "max_df": 0.3},
        {"ngram_range": (1, 2), "max_features": 300},
    ],
)
def test_word_vectorizer_matches_sklearn(segmenter, texts, options):
    options = {
        "tokenizer": segmenter.segment_folded,
        "token_pattern": None,
        "lowercase": False,
        **options,
    }
    training = texts[::2]
    expected = TfidfVectorizer(**options).fit(training)
    fast = WordNgramVectorizer(**options).fit(training)
    assert fast.vocabulary_ == expected.vocabulary_
    for batch in (texts, texts[-len(HARD_TEXTS) :], texts[:1]):
        assert_same_matrix(expected.transform(batch), fast.transform(batch))


def split_in_halves(text: str) -> list[str]:
    middle = len(text) // 2
    return [text[:middle], text[middle:]]


def test_tokens_with_spaces_counted_by_sklearn():
    texts = ["ab cd ef", "ab cd", "cd ef gh", "ef gh ab cd"]
    options = {"tokenizer": split_in_halves, "token_pattern": None, "min_df": 1}
    options["ngram_range"] = (1, 2)
    expected = TfidfVectorizer(**options).fit(texts)
    fast = WordNgramVectorizer(**options).fit(texts)
    assert any(" " in word for word in fast.vocabulary_)
    assert_same_matrix(expected.transform(texts), fast.transform(texts))


def test_unsupported_settings_rejected():
    texts = ["车机黑屏", "车机死机", "黑屏死机"]
    words = WordNgramVectorizer(ngram_range=(1, 3)).fit(texts)
    with pytest.raises(ValueError, match="at most 2 words"):
        words.transform(texts)
    chars = CharNgramVectorizer(analyzer="char_wb").fit(texts)
    with pytest.raises(ValueError, match="analyzer='char'"):
        chars.transform(texts)


def test_pickle_leaves_tables_out(texts):
    fast = CharNgramVectorizer(analyzer="char", ngram_range=(1, 3)).fit(texts)
    before = fast.transform(texts)
    assert "_table" in vars(fast)
    copy = pickle.loads(pickle.dumps(fast))
    assert "_table" not in vars(copy)
    assert_same_matrix(before, copy.transform(texts))


def test_code_table_finds_every_code():
    generator = np.random.default_rng(0)
    codes = np.unique(generator.integers(1, 2**63, size=5000, dtype=np.uint64))
    columns = np.arange(len(codes), dtype=np.int64)
    table = CodeTable(codes, columns)
    # Some codes share their first slot and are found by probing further.
    assert len(np.unique(table._first_slots(codes))) < len(codes)
    found_columns, found = table.find(codes[::-1])
    assert found.all()
    assert found_columns.tolist() == columns[::-1].tolist()
    others = generator.integers(1, 2**63, size=5000, dtype=np.uint64)
    _, found = table.find(np.setdiff1d(others, codes))
    assert not found.any()


def test_code_table_empty():
    table = CodeTable(np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64))
    columns, found = table.find(np.array([1, 2], dtype=np.uint64))
    assert columns.tolist() == []
    assert found.tolist() == [False, False]
