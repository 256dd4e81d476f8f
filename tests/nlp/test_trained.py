"""Tests for nlp.trained: batch classification against one post at a time."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import PROJECT_ROOT

import config
from items import Relevance
from nlp import Analyzer, model, scorer
from nlp.evaluation import record_to_item
from nlp.normalize import normalize
from nlp.scorer import Scorer
from nlp.segment import Segmenter
from nlp.trained import TrainedClassifier, model_input
from nlp.training import read_training, train

POSTS_PER_FILE = 150


@pytest.fixture(scope="module")
def trained(brand) -> TrainedClassifier:
    return train(read_training([PROJECT_ROOT / "demo" / "posts.jsonl"]), brand)


@pytest.fixture(scope="module")
def analyzer(brand, trained) -> Analyzer:
    strategy = config.DEFAULT_STRATEGIES["balanced"]
    return Analyzer(brand, strategy, "balanced", classifier=trained)


@pytest.fixture(scope="module")
def items():
    """Labelled posts the model was not trained on, from two training files."""
    posts = []
    for name in ("weibo.jsonl", "forums.jsonl"):
        lines = (PROJECT_ROOT / "training" / name).read_text("utf-8").splitlines()
        for index, line in enumerate(lines[:POSTS_PER_FILE]):
            posts.append(record_to_item(json.loads(line), index))
    return posts


def test_batch_matches_single_posts(analyzer, items):
    batch = analyzer.analyse(items)
    kinds = {assessment.classification.kind for assessment in batch}
    assert {"complaint", "grievance", "praise", "neutral"} <= kinds
    for item, assessment in zip(items, batch, strict=True):
        [single] = analyzer.analyse([item])
        assert assessment == single, item.external_id


def test_confidence_is_model_probability(brand, trained, items):
    """The shared scan gives the model the rows that model_input builds."""
    normalized = [normalize(item.text) for item in items]
    relevance = [Relevance(relevant=True, brand=brand.name)] * len(items)
    rows = [
        model_input(n, item, trained._official)
        for n, item in zip(normalized, items, strict=True)
    ]
    probabilities = trained.classifier.predict_proba(rows)
    results = trained.classify_batch(normalized, relevance, items)
    modelled = 0
    for result, row_probabilities in zip(results, probabilities, strict=True):
        if not result.model_version.startswith("trained-"):
            continue
        if any(cue.name == "safety" for cue in result.cues):
            # A safety event may keep the lexicon's kind over the model's.
            continue
        modelled += 1
        best = int(np.argmax(row_probabilities))
        assert result.kind == trained.classifier.classes_[best]
        assert result.confidence == round(float(row_probabilities[best]), 3)
    assert modelled > len(items) // 2


def test_explanations_match_row_by_row(trained, items):
    rows = [
        model_input(normalize(item.text), item, trained._official) for item in items
    ]
    matrix = trained.classifier[:-1].transform(rows).tocsr()
    classes = np.argmax(trained.classifier[-1].predict_proba(matrix), axis=1)
    coef = model.coefficients(trained.classifier)
    names = model.feature_names(trained.classifier)
    explanations = trained.scorer.explain(trained.scorer.transform(rows), classes)
    assert len(explanations) == len(items)
    for position, explanation in enumerate(explanations):
        expected = _explain_one_row(matrix, position, coef[classes[position]], names)
        assert explanation == expected
        assert len(explanation) <= scorer.MAX_MODEL_CUES
    assert sum(map(len, explanations)) > len(items)


def _explain_one_row(matrix, position, coef_row, names):
    """Explain one row of the pipeline's matrix as a plain sort of its contributions would."""
    start, end = matrix.indptr[position], matrix.indptr[position + 1]
    indices = matrix.indices[start:end]
    contributions = matrix.data[start:end] * coef_row[indices]
    order = np.argsort(-contributions, kind="stable")[: scorer.MAX_MODEL_CUES]
    positive = [index for index in order if contributions[index] > 0]
    return [scorer._feature_cue(names[indices[index]]) for index in positive]


