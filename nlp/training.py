"""Train the kind classifier from labelled posts.

Training records use the labelled-post layout (``text``, ``source``,
``author``, ``engagement``, ``labels.kind`` ...) and come from
``training/*.jsonl`` and ``demo/posts.jsonl`` in the project folder. Records
are sorted by their canonical JSON before training, so the same records give
the same model whatever the file order. Lines that are not valid JSON or lack
a known kind are skipped and counted, because the files may be written to
while they are read.

Irrelevant posts are decided by relevance matching before the model runs, so
by default the model learns the four other kinds (MODELLED_KINDS).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from config import Brand
from items import KINDS
from nlp import model, modelfile
from nlp.evaluation import RecordError, record_to_item
from nlp.normalize import normalize, protected_names
from nlp.scorer import Scorer
from nlp.segment import Segmenter
from nlp.trained import TrainedClassifier, model_input, official_handles

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MODELLED_KINDS = ("neutral", "praise", "grievance", "complaint")
CROSS_VALIDATION_FOLDS = 5


class TrainingError(ValueError):
    """Training data that cannot train a model, with what to add in the message."""


@dataclass
class TrainingData:
    """Labelled records read for training, with what was skipped."""

    records: list[dict[str, Any]]
    files: list[Path]
    skipped: int = 0
    per_file: dict[str, int] = field(default_factory=dict)

    @property
    def data_hash(self) -> str:
        digest = hashlib.sha256()
        for record in self.records:
            digest.update(_canonical(record).encode("utf-8") + b"\n")
        return digest.hexdigest()


def training_files(root: str | Path = PROJECT_ROOT) -> list[Path]:
    """Return the training files under ``root``: training/*.jsonl, then the demo set."""
    root = Path(root)
    files = sorted((root / "training").glob("*.jsonl"))
    demo = root / "demo" / "posts.jsonl"
    return files + ([demo] if demo.exists() else [])


def read_training(files: Iterable[str | Path]) -> TrainingData:
    """Read labelled records from JSON Lines files, skipping unusable lines."""
    records, skipped, per_file, paths = [], 0, {}, []
    for path in files:
        path = Path(path)
        paths.append(path)
        kept = 0
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                record = _parse(line, path, number)
                if record is None:
                    skipped += line.strip() != ""
                    continue
                records.append(record)
                kept += 1
        per_file[str(path)] = kept
    records.sort(key=_canonical)
    return TrainingData(records, paths, skipped, per_file)


def add_records(
    data: TrainingData, records: Sequence[dict[str, Any]], name: str
) -> None:
    """Add labelled records from elsewhere than a file, counted under ``name``.

    Records without a known kind or a text are skipped and counted, as file
    lines are. The records are sorted again, so the data hash does not depend
    on the order they come in.
    """
    kept = 0
    for record in records:
        labels = record.get("labels")
        valid = (
            isinstance(labels, dict)
            and labels.get("kind") in KINDS
            and isinstance(record.get("text"), str)
        )
        if not valid:
            data.skipped += 1
            continue
        data.records.append(dict(record))
        kept += 1
    data.per_file[name] = kept
    data.records.sort(key=_canonical)


def _parse(line: str, path: Path, number: int) -> dict[str, Any] | None:
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        logger.warning(
            "training line skipped file=%s line=%s reason=json", path, number
        )
        return None
    labels = record.get("labels") if isinstance(record, dict) else None
    valid = (
        isinstance(labels, dict)
        and labels.get("kind") in KINDS
        and isinstance(record.get("text"), str)
    )
    if not valid:
        logger.warning(
            "training line skipped file=%s line=%s reason=kind", path, number
        )
        return None
    return record


def _canonical(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, sort_keys=True)


def examples(
    records: Sequence[dict[str, Any]], brand: Brand, kinds: Sequence[str]
) -> tuple[list[tuple[str, dict]], list[str]]:
    """Return the model input rows and kinds of the records labelled with ``kinds``."""
    official = official_handles(brand)
    protected = protected_names(brand)
    rows, labels = [], []
    for index, record in enumerate(records):
        kind = record["labels"]["kind"]
        if kind not in kinds:
            continue
        try:
            item = record_to_item(record, index)
        except RecordError as exc:
            logger.warning("training record skipped error=%s", exc)
            continue
        rows.append(model_input(normalize(item.text, protected), item, official))
        labels.append(kind)
    return rows, labels


def train(
    data: TrainingData, brand: Brand, kinds: Sequence[str] = MODELLED_KINDS
) -> TrainedClassifier:
    """Fit the classifier on ``data`` and return it with its metadata and canaries."""
    rows, labels = examples(data.records, brand, kinds)
    counts = Counter(labels)
    _check_counts(counts, kinds)
    segmenter = Segmenter.for_brand(brand)
    classifier = model.build_classifier(segmenter)
    classifier.fit(rows, labels)

    metadata = {
        **modelfile.library_versions(),
        "dictionary_hash": segmenter.dictionary_hash,
        "labels": [str(label) for label in classifier.classes_],
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data_hash": data.data_hash,
        "training_counts": dict(sorted(counts.items())),
    }
    scorer = Scorer(model.scorer_state(classifier), segmenter)
    trained = TrainedClassifier(scorer, metadata, brand, classifier)
    metadata["canaries"] = trained.canary_predictions()
    logger.info("model trained records=%s classes=%s", len(labels), len(counts))
    return trained


def _check_counts(counts: Counter, kinds: Sequence[str]) -> None:
    missing = [kind for kind in kinds if counts.get(kind, 0) < 2]
    if missing:
        raise TrainingError(
            f"training data has fewer than 2 records of kind {', '.join(missing)}; "
            "add labelled records of every kind"
        )


@dataclass(frozen=True)
class CrossValidation:
    """Out-of-fold figures of the model on its own training data."""

    folds: int
    macro_f1: float
    calibration_error: float


def cross_validate(
    data: TrainingData, brand: Brand, kinds: Sequence[str] = MODELLED_KINDS
) -> CrossValidation:
    """Return stratified k-fold macro-F1 and calibration error on the training data.

    The figures cover the model alone, over ``kinds``, without relevance
    matching. Near-duplicates in the training data can fall into different
    folds, so they overstate what the model does on new posts.
    """
    rows, labels = examples(data.records, brand, kinds)
    _check_counts(Counter(labels), kinds)
    folds = min(CROSS_VALIDATION_FOLDS, min(Counter(labels).values()))
    classifier = model.build_classifier(Segmenter.for_brand(brand))
    splitter = StratifiedKFold(folds, shuffle=True, random_state=model.RANDOM_STATE)
    truth = np.array(labels)
    probabilities = cross_val_predict(
        classifier, rows, truth, cv=splitter, method="predict_proba"
    )
    classes = np.array(sorted(set(labels)))
    predicted = classes[probabilities.argmax(axis=1)]
    return CrossValidation(
        folds=folds,
        macro_f1=float(f1_score(truth, predicted, average="macro")),
        calibration_error=calibration_error(probabilities, predicted == truth),
    )


def calibration_error(
    probabilities: np.ndarray, correct: np.ndarray, bins: int = 10
) -> float:
    """Return the expected calibration error of the top-class probabilities.

    The top probabilities are put in equal-width bins. The error is the mean
    gap between confidence and accuracy per bin, weighted by bin size.
    """
    confidence = probabilities.max(axis=1)
    edges = np.linspace(0.0, 1.0, bins + 1)
    error = 0.0
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        members = (confidence > low) & (confidence <= high)
        if members.any():
            gap = correct[members].mean() - confidence[members].mean()
            error += members.mean() * abs(gap)
    return float(error)


# Models trained in this process, by (data hash, dictionary hash), so that
# several config folders in one process train once.
_trained_in_process: dict[tuple[str, str], tuple[Any, dict[str, Any]]] = {}


def train_and_save(path: str | Path, brand: Brand) -> None:
    """Train a model on the shipped training files and save it at ``path``.

    A model trained before in this process for the same data and dictionary
    is saved again instead of training anew. Raises TrainingError when the
    training data cannot train a model and ModelError when the file cannot be
    written.
    """
    data = read_training(training_files())
    key = (data.data_hash, Segmenter.for_brand(brand).dictionary_hash)
    if key not in _trained_in_process:
        trained = train(data, brand)
        _trained_in_process[key] = (trained.classifier, trained.metadata)
    model.save(*_trained_in_process[key], path)
