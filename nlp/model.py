"""The trained kind classifier: a scikit-learn pipeline and its model file.

The pipeline, called ``classifier``, folds each text once with
:class:`nlp.segment.Segmenter` and joins three feature blocks: TF-IDF word 1-2
grams over the segmenter's words, TF-IDF character 2-3 grams, and the lexicon
cue counts of :mod:`nlp.features` through a ``DictVectorizer``. The two TF-IDF
blocks are the batch vectorizers of :mod:`nlp.ngrams`. A multinomial
``LogisticRegression`` with balanced class weights reads the blocks. Its
own probabilities are used as they are: out-of-fold on the training data they
were better calibrated than sigmoid ``CalibratedClassifierCV`` (expected
calibration error 0.040 against 0.090, measured on an earlier recipe and 3,309
training posts), and ``python pipeline.py train`` prints the figure again for
each new model (0.014 on the current training files).

Exceptions: :class:`ModelError` covers every model file that cannot be used.

The model file is a joblib dump of a plain dict: the metadata and the pickled
pipeline as bytes. Loading reads the metadata first and unpickles the pipeline
only when the scikit-learn version, the segmenter engine and its version, and
the user dictionary match.
"""

from __future__ import annotations

import errno
import functools
import io
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import scipy.sparse as sp
import sklearn
from sklearn.exceptions import InconsistentVersionWarning
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer

from items import Cue
from nlp.features import readable
from nlp.ngrams import CharNgramVectorizer, WordNgramVectorizer
from nlp.segment import Segmenter

logger = logging.getLogger(__name__)

FILE_FORMAT = 1
RANDOM_STATE = 0
RETRAIN_HINT = "retrain with: python pipeline.py train"
MAX_MODEL_CUES = 5
REQUIRED_METADATA = (
    "sklearn",
    "segmenter",
    "dictionary_hash",
    "labels",
    "trained_at",
    "data_hash",
    "canaries",
)
# The recipe was chosen on the field corpora that the evaluate command reads
# (车质网 complaint titles and car-forum reviews, each treated as about the
# brand), not on the development label set. Single characters (汽, 大, 有)
# were read as topic there, so character n-grams start at two. The cue block
# weighs as much as each TF-IDF block, whose rows have unit norm: the share
# of complaint titles judged grievance or complaint rose from 0.75 to 0.86.
# The inverse regularisation strength was chosen by cross-validation among
# 1, 10 and 30.
CUE_WEIGHT = 1.0
REGULARISATION_C = 10.0
CHARACTER_NGRAMS = (2, 3)


class ModelError(Exception):
    """A model file that is missing, corrupted or does not match this install."""


def select_texts(rows: Sequence[tuple[str, dict]]) -> list[str]:
    """Return the texts of model input rows (text, cue features)."""
    return [row[0] for row in rows]


def select_cues(rows: Sequence[tuple[str, dict]]) -> list[dict]:
    """Return the cue feature dicts of model input rows (text, cue features)."""
    return [row[1] for row in rows]


def fold_texts(
    rows: Sequence[tuple[str, dict]], segmenter: Segmenter
) -> list[tuple[str, dict]]:
    """Return model input rows with each text folded by ``segmenter``.

    Folding once here saves folding the text again in each TF-IDF block.
    """
    return [(segmenter.fold(text), cues) for text, cues in rows]


def build_classifier(
    segmenter: Segmenter,
    c: float = REGULARISATION_C,
    cue_weight: float = CUE_WEIGHT,
    character_ngrams: tuple[int, int] = CHARACTER_NGRAMS,
) -> Pipeline:
    """Return the untrained ``classifier`` pipeline over (text, cue dict) rows."""
    words = WordNgramVectorizer(
        tokenizer=segmenter.segment_folded,
        lowercase=False,
        token_pattern=None,
        ngram_range=(1, 2),
        min_df=2,
        sublinear_tf=True,
    )
    characters = CharNgramVectorizer(
        analyzer="char",
        lowercase=False,
        ngram_range=character_ngrams,
        min_df=2,
        sublinear_tf=True,
    )
    features = FeatureUnion(
        [
            ("words", _block(select_texts, words)),
            ("chars", _block(select_texts, characters)),
            ("cues", _block(select_cues, DictVectorizer())),
        ],
        transformer_weights={"words": 1.0, "chars": 1.0, "cues": cue_weight},
    )
    # On 2,373 training posts with scikit-learn 1.9.1, newton-cg converged in
    # 7 iterations (1.0 s) where lbfgs needed 46 (5.6 s).
    regression = LogisticRegression(
        C=c,
        class_weight="balanced",
        solver="newton-cg",
        max_iter=3000,
        random_state=RANDOM_STATE,
    )
    fold = FunctionTransformer(fold_texts, kw_args={"segmenter": segmenter})
    return Pipeline([("fold", fold), ("features", features), ("model", regression)])


