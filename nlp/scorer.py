"""Scoring posts with a trained model, in numpy alone.

The scikit-learn pipeline of :mod:`nlp.model` is what training fits. Once it
is fitted, what it does to a post is a few arrays: the vocabulary of each
block and its inverse document frequencies, the block weights, and the
regression's coefficients. :class:`Scorer` keeps only those arrays and
applies them the way the pipeline does, so a running service loads neither
scikit-learn nor SciPy and keeps no dict of n-gram strings. Its
probabilities equal the pipeline's to within rounding (the tests compare
them), and its explanations name the same features.

The state of a scorer, :func:`nlp.model.scorer_state` of a fitted pipeline,
holds plain lists and numpy arrays and is stored in the model file beside
the pipeline.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from items import Cue
from nlp.codes import CHAR_BITS, CodeTable, WordTable, char_ngram_codes
from nlp.features import readable
from nlp.segment import Segmenter

MAX_MODEL_CUES = 5
# The character block collapses whitespace runs to one space, as
# TfidfVectorizer's character analyzer does.
_WHITESPACE_RUN = re.compile(r"\s\s+")
_CHAR_MASK = (1 << CHAR_BITS) - 1


@dataclass(frozen=True, slots=True)
class SparseRows:
    """Rows of a sparse matrix in compressed sparse row form, indices sorted."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    shape: tuple[int, int]

    @classmethod
    def from_entries(
        cls, rows: np.ndarray, columns: np.ndarray, values: np.ndarray, shape
    ) -> SparseRows:
        order = np.lexsort((columns, rows))
        per_row = np.bincount(rows, minlength=shape[0])
        indptr = np.concatenate([[0], np.cumsum(per_row)]).astype(np.int64)
        return cls(indptr, columns[order], values[order], shape)

    def row_of_value(self) -> np.ndarray:
        return np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))


