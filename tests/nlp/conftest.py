"""Fixtures for the nlp tests: the project's brand config and item builders."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from model_cache import shipped_model_path

import config
from items import Author, Engagement, Item
from nlp import Analyzer
from nlp.trained import TrainedClassifier

PROJECT_ROOT = Path(__file__).resolve().parents[2]

CREATED = datetime(2026, 3, 10, 9, 0, tzinfo=timezone(timedelta(hours=8)))


@pytest.fixture(scope="session")
def project_config() -> config.Config:
    return config.load(PROJECT_ROOT / "config.yaml")


@pytest.fixture(scope="session")
def brand(project_config) -> config.Brand:
    return project_config.brand


@pytest.fixture(scope="session")
def analyzer(brand) -> Analyzer:
    """The analyzer with the lexicon classifier, which needs no model file."""
    return Analyzer(brand, config.DEFAULT_STRATEGIES["balanced"], "balanced")


@pytest.fixture(scope="session")
def trained_analyzer(brand) -> Analyzer:
    """The analyzer with the configured default: the model trained on training/."""
    classifier = TrainedClassifier.load(shipped_model_path(), brand)
    return Analyzer(
        brand, config.DEFAULT_STRATEGIES["balanced"], "balanced", classifier=classifier
    )


def make_item(
    text: str,
    platform: str = "weibo",
    followers: int | None = 100,
    verified: str = "none",
    role: str | None = None,
    likes: int = 0,
    reposts: int = 0,
    comments: int = 0,
    title: str | None = None,
    created_at: datetime | None = CREATED,
) -> Item:
    """Build an item as a collector would, with an ordinary low-reach author."""
    return Item(
        source="test",
        platform=platform,
        external_id="test-1",
        text=text,
        title=title,
        collected_at=CREATED + timedelta(minutes=5),
        created_at=created_at,
        author=Author(name="tester", followers=followers, verified=verified, role=role),
        engagement=Engagement(likes=likes, reposts=reposts, comments=comments),
    )


@pytest.fixture
def assess(analyzer):
    """Return a function that analyses one post from its text and item options."""

    def run(text: str, **options):
        return analyzer.analyse([make_item(text, **options)])[0]

    return run
