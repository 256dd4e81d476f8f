"""The shipped classifier, trained once per test session.

The configured default is the trained classifier, and a job trains it on first
use when its model file is missing. Tests that run the job point model_path at
this file, so that the session trains the model once and not once per test.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def shipped_model_path() -> Path:
    """Train the model on the shipped training files and return its file."""
    import config
    from nlp import model, training

    brand = config.load(ROOT / "config.yaml").brand
    data = training.read_training(training.training_files(ROOT))
    trained = training.train(data, brand)
    folder = Path(tempfile.mkdtemp(prefix="fenghuo-model-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return model.save(trained.classifier, trained.metadata, folder / "model.joblib")