class Scorer:
    """The fitted pipeline's transform, probabilities and explanations, in numpy.

    Rows are (text, cue features) pairs as :func:`nlp.trained.model_input`
    builds them. Raises ValueError for a state it cannot read.
    """

    def __init__(self, state: Mapping[str, Any], segmenter: Segmenter):
        try:
            self._segmenter = segmenter
            self.classes = [str(kind) for kind in state["classes"]]
            self._coef = np.asarray(state["coef"], dtype=np.float64)
            self._intercept = np.asarray(state["intercept"], dtype=np.float64)
            self._binary = bool(state["binary"])
            self._words = _WordBlock(state["words"])
            self._chars = _CharBlock(state["chars"])
            self._cues = _CueBlock(state["cues"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"not a scorer state ({type(exc).__name__}: {exc})"
            ) from None
        width = len(self._words) + len(self._chars) + len(self._cues)
        if self._coef.shape != (len(self.classes), width):
            raise ValueError(
                f"coefficients of shape {self._coef.shape} for {len(self.classes)} "
                f"classes and {width} features"
            )
        if self._intercept.shape != (len(self.classes),):
            raise ValueError(
                f"intercepts of shape {self._intercept.shape} for "
                f"{len(self.classes)} classes"
            )
        arrays = (self._coef, self._intercept, self._words.idf, self._chars.idf)
        if not all(np.isfinite(array).all() for array in arrays):
            raise ValueError("coefficients or idf values that are not finite")
        self.width = width

    def transform(self, rows: Sequence[tuple[str, dict]]) -> SparseRows:
        """Return the weighted feature rows of (text, cue features) rows."""
        folded = [self._segmenter.fold(text) for text, _ in rows]
        parts = [
            self._words.entries(folded, self._segmenter),
            self._chars.entries(folded),
            self._cues.entries([cues for _, cues in rows]),
        ]
        offset, rows_, columns, values = 0, [], [], []
        for block, (r, c, v) in zip(
            (self._words, self._chars, self._cues), parts, strict=True
        ):
            rows_.append(r)
            columns.append(c + offset)
            values.append(v)
            offset += len(block)
        return SparseRows.from_entries(
            np.concatenate(rows_),
            np.concatenate(columns),
            np.concatenate(values),
            (len(rows), self.width),
        )

    def probabilities(self, matrix: SparseRows) -> np.ndarray:
        """Return the class probabilities of each row, classes in ``self.classes`` order.

        Several classes go through the softmax of the regression's scores. A
        two-class regression has one score, which goes through the logistic
        function, as the regression does it.
        """
        row_of_value = matrix.row_of_value()
        scores = np.empty((matrix.shape[0], len(self.classes)))
        for index, weights in enumerate(self._coef):
            scores[:, index] = np.bincount(
                row_of_value,
                weights=matrix.data * weights[matrix.indices],
                minlength=matrix.shape[0],
            )
        scores += self._intercept
        if self._binary:
            positive = 1.0 / (1.0 + np.exp(-scores[:, 1]))
            return np.column_stack([1.0 - positive, positive])
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=1, keepdims=True)
        return scores

    def explain(self, matrix: SparseRows, classes: np.ndarray) -> list[list[Cue]]:
        """Return, per row, the features that pushed it most toward its class.

        ``classes[i]`` is the index of the class chosen for row ``i``. A
        feature's contribution is its coefficient times its value. Up to
        MAX_MODEL_CUES positive contributions are kept per row, largest first,
        and ties keep the column order.
        """
        row_of_value = matrix.row_of_value()
        contributions = matrix.data * self._coef[classes[row_of_value], matrix.indices]
        positive = np.flatnonzero(contributions > 0)
        # lexsort is stable and sorts by row first, then by falling contribution,
        # so the equal contributions of a row stay in column order.
        positive = positive[
            np.lexsort((-contributions[positive], row_of_value[positive]))
        ]
        rows = row_of_value[positive]
        rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
        top = positive[rank < MAX_MODEL_CUES]
        explanations: list[list[Cue]] = [[] for _ in range(matrix.shape[0])]
        for row, column in zip(
            row_of_value[top].tolist(), matrix.indices[top].tolist(), strict=True
        ):
            explanations[row].append(self.feature_cue(column))
        return explanations

    def feature_name(self, column: int) -> str:
        """Return the name of a feature column, prefixed by its block."""
        for name, block in (
            ("words", self._words),
            ("chars", self._chars),
            ("cues", self._cues),
        ):
            if column < len(block):
                return f"{name}:{block.name(column)}"
            column -= len(block)
        raise IndexError(f"feature column {column} out of range")

    def feature_cue(self, column: int) -> Cue:
        return _feature_cue(self.feature_name(column))


@functools.lru_cache(maxsize=65_536)
def _feature_cue(name: str) -> Cue:
    block, _, feature = name.partition(":")
    if block == "words":
        return Cue("model:words", feature)
    if block == "chars":
        return Cue("model:characters", feature)
    return Cue("model:cue", readable(feature))


