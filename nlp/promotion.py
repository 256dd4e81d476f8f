"""The candidate model: where ``python pipeline.py train`` writes it, and
how a lead promotes it to the model that the job reads.

Training writes ``model.candidate.joblib`` beside the configured model file,
so a new model is only used once a person has compared its figures with the
current ones. Promotion keeps the replaced file as ``model.previous.joblib``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from config import Brand
from nlp.modelfile import ModelError

logger = logging.getLogger(__name__)


def candidate_path(model_path: str | Path) -> Path:
    """Return the candidate file beside ``model_path`` (``model.candidate.joblib``)."""
    path = Path(model_path)
    return path.with_name(f"{path.stem}.candidate{path.suffix}")


def previous_path(model_path: str | Path) -> Path:
    """Return where promotion keeps the replaced model (``model.previous.joblib``)."""
    path = Path(model_path)
    return path.with_name(f"{path.stem}.previous{path.suffix}")


def model_version(metadata: dict[str, Any]) -> str:
    """Return the version that classifications of a model record."""
    return f"trained-{str(metadata.get('data_hash', ''))[:12]}"


def check_candidate(model_path: str | Path, brand: Brand) -> dict[str, Any]:
    """Load the candidate as the job would and return its metadata.

    Raises ModelError when there is no candidate or the job could not use it
    (another scikit-learn or segmenter version, another user dictionary,
    changed canary predictions).
    """
    from nlp.trained import TrainedClassifier

    candidate = candidate_path(model_path)
    if not candidate.exists():
        raise ModelError(
            f"{candidate}: no candidate model; write one with: python pipeline.py train"
        )
    return TrainedClassifier.load(candidate, brand).metadata


def replace_with_candidate(model_path: str | Path) -> Path:
    """Move the candidate over the model file, keeping the old file as previous.

    Each step is a rename or a copy under a temporary name, so the job never
    reads a half-written file. Returns the model path. Raises ModelError when
    a file cannot be moved.
    """
    path = Path(model_path)
    candidate = candidate_path(path)
    try:
        # Two promotions at once would otherwise both copy the model over the
        # previous file, and the second would lose the model before it.
        with _locked(path.with_name(path.name + ".lock")):
            if not candidate.exists():
                raise ModelError(
                    f"{candidate}: no candidate model; it was promoted already "
                    "or never written (python pipeline.py train)"
                )
            if path.exists():
                temporary = previous_path(path).with_suffix(".tmp")
                shutil.copy2(path, temporary)
                os.replace(temporary, previous_path(path))
            os.replace(candidate, path)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ModelError(
            f"{candidate}: cannot promote the candidate ({reason})"
        ) from None
    logger.info("model promoted path=%s", path)
    return path


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (created if missing)."""
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
