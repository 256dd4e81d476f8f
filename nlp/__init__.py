"""The language stage: from collected items to assessments.

Each item goes through four steps: normalisation (HTML, NFKC, repost chains,
traditional characters), brand relevance, classification into one of five
kinds, and, for grievances and complaints, grading by the four factors into a
level with a response deadline. Text and metadata go in; labels, confidences,
cues, factor evidence and levels come out. The pipeline's default classifier
is the trained one (:class:`nlp.trained.TrainedClassifier`), which reads one
model file. An Analyzer built without a classifier uses the lexicon
classifier, which is built on the cue lexicons in :mod:`nlp.lexicon` and reads
no files.

:class:`Analyzer` wires the steps and is what the pipeline calls.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from config import Brand, Thresholds
from items import Assessment, Classification, Item, NormalizedText, Relevance
from nlp.classifier import LexiconClassifier
from nlp.grading import Grader
from nlp.normalize import normalize
from nlp.relevance import RelevanceMatcher

logger = logging.getLogger(__name__)

__all__ = ["Analyzer", "Classifier"]


class Classifier(Protocol):
    """Interface of a kind classifier, as the analyzer calls it."""

    def classify_batch(
        self,
        normalized: Sequence[NormalizedText],
        relevance: Sequence[Relevance],
        items: Sequence[Item],
    ) -> list[Classification]: ...


class Analyzer:
    """The four steps of the language stage, wired for one brand and strategy.

    ``classifier`` is any object with the ``classify_batch`` method of
    :class:`LexiconClassifier`; by default it is a lexicon classifier.
    """

    def __init__(
        self,
        brand: Brand,
        thresholds: Thresholds,
        strategy: str,
        classifier: Classifier | None = None,
    ):
        self.matcher = RelevanceMatcher(brand)
        if classifier is None:
            classifier = LexiconClassifier(official_accounts=brand.official_accounts)
        self.classifier = classifier
        self.grader = Grader(thresholds, strategy)

    def analyse(self, items: Sequence[Item]) -> list[Assessment]:
        """Return one assessment per item, in the order of ``items``."""
        normalized = [self.normalize(item) for item in items]
        relevance = [
            self.matcher.match(n, item.text)
            for n, item in zip(normalized, items, strict=True)
        ]
        classifications = self.classifier.classify_batch(normalized, relevance, items)

        assessments = []
        for item, norm, rel, classification in zip(
            items, normalized, relevance, classifications, strict=True
        ):
            grading = self.grader.grade(item, norm, classification)
            assessments.append(Assessment(norm, rel, classification, grading))
        logger.debug("analysed items=%s", len(assessments))
        return assessments

    def normalize(self, item: Item) -> NormalizedText:
        """Normalise an item's title and body, keeping the brand's names as written."""
        return normalize(_item_text(item), self.matcher.protected)


def _item_text(item: Item) -> str:
    """Return the title and body of an item as one text."""
    text = item.text or ""
    if item.title and item.title not in text:
        return f"{item.title}\n{text}"
    return text