def tfidf(
    rows: np.ndarray,
    columns: np.ndarray,
    shape: tuple[int, int],
    idf: np.ndarray,
    sublinear: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the TF-IDF entries, rows of unit length, of (row, column) occurrences."""
    width = max(shape[1], 1)
    keys, counts = np.unique(rows * width + columns, return_counts=True)
    rows, columns = keys // width, keys % width
    values = counts.astype(np.float64)
    if sublinear:
        np.log(values, out=values)
        values += 1.0
    values *= idf[columns]
    norms = np.sqrt(np.bincount(rows, weights=values * values, minlength=shape[0]))
    norms[norms == 0.0] = 1.0
    values /= norms[rows]
    return rows, columns, values


class _WordBlock:
    def __init__(self, state: Mapping[str, Any]):
        self.table = WordTable(state["words"], state["firsts"], state["seconds"])
        self.idf = np.asarray(state["idf"], dtype=np.float64)
        self.weight = float(state["weight"])
        self.sublinear = bool(state["sublinear_tf"])
        self.ngram_range = tuple(state["ngram_range"])
        self._texts: dict[str, int] | None = None
        if len(self.idf) != len(self.table):
            raise ValueError("word idf and vocabulary differ in length")

    def __len__(self) -> int:
        return len(self.table)

    def name(self, column: int) -> str:
        return self.table.name(column)

    def entries(self, folded: Sequence[str], segmenter: Segmenter):
        token_lists = [segmenter.segment_folded(text) for text in folded]
        if any(" " in "".join(tokens) for tokens in token_lists):
            rows, columns = self._spaced_ngrams(token_lists)
        else:
            rows, columns = self.table.find(token_lists)
        shape = (len(folded), len(self))
        rows, columns, values = tfidf(rows, columns, shape, self.idf, self.sublinear)
        return rows, columns, values * self.weight

    def _spaced_ngrams(self, token_lists: Sequence[list[str]]):
        """Find n-grams by their joined text, as the vectorizer does for spaced tokens.

        A token with a space makes a pair of words ambiguous, so the table of
        word ids cannot be used for such a batch.
        """
        vocabulary = self._vocabulary()
        low, high = self.ngram_range
        rows, columns = [], []
        for row, tokens in enumerate(token_lists):
            for size in range(low, high + 1):
                for start in range(len(tokens) - size + 1):
                    column = vocabulary.get(" ".join(tokens[start : start + size]))
                    if column is not None:
                        rows.append(row)
                        columns.append(column)
        return np.array(rows, dtype=np.int64), np.array(columns, dtype=np.int64)

    def _vocabulary(self) -> dict[str, int]:
        if self._texts is None:
            self._texts = {self.table.name(c): c for c in range(len(self))}
        return self._texts


class _CharBlock:
    def __init__(self, state: Mapping[str, Any]):
        self.codes = np.asarray(state["codes"], dtype=np.uint64)
        self.idf = np.asarray(state["idf"], dtype=np.float64)
        self.weight = float(state["weight"])
        self.sublinear = bool(state["sublinear_tf"])
        self.ngram_range = tuple(state["ngram_range"])
        if len(self.idf) != len(self.codes):
            raise ValueError("character idf and vocabulary differ in length")
        self.table = CodeTable(self.codes, np.arange(len(self.codes), dtype=np.int64))

    def __len__(self) -> int:
        return len(self.codes)

    def name(self, column: int) -> str:
        code, chars = int(self.codes[column]), []
        while code:
            chars.append(chr((code & _CHAR_MASK) - 1))
            code >>= CHAR_BITS
        return "".join(reversed(chars))

    def entries(self, folded: Sequence[str]):
        texts = [_WHITESPACE_RUN.sub(" ", text) for text in folded]
        rows, codes = char_ngram_codes(texts, self.ngram_range)
        columns, known = self.table.find(codes)
        shape = (len(texts), len(self))
        rows, columns, values = tfidf(
            rows[known], columns, shape, self.idf, self.sublinear
        )
        return rows, columns, values * self.weight


class _CueBlock:
    def __init__(self, state: Mapping[str, Any]):
        self.names = [str(name) for name in state["names"]]
        self.separator = str(state["separator"])
        self.weight = float(state["weight"])
        self.columns = {name: column for column, name in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.names)

    def name(self, column: int) -> str:
        return self.names[column]

    def entries(self, cue_rows: Sequence[Mapping[str, Any]]):
        """Return the entries of cue dicts as the dict vectorizer codes them.

        A number is the value of its feature; a string names the feature
        "name=value" with the value 1.
        """
        rows, columns, values = [], [], []
        for row, cues in enumerate(cue_rows):
            for feature, value in cues.items():
                if isinstance(value, str):
                    feature, value = f"{feature}{self.separator}{value}", 1.0
                column = self.columns.get(feature)
                if column is not None:
                    rows.append(row)
                    columns.append(column)
                    values.append(float(value) * self.weight)
        return (
            np.array(rows, dtype=np.int64),
            np.array(columns, dtype=np.int64),
            np.array(values, dtype=np.float64),
        )