def transform_rows(classifier: Pipeline, rows: Sequence[tuple[str, dict]]):
    """Return the CSR feature matrix of model input rows for a fitted classifier.

    The matrix equals ``classifier[:-1].transform(rows)``. Calling the blocks
    one by one skips the joblib set-up that ``FeatureUnion.transform`` repeats
    on every call.
    """
    folded = classifier.named_steps["fold"].transform(rows)
    union = classifier.named_steps["features"]
    weights = union.transformer_weights or {}
    blocks = []
    for name, block in union.transformer_list:
        matrix = block.transform(folded)
        weight = weights.get(name)
        blocks.append(matrix if weight is None else matrix * weight)
    return sp.hstack(blocks).tocsr()


def _block(select, vectorizer) -> Pipeline:
    selector = FunctionTransformer(select)
    return Pipeline([("select", selector), ("vectorize", vectorizer)])


def feature_names(classifier: Pipeline) -> np.ndarray:
    """Return the feature names of a fitted classifier, prefixed by block."""
    names = []
    for block, transformer in classifier.named_steps["features"].transformer_list:
        vectorizer = transformer.named_steps["vectorize"]
        names += [f"{block}:{name}" for name in vectorizer.get_feature_names_out()]
    return np.array(names, dtype=object)


def coefficients(classifier: Pipeline) -> np.ndarray:
    """Return the regression's coefficients, one row per class."""
    coef = classifier.named_steps["model"].coef_
    if coef.shape[0] == 1:
        # A two-class regression stores one row, for the second class.
        return np.vstack([-coef[0], coef[0]])
    return coef


def explain_rows(
    matrix, classes: np.ndarray, coef: np.ndarray, names: np.ndarray
) -> list[list[Cue]]:
    """Return, per row of a CSR matrix, the features that pushed it most toward a class.

    ``classes[i]`` is the row of ``coef`` that belongs to the class of matrix
    row ``i``. A feature's contribution is its coefficient times its value.
    Up to MAX_MODEL_CUES positive contributions are kept per row, largest
    first, and ties keep the column order.
    """
    row_of_value = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    contributions = matrix.data * coef[classes[row_of_value], matrix.indices]
    positive = np.flatnonzero(contributions > 0)
    # lexsort is stable and sorts by row first, then by falling contribution,
    # so the equal contributions of a row stay in column order.
    positive = positive[np.lexsort((-contributions[positive], row_of_value[positive]))]
    rows = row_of_value[positive]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
    top = positive[rank < MAX_MODEL_CUES]
    columns = matrix.indices[top]
    explanations: list[list[Cue]] = [[] for _ in range(matrix.shape[0])]
    for row, column in zip(row_of_value[top].tolist(), columns.tolist(), strict=True):
        explanations[row].append(_feature_cue(names[column]))
    return explanations


@functools.lru_cache(maxsize=65_536)
def _feature_cue(name: str) -> Cue:
    block, _, feature = name.partition(":")
    if block == "words":
        return Cue("model:words", feature)
    if block == "chars":
        return Cue("model:characters", feature)
    return Cue("model:cue", readable(feature))


