"""Integer codes of n-grams and a hash table from codes to columns, in numpy alone.

A character is coded as its code point + 1, which fits in 21 bits, so an
n-gram of up to three characters fits in 63 bits and a shorter n-gram never
has the code of a longer one. A word pair is coded from the ids of its two
words. :class:`CodeTable` finds a batch of codes at once. The TF-IDF
vectorizers of :mod:`nlp.ngrams` and the model scorer of :mod:`nlp.scorer`
share them; this module imports neither scikit-learn nor SciPy.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np

CHAR_BITS = 21
MAX_CHARS = 3
MAX_WORDS = 2


def pair_code(first: np.ndarray, second: np.ndarray, token_count: int) -> np.ndarray:
    # + 1 because the code table reserves 0 for its empty slots.
    return (first * token_count + second + 1).astype(np.uint64)


def char_code(ngram: str) -> int:
    code = 0
    for char in ngram:
        code = (code << CHAR_BITS) | (ord(char) + 1)
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
            code = (code << np.uint64(CHAR_BITS)) | chars[fits + offset]
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


class WordTable:
    """A vocabulary of words and word pairs, looked up a batch at a time.

    Every word of the vocabulary has an id, including words that occur only
    in pairs. ``firsts[column]`` and ``seconds[column]`` are the ids of the
    n-gram in that column, ``seconds`` being -1 for a single word. Words must
    not contain a space, which joins the two words of a pair.
    """

    def __init__(self, words: Sequence[str], firsts: np.ndarray, seconds: np.ndarray):
        self.words = list(words)
        self.firsts = np.asarray(firsts, dtype=np.int64)
        self.seconds = np.asarray(seconds, dtype=np.int64)
        self.ids = {word: index for index, word in enumerate(self.words)}
        count = len(self.words)
        valid = self.firsts.shape == self.seconds.shape and (
            ((self.firsts >= 0) & (self.firsts < count)).all()
            and ((self.seconds >= -1) & (self.seconds < count)).all()
        )
        if not valid:
            raise ValueError("word ids out of range for the vocabulary")
        columns = np.arange(len(self.firsts), dtype=np.int64)
        single = self.seconds < 0
        self._single_columns = np.full(len(self.words), -1, dtype=np.int64)
        self._single_columns[self.firsts[single]] = columns[single]
        codes = pair_code(self.firsts[~single], self.seconds[~single], len(self.words))
        self._pairs = CodeTable(codes, columns[~single])

    @classmethod
    def from_vocabulary(cls, vocabulary: Mapping[str, int]) -> WordTable:
        """Return the table of a {n-gram: column} vocabulary of one- and two-word n-grams."""
        ids: dict[str, int] = {}
        firsts = np.full(len(vocabulary), -1, dtype=np.int64)
        seconds = np.full(len(vocabulary), -1, dtype=np.int64)
        for ngram, column in vocabulary.items():
            words = ngram.split(" ")
            if len(words) > MAX_WORDS:
                raise ValueError(f"an n-gram of more than {MAX_WORDS} words: {ngram!r}")
            firsts[column] = ids.setdefault(words[0], len(ids))
            if len(words) == 2:
                seconds[column] = ids.setdefault(words[1], len(ids))
        return cls(list(ids), firsts, seconds)

    def __len__(self) -> int:
        return len(self.firsts)

    def name(self, column: int) -> str:
        """Return the n-gram in ``column``, its words joined by a space."""
        first, second = self.firsts[column], self.seconds[column]
        if second < 0:
            return self.words[first]
        return f"{self.words[first]} {self.words[second]}"

    def find(self, token_lists: Sequence[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        """Return the row and column of every known word and word pair of a batch."""
        tokens = itertools.chain.from_iterable(token_lists)
        ids = np.fromiter(map(self.ids.get, tokens, itertools.repeat(-1)), np.int64)
        lengths = np.fromiter(map(len, token_lists), dtype=np.int64)
        row_of_token = np.repeat(np.arange(len(token_lists)), lengths)
        known = np.flatnonzero(ids >= 0)
        single = known[self._single_columns[ids[known]] >= 0]
        first = np.flatnonzero((ids[:-1] >= 0) & (ids[1:] >= 0))
        first = first[row_of_token[first] == row_of_token[first + 1]]
        codes = pair_code(ids[first], ids[first + 1], len(self.words))
        pair_columns, found = self._pairs.find(codes)
        rows = np.concatenate([row_of_token[single], row_of_token[first[found]]])
        columns = np.concatenate([self._single_columns[ids[single]], pair_columns])
        return rows, columns
