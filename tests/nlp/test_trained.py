"""Tests for nlp.trained: batch classification against one post at a time."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import PROJECT_ROOT

import config
from items import Relevance
from nlp import Analyzer, model
from nlp.evaluation import record_to_item
from nlp.normalize import normalize
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
    explanations = model.explain_rows(matrix, classes, coef, names)
    assert len(explanations) == len(items)
    for position, explanation in enumerate(explanations):
        expected = _explain_one_row(matrix, position, coef[classes[position]], names)
        assert explanation == expected
        assert len(explanation) <= model.MAX_MODEL_CUES


def _explain_one_row(matrix, position, coef_row, names):
    """Explain one row as a plain sort of its contributions would."""
    start, end = matrix.indptr[position], matrix.indptr[position + 1]
    indices = matrix.indices[start:end]
    contributions = matrix.data[start:end] * coef_row[indices]
    order = np.argsort(-contributions, kind="stable")[: model.MAX_MODEL_CUES]
    positive = [index for index in order if contributions[index] > 0]
    return [model._feature_cue(names[indices[index]]) for index in positive]


def test_transform_rows_matches_pipeline(trained, items):
    rows = [
        model_input(normalize(item.text), item, trained._official) for item in items
    ]
    expected = trained.classifier[:-1].transform(rows).tocsr()
    found = model.transform_rows(trained.classifier, rows)
    assert found.shape == expected.shape
    assert np.array_equal(found.indptr, expected.indptr)
    assert np.array_equal(found.indices, expected.indices)
    assert np.array_equal(found.data, expected.data)