def test_scorer_matches_pipeline(trained, items):
    """The numpy scorer gives the pipeline's features and probabilities."""
    rows = [
        model_input(normalize(item.text), item, trained._official) for item in items
    ]
    expected = trained.classifier[:-1].transform(rows).tocsr()
    found = trained.scorer.transform(rows)
    assert found.shape == expected.shape
    assert np.array_equal(found.indptr, expected.indptr)
    assert np.array_equal(found.indices, expected.indices)
    np.testing.assert_allclose(found.data, expected.data, rtol=1e-12)
    probabilities = trained.classifier.predict_proba(rows)
    np.testing.assert_allclose(
        trained.scorer.probabilities(found), probabilities, rtol=0, atol=1e-12
    )
    assert trained.scorer.classes == list(trained.classifier.classes_)


def test_scorer_names_every_feature(trained):
    names = model.feature_names(trained.classifier)
    assert trained.scorer.width == len(names)
    for column in range(0, len(names), 7):
        assert trained.scorer.feature_name(column) == names[column]
    assert trained.scorer.feature_name(len(names) - 1) == names[-1]
    with pytest.raises(IndexError):
        trained.scorer.feature_name(len(names))


def test_scorer_reads_spaced_tokens_as_the_vectorizer_does(trained, brand):
    """A token with a space falls back to joined n-gram text, as TfidfVectorizer does."""
    segmenter = Segmenter.for_brand(brand)
    spaced = [("车机 黑屏", {}), ("车机黑屏又死机", {})]
    state = model.scorer_state(trained.classifier)
    plain = Scorer(state, segmenter)
    words = trained.classifier.named_steps["features"].transformer_list[0][1]
    vectorizer = words.named_steps["vectorize"]
    original = vectorizer.tokenizer
    try:
        # A tokenizer that keeps "车机 黑屏" whole, spaces included.
        vectorizer.tokenizer = lambda text: [text] if " " in text else original(text)
        segmenter_with_spaces = _KeepSpaced(segmenter)
        found = Scorer(state, segmenter_with_spaces).transform(spaced)
        expected = trained.classifier[:-1].transform(spaced).tocsr()
    finally:
        vectorizer.tokenizer = original
    assert np.array_equal(found.indices, expected.indices)
    np.testing.assert_allclose(found.data, expected.data, rtol=1e-12)
    assert plain.transform(spaced).shape == found.shape


class _KeepSpaced:
    """A segmenter that returns a text with a space as one token."""

    def __init__(self, segmenter):
        self.segmenter = segmenter

    def fold(self, text):
        return self.segmenter.fold(text)

    def segment_folded(self, text):
        return [text] if " " in text else self.segmenter.segment_folded(text)


def test_two_class_model_scores_as_the_regression(brand):
    data = read_training([PROJECT_ROOT / "demo" / "posts.jsonl"])
    two = train(data, brand, kinds=("grievance", "praise"))
    assert two.scorer.classes == ["grievance", "praise"]
    rows = [(normalize(text).text, {}) for text in ("车机又黑屏了", "很满意", "一般")]
    np.testing.assert_allclose(
        two.scorer.probabilities(two.scorer.transform(rows)),
        two.classifier.predict_proba(rows),
        rtol=0,
        atol=1e-12,
    )


def test_scorer_rejects_a_broken_state(trained, brand):
    state = model.scorer_state(trained.classifier)
    segmenter = Segmenter.for_brand(brand)
    with pytest.raises(ValueError, match="not a scorer state"):
        Scorer({**state, "words": None}, segmenter)
    with pytest.raises(ValueError, match="coefficients of shape"):
        Scorer({**state, "coef": state["coef"][:, :-1]}, segmenter)
    with pytest.raises(ValueError, match="intercepts of shape"):
        Scorer({**state, "intercept": state["intercept"][:2]}, segmenter)
    with_nan = state["coef"].copy()
    with_nan[0, 3] = np.nan
    with pytest.raises(ValueError, match="not finite"):
        Scorer({**state, "coef": with_nan}, segmenter)
    firsts = state["words"]["firsts"].copy()
    firsts[0] = 10**9
    with pytest.raises(ValueError, match="word ids out of range"):
        Scorer({**state, "words": {**state["words"], "firsts": firsts}}, segmenter)
