"""TF-IDF vectorizers for the trained classifier whose transform counts in batches.

Both classes fit as scikit-learn's ``TfidfVectorizer`` does and return the same
matrix from ``transform``, bit for bit. They differ in how the n-grams of a
batch are counted. ``TfidfVectorizer`` builds every n-gram of every text as a
string and looks it up in its vocabulary dict one at a time.
:class:`CharNgramVectorizer` codes the character n-grams of the whole batch
as integers and finds them in a sorted array of vocabulary codes.
:class:`WordNgramVectorizer` looks each token up once and finds word pairs
the same way. The count matrix then goes through the fitted TF-IDF weighting
of the base class unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.validation import check_is_fitted

from nlp.codes import (
    MAX_CHARS,
    MAX_WORDS,
    CodeTable,
    WordTable,
    char_code,
    char_ngram_codes,
)

# TfidfVectorizer's character analyzer collapses whitespace runs to one space.
_WHITESPACE_RUN = re.compile(r"\s\s+")


class CharNgramVectorizer(TfidfVectorizer):
    """A character n-gram TF-IDF vectorizer that counts a batch with numpy.

    ``transform`` supports ``analyzer="char"``, ``binary=False`` and n-grams
    of at most three characters, and raises ValueError for other settings.
    """

    def transform(self, raw_documents: Iterable) -> sp.csr_matrix:
        """Return the TF-IDF matrix of ``raw_documents``, one row per document."""
        check_is_fitted(self, msg="The TF-IDF vectorizer is not fitted")
        if self.analyzer != "char" or self.binary or self.ngram_range[1] > MAX_CHARS:
            raise ValueError(
                "CharNgramVectorizer supports analyzer='char', binary=False and "
                f"n-grams of at most {MAX_CHARS} characters"
            )
        preprocess = self.build_preprocessor()
        texts = [
            _WHITESPACE_RUN.sub(" ", preprocess(self.decode(document)))
            for document in raw_documents
        ]
        rows, codes = char_ngram_codes(texts, self.ngram_range)
        columns, known = self._code_table().find(codes)
        counts = count_matrix(rows[known], columns, len(texts), len(self.vocabulary_))
        return self._tfidf.transform(counts.astype(self.dtype, copy=False), copy=False)

    def _code_table(self) -> CodeTable:
        """Return the table of vocabulary n-gram codes, built on first use."""
        table = self.__dict__.get("_table")
        if table is None:
            codes = np.fromiter(map(char_code, self.vocabulary_), dtype=np.uint64)
            columns = np.fromiter(self.vocabulary_.values(), dtype=np.int64)
            table = self._table = CodeTable(codes, columns)
        return table

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_table", None)
        return state


class WordNgramVectorizer(TfidfVectorizer):
    """A word 1-2 gram TF-IDF vectorizer that looks each token up once.

    ``transform`` supports ``analyzer="word"``, ``binary=False``, no stop
    words and n-grams of at most two words, and raises ValueError for other
    settings. A batch in which a token contains a space, which would make a
    pair of words ambiguous, is counted by ``TfidfVectorizer`` itself.
    """

    def transform(self, raw_documents: Iterable) -> sp.csr_matrix:
        """Return the TF-IDF matrix of ``raw_documents``, one row per document."""
        check_is_fitted(self, msg="The TF-IDF vectorizer is not fitted")
        supported = self.analyzer == "word" and not self.binary
        if not supported or self.stop_words is not None:
            raise ValueError(
                "WordNgramVectorizer supports analyzer='word', binary=False and "
                "no stop words"
            )
        if self.ngram_range[1] > MAX_WORDS:
            raise ValueError(f"WordNgramVectorizer supports at most {MAX_WORDS} words")
        preprocess, tokenize = self.build_preprocessor(), self.build_tokenizer()
        documents = list(raw_documents)
        token_lists = [tokenize(preprocess(self.decode(d))) for d in documents]
        if any(" " in "".join(tokens) for tokens in token_lists):
            return super().transform(documents)
        rows, columns = self._word_table().find(token_lists)
        counts = count_matrix(rows, columns, len(documents), len(self.vocabulary_))
        return self._tfidf.transform(counts.astype(self.dtype, copy=False), copy=False)

    def _word_table(self) -> WordTable:
        """Return the table of vocabulary words and word pairs, built on first use."""
        table = self.__dict__.get("_table")
        if table is None:
            table = self._table = WordTable.from_vocabulary(self.vocabulary_)
        return table

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_table", None)
        return state


def count_matrix(
    rows: np.ndarray, columns: np.ndarray, row_count: int, width: int
) -> sp.csr_array:
    """Return the CSR count matrix of (row, column) occurrences, indices sorted."""
    keys, counts = np.unique(rows * width + columns, return_counts=True)
    per_row = np.bincount(keys // width, minlength=row_count)
    # 32-bit indices where they suffice, as CountVectorizer builds them.
    index_type = (
        np.int32 if max(len(keys), width) <= np.iinfo(np.int32).max else np.int64
    )
    indptr = np.concatenate([[0], np.cumsum(per_row)]).astype(index_type)
    indices = (keys % width).astype(index_type)
    matrix = sp.csr_array(
        (counts, indices, indptr), shape=(row_count, width), dtype=np.float64
    )
    matrix.sort_indices()
    return matrix
