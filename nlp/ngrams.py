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

import itertools
import re
from collections.abc import Iterable, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.validation import check_is_fitted

# TfidfVectorizer's character analyzer collapses whitespace runs to one space.
_WHITESPACE_RUN = re.compile(r"\s\s+")
# A character is coded as its code point + 1, which fits in 21 bits. So an
# n-gram of up to three characters fits in 63 bits, and a shorter n-gram
# never has the code of a longer one.
_CHAR_BITS = 21
MAX_CHARS = 3
MAX_WORDS = 2


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
            codes = np.fromiter(map(_char_code, self.vocabulary_), dtype=np.uint64)
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
        rows, columns = self._word_ngram_columns(token_lists)
        counts = count_matrix(rows, columns, len(documents), len(self.vocabulary_))
        return self._tfidf.transform(counts.astype(self.dtype, copy=False), copy=False)

    def _word_ngram_columns(
        self, token_lists: Sequence[list[str]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the row and vocabulary column of every known n-gram in the batch."""
        token_ids, single_columns, pairs = self._token_tables()
        tokens = itertools.chain.from_iterable(token_lists)
        ids = np.fromiter(map(token_ids.get, tokens, itertools.repeat(-1)), np.int64)
        lengths = np.fromiter(map(len, token_lists), dtype=np.int64)
        row_of_token = np.repeat(np.arange(len(token_lists)), lengths)
        known = ids >= 0
        rows, columns = [np.empty(0, dtype=np.int64)], [np.empty(0, dtype=np.int64)]
        if self.ngram_range[0] == 1:
            single = np.flatnonzero(known)
            single = single[single_columns[ids[single]] >= 0]
            rows.append(row_of_token[single])
            columns.append(single_columns[ids[single]])
        if self.ngram_range[1] == 2:
            first = np.flatnonzero(known[:-1] & known[1:])
            first = first[row_of_token[first] == row_of_token[first + 1]]
            codes = _pair_code(ids[first], ids[first + 1], len(token_ids))
            pair_columns, found = pairs.find(codes)
            rows.append(row_of_token[first[found]])
            columns.append(pair_columns)
        return np.concatenate(rows), np.concatenate(columns)

    def _token_tables(self) -> tuple[dict[str, int], np.ndarray, CodeTable]:
        """Return token ids, the column of each id as a single word, and word pairs.

        Every word of the vocabulary gets an id, including words that occur
        only in pairs. Built on first use.
        """
        tables = self.__dict__.get("_tables")
        if tables is None:
            token_ids: dict[str, int] = {}
            for ngram in self.vocabulary_:
                for word in ngram.split(" "):
                    token_ids.setdefault(word, len(token_ids))
            single_columns = np.full(len(token_ids), -1, dtype=np.int64)
            firsts, seconds, pair_columns = [], [], []
            for ngram, column in self.vocabulary_.items():
                words = ngram.split(" ")
                if len(words) == 1:
                    single_columns[token_ids[ngram]] = column
                else:
                    firsts.append(token_ids[words[0]])
                    seconds.append(token_ids[words[1]])
                    pair_columns.append(column)
            codes = _pair_code(
                np.array(firsts, dtype=np.int64),
                np.array(seconds, dtype=np.int64),
                len(token_ids),
            )
            pairs = CodeTable(codes, np.array(pair_columns, dtype=np.int64))
            tables = self._tables = (token_ids, single_columns, pairs)
        return tables

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_tables", None)
        return state


def _pair_code(first: np.ndarray, second: np.ndarray, token_count: int) -> np.ndarray:
    # + 1 because the code table reserves 0 for its empty slots.
    return (first * token_count + second + 1).astype(np.uint64)


def _char_code(ngram: str) -> int:
    code = 0
    for char in ngram:
        code = (code << _CHAR_BITS) | (ord(char) + 1)
    return code


def char_ngram_codes(
    texts: Sequence[str], ngram_range: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Return the row and integer code of every character n-gram of ``texts``."""
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    encoded = "".join(texts).encode("utf-32-le", "surrogatepass")
    chars = np.frombuffer(encoded, dtype=np.uint32).astype(np.uint64) + 1
    row_of_char = np.repeat(np.arange(len(texts)), lengths)
    row_end = np.repeat(np.cumsum(lengths), lengths)
    starts = np.arange(len(chars))
    rows, codes = [], []
    for size in range(ngram_range[0], ngram_range[1] + 1):
        fits = starts[starts + size <= row_end]
        code = chars[fits]
        for offset in range(1, size):
            code = (code << np.uint64(_CHAR_BITS)) | chars[fits + offset]
        rows.append(row_of_char[fits])
        codes.append(code)
    return np.concatenate(rows), np.concatenate(codes)


class CodeTable:
    """A hash table from nonzero 64-bit codes to columns, searched with numpy.

    It uses open addressing with linear probing, at most a quarter full, so a
    search resolves most codes at the first slot. Every step of a search
    handles all the codes still open at once.
    """

    _MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)

    def __init__(self, codes: np.ndarray, columns: np.ndarray):
        bits = max(4, (4 * len(codes)).bit_length())
        self._shift = np.uint64(64 - bits)
        self._mask = np.uint64((1 << bits) - 1)
        self._codes = np.zeros(1 << bits, dtype=np.uint64)
        self._columns = np.full(1 << bits, -1, dtype=np.int64)
        pending = np.arange(len(codes))
        slots = self._first_slots(codes)
        while len(pending):
            free = np.flatnonzero(self._codes[slots] == 0)
            claimed, first = np.unique(slots[free], return_index=True)
            winners = pending[free[first]]
            self._codes[claimed] = codes[winners]
            self._columns[claimed] = columns[winners]
            waiting = np.ones(len(pending), dtype=bool)
            waiting[free[first]] = False
            pending = pending[waiting]
            slots = (slots[waiting] + np.uint64(1)) & self._mask

    def find(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the columns of the codes found and the mask of found codes."""
        columns = np.full(len(codes), -1, dtype=np.int64)
        pending = np.arange(len(codes))
        slots = self._first_slots(codes)
        while len(pending):
            stored = self._codes[slots]
            hit = stored == codes[pending]
            columns[pending[hit]] = self._columns[slots[hit]]
            # An empty slot ends the search for a code that is not stored.
            going_on = ~hit & (stored != 0)
            pending = pending[going_on]
            slots = (slots[going_on] + np.uint64(1)) & self._mask
        found = columns >= 0
        return columns[found], found

    def _first_slots(self, codes: np.ndarray) -> np.ndarray:
        # Fibonacci hashing: the top bits of code * 2^64 / golden ratio.
        return (codes * self._MULTIPLIER) >> self._shift


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