def save(classifier: Pipeline, metadata: dict[str, Any], path: str | Path) -> Path:
    """Write the classifier and its metadata to ``path`` and return the path.

    The file is written under a temporary name of its own and renamed, so two
    processes saving at once each replace the file whole. Raises ModelError
    with the path when the file cannot be written.
    """
    path = Path(path)
    buffer = io.BytesIO()
    joblib.dump(classifier, buffer)
    envelope = {
        "format": FILE_FORMAT,
        "metadata": metadata,
        "payload": buffer.getvalue(),
    }
    temporary = None
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)
        os.close(handle)
        temporary = Path(name)
        joblib.dump(envelope, temporary, compress=3)
        temporary.replace(path)
    except OSError as exc:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        reason = exc.strerror or type(exc).__name__
        raise ModelError(f"{path}: cannot write the model file ({reason})") from None
    return path


def library_versions() -> dict[str, str]:
    """Return the scikit-learn version and the segmenter engine with its version."""
    return {"sklearn": sklearn.__version__, "segmenter": Segmenter.engine_version()}


def load(path: str | Path, dictionary_hash: str) -> tuple[Pipeline, dict[str, Any]]:
    """Read a model file and return the classifier and its metadata.

    Raises ModelError when the file is missing or unreadable, when it was
    written with another scikit-learn version or another segmenter engine or
    version, or when it was trained with another user dictionary than
    ``dictionary_hash``.
    """
    # NOTE: unpickling runs code stored in the file, so only model files that
    # this program wrote may be loaded. The metadata checks do not prevent it.
    path = Path(path)
    metadata = _read_metadata(path)
    _check_metadata(path, metadata, dictionary_hash)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", InconsistentVersionWarning)
            classifier = joblib.load(io.BytesIO(metadata.pop("_payload")))
    # Unpickling a damaged payload can raise almost any exception type.
    except Exception as exc:
        raise ModelError(
            f"{path}: cannot load the classifier ({type(exc).__name__}: {exc}); "
            f"{RETRAIN_HINT}"
        ) from None
    if not isinstance(classifier, Pipeline):
        raise ModelError(f"{path}: the file contains no classifier; {RETRAIN_HINT}")
    return classifier, metadata


def _read_metadata(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ModelError(f"{path}: model file not found; {RETRAIN_HINT}")
    try:
        envelope = joblib.load(path)
    # A truncated or foreign file fails with EOFError, UnpicklingError,
    # zlib.error, KeyError and others, depending on where it breaks.
    except Exception as exc:
        raise ModelError(
            f"{path}: cannot read the model file ({type(exc).__name__}: {exc}); {RETRAIN_HINT}"
        ) from None
    valid = (
        isinstance(envelope, dict)
        and envelope.get("format") == FILE_FORMAT
        and isinstance(envelope.get("metadata"), dict)
        and isinstance(envelope.get("payload"), bytes)
    )
    if not valid:
        raise ModelError(
            f"{path}: not a model file of format {FILE_FORMAT}; {RETRAIN_HINT}"
        )
    return {**envelope["metadata"], "_payload": envelope["payload"]}


def _check_metadata(path: Path, metadata: dict[str, Any], dictionary_hash: str) -> None:
    recorded = {**metadata, "segmenter": _recorded_segmenter(metadata)}
    missing = [key for key in REQUIRED_METADATA if not recorded.get(key)]
    if missing:
        raise ModelError(
            f"{path}: the model file lacks {', '.join(missing)}; {RETRAIN_HINT}"
        )
    for library, version in library_versions().items():
        saved = recorded[library]
        if saved != version:
            raise ModelError(
                f"{path}: the model was trained with {library} {saved}, "
                f"but this install uses {library} {version}; {RETRAIN_HINT}"
            )
    if metadata.get("dictionary_hash") != dictionary_hash:
        raise ModelError(
            f"{path}: the model was trained with another user dictionary (the brand "
            f"and competitor names in the config changed); {RETRAIN_HINT}"
        )


def _recorded_segmenter(metadata: dict[str, Any]) -> str | None:
    """Return the segmenter a model was trained with, as "rjieba 0.2.2".

    Model files written before the segmenter was recorded cut with jieba and
    record only its version.
    """
    if metadata.get("segmenter"):
        return metadata["segmenter"]
    if metadata.get("jieba"):
        return f"jieba {metadata['jieba']}"
    return None
