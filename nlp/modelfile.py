"""The model file: what training wrote, read back without scikit-learn.

The file is a joblib dump of a plain dict: the format number, the metadata,
the scorer state of :mod:`nlp.scorer` (lists and numpy arrays) and the fitted
scikit-learn pipeline pickled as bytes. Loading for scoring reads the
metadata and the scorer state and leaves the pipeline bytes alone, so the job
never imports scikit-learn. :func:`load_pipeline` unpickles the pipeline for
the commands that need it.

Exceptions: :class:`ModelError` covers every model file that cannot be used.
"""

from __future__ import annotations

import errno
import importlib.metadata
import io
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import joblib

from nlp.segment import Segmenter

FILE_FORMAT = 2
RETRAIN_HINT = "retrain with: python pipeline.py train"
REQUIRED_METADATA = (
    "sklearn",
    "segmenter",
    "dictionary_hash",
    "labels",
    "trained_at",
    "data_hash",
    "canaries",
)


class ModelError(Exception):
    """A model file that is missing, corrupted or does not match this install."""


def write(
    path: str | Path, metadata: dict[str, Any], scorer: dict[str, Any], pipeline: bytes
) -> Path:
    """Write a model file at ``path`` and return the path.

    The file is written under a temporary name of its own and renamed, so two
    processes saving at once each replace the file whole. Raises ModelError
    with the path when the file cannot be written.
    """
    path = Path(path)
    envelope = {
        "format": FILE_FORMAT,
        "metadata": metadata,
        "scorer": scorer,
        "payload": pipeline,
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
    """Return the scikit-learn version and the segmenter engine with its version.

    The version is read from the installed package's metadata, which does not
    import scikit-learn.
    """
    return {
        "sklearn": importlib.metadata.version("scikit-learn"),
        "segmenter": Segmenter.engine_version(),
    }


def load(
    path: str | Path, dictionary_hash: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a model file and return its scorer state and its metadata.

    Raises ModelError when the file is missing or unreadable, when it was
    written with another scikit-learn version or another segmenter engine or
    version, or when it was trained with another user dictionary than
    ``dictionary_hash``.
    """
    path = Path(path)
    envelope = _read(path)
    _check_metadata(path, envelope["metadata"], dictionary_hash)
    return envelope["scorer"], envelope["metadata"]


def read_metadata(path: str | Path) -> dict[str, Any]:
    """Read a model file's metadata without checking it against this install.

    For showing what a file contains: the version, the training counts and the
    figures recorded at training time. Raises ModelError when the file is
    missing or is not a model file.
    """
    return _read(Path(path))["metadata"]


def load_pipeline(path: str | Path, dictionary_hash: str) -> tuple[Any, dict[str, Any]]:
    """Read a model file and return the fitted scikit-learn pipeline and its metadata.

    Raises ModelError as :func:`load` does, and when the pipeline cannot be
    unpickled.
    """
    # NOTE: unpickling runs code stored in the file, so only model files that
    # this program wrote may be loaded. The metadata checks do not prevent it.
    from sklearn.exceptions import InconsistentVersionWarning
    from sklearn.pipeline import Pipeline

    path = Path(path)
    envelope = _read(path)
    _check_metadata(path, envelope["metadata"], dictionary_hash)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", InconsistentVersionWarning)
            pipeline = joblib.load(io.BytesIO(envelope["payload"]))
    # Unpickling a damaged payload can raise almost any exception type.
    except Exception as exc:
        raise ModelError(
            f"{path}: cannot load the classifier ({type(exc).__name__}: {exc}); "
            f"{RETRAIN_HINT}"
        ) from None
    if not isinstance(pipeline, Pipeline):
        raise ModelError(f"{path}: the file contains no classifier; {RETRAIN_HINT}")
    return pipeline, envelope["metadata"]


def _read(path: Path) -> dict[str, Any]:
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
        and isinstance(envelope.get("scorer"), dict)
        and isinstance(envelope.get("payload"), bytes)
    )
    if not valid:
        raise ModelError(
            f"{path}: not a model file of format {FILE_FORMAT}; {RETRAIN_HINT}"
        )
    return envelope


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
