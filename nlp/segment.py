"""Word segmentation with rjieba and a user dictionary built from the brand config.

The user dictionary contains the brand's name, aliases and models and the
competitors' names, aliases and models, lower-cased and without inner spaces,
so that "SU7 Ultra", "问界Ｍ7" and "理想l9" keep their brand and model words
whole. Text is folded the same way before it is cut. A negator is joined to the
word it governs ("不" + "满意" gives "不满意"). "无" is not a negator, so "无语"
stays one negative word.

The cutting is done by rjieba, a binding of the Rust jieba-rs, with jieba's
dictionary and the HMM off. With the same user words it gives the same tokens
as jieba 0.42.1 on nearly every post. Where they differ, the two cut a run of
one repeated character ("嘀嘀嘀") at different places, because both cuts are
equally likely. ``bench/segment_agreement.py`` prints the share of identical
posts and tokens. :class:`JiebaSegmenter` cuts with jieba itself, as the
reference for that comparison.

Each distinct dictionary gets one private tokenizer per engine, built on first
use and shared by every segmenter with the same words. The module-level
tokenizers of jieba and rjieba are left unchanged.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import re
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import rjieba

from config import Brand
from nlp.normalize import fold_characters

logger = logging.getLogger(__name__)

# Frequency given to user words: high enough that the dictionary path through a
# brand or model name always beats splitting it.
USER_WORD_FREQUENCY = 100_000
NEGATORS = frozenset({"不", "没", "没有", "未", "别", "不是", "并不", "并非", "从不"})
# Emoticon codes such as [怒] are counted as cue features and leave the text.
_EMOTICON = re.compile(r"\[[\u4e00-\u9fffA-Za-z][\u4e00-\u9fffA-Za-z0-9]{0,7}\]")
_ASCII_UPPER = {code: code + 32 for code in range(ord("A"), ord("Z") + 1)}
# Lower-casing the runs of ASCII capitals with a regex is faster than
# str.translate on Chinese text, which looks up every character.
_ASCII_UPPER_RUN = re.compile("[A-Z]+")
_HAN = re.compile(r"[\u4e00-\u9fff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# A dictionary word typed with spaces inside has whitespace between two
# printable ASCII characters. Most posts have none, and this search is cheaper
# than the search for the spaced words themselves.
_ASCII_GAP = re.compile(r"[!-~]\s+[!-~]")

_tokenizers: dict[tuple[str, tuple[str, ...]], object] = {}
_tokenizers_lock = threading.Lock()


def user_words(brand: Brand) -> tuple[str, ...]:
    """Return the sorted user dictionary words for ``brand``, in folded form."""
    words = [brand.name, *brand.aliases, *brand.models]
    for competitor in brand.competitors:
        words += [competitor.name, *competitor.aliases, *competitor.models]
    folded = {_fold_word(word) for word in words}
    return tuple(sorted(word for word in folded if word))


def dictionary_hash(words: Sequence[str]) -> str:
    """Return a SHA-256 hex digest of a user dictionary and the joining rules."""
    text = "\n".join(words) + "\n--\n" + " ".join(sorted(NEGATORS))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _fold_word(word: str) -> str:
    return re.sub(r"\s+", "", fold_characters(word).translate(_ASCII_UPPER))


def _spaced_pattern(words: Iterable[str]) -> re.Pattern | None:
    """Match dictionary words typed with spaces inside them ("model 3")."""
    parts = []
    for word in sorted(words, key=len, reverse=True):
        if len(word) > 1 and word.isascii():
            parts.append(r"\s*".join(re.escape(char) for char in word))
    if not parts:
        return None
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(parts) + r")(?![a-z0-9])")


def _shared_tokenizer(engine: str, words: tuple[str, ...]):
    """Return the tokenizer of ``engine`` for ``words``, building it on first use."""
    key = (engine, words)
    with _tokenizers_lock:
        tokenizer = _tokenizers.get(key)
        if tokenizer is None:
            build = _build_jieba if engine == "jieba" else _build_rjieba
            tokenizer = build(words)
            _tokenizers[key] = tokenizer
            logger.debug("tokenizer built engine=%s words=%s", engine, len(words))
        return tokenizer


def _build_rjieba(words: tuple[str, ...]) -> rjieba.Jieba:
    tokenizer = rjieba.Jieba()
    for word in words:
        tokenizer.add_word(word, USER_WORD_FREQUENCY, None)
    return tokenizer


def _build_jieba(words: tuple[str, ...]) -> Any:
    # jieba is the reference engine of the tests and a benchmark, imported
    # here so that the job does not load it (about 19 MB with pkg_resources).
    import jieba

    # jieba 0.42.1 sets its own logger to DEBUG with a stderr handler when it
    # is imported, so every use would print its dictionary loading.
    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    for word in words:
        tokenizer.add_word(word, freq=USER_WORD_FREQUENCY)
    return tokenizer


class Segmenter:
    """A picklable tokenizer for scikit-learn vectorizers: text in, words out.

    Only the word list is pickled. The rjieba tokenizer is rebuilt (once per
    process and dictionary) on first use after loading.
    """

    engine = "rjieba"

    def __init__(self, words: Sequence[str]):
        self.words = tuple(sorted({_fold_word(word) for word in words if word}))
        self._spaced = _spaced_pattern(self.words)
        self._tokenizer = None

    @classmethod
    def for_brand(cls, brand: Brand) -> Segmenter:
        return cls(user_words(brand))

    @property
    def dictionary_hash(self) -> str:
        return dictionary_hash(self.words)

    @classmethod
    def engine_version(cls) -> str:
        """Return the cutting engine and its installed version, as "rjieba 0.2.2"."""
        return f"{cls.engine} {importlib.metadata.version(cls.engine)}"

    def __getstate__(self) -> dict:
        return {"words": self.words}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["words"])

    def __call__(self, text: str) -> list[str]:
        return self.segment(text)

    def fold(self, text: str) -> str:
        """Fold text as the dictionary is folded: NFKC, lower case, no emoticons."""
        text = _ASCII_UPPER_RUN.sub(_lower_match, fold_characters(text))
        text = _EMOTICON.sub(" ", text)
        if self._spaced is not None and _ASCII_GAP.search(text):
            text = self._spaced.sub(lambda m: re.sub(r"\s+", "", m.group()), text)
        return text

    def segment(self, text: str) -> list[str]:
        """Return the words of ``text``, with negators joined and spaces dropped."""
        return self.segment_folded(self.fold(text))

    def segment_folded(self, folded: str) -> list[str]:
        """Return the words of a text that :meth:`fold` has already folded."""
        # str.strip returns "" for a whitespace token, so filter drops it.
        tokens = list(filter(str.strip, self.cut(folded)))
        return join_negation(tokens)

    def tokenizer(self):
        """Return the engine's tokenizer for this dictionary, built on first use."""
        if self._tokenizer is None:
            self._tokenizer = _shared_tokenizer(self.engine, self.words)
        return self._tokenizer

    def cut(self, folded: str) -> list[str]:
        """Return the engine's tokens of a folded text, spaces included."""
        tokenizer = self.tokenizer()
        try:
            return tokenizer.cut(folded, False)
        except UnicodeEncodeError:
            # rjieba reads UTF-8, which cannot carry a lone surrogate (half of
            # an emoji cut apart). Each one is cut as U+FFFD instead, so the
            # tokens keep their lengths and positions.
            return tokenizer.cut(_SURROGATE.sub("\ufffd", folded), False)


class JiebaSegmenter(Segmenter):
    """The same segmentation, cut by jieba's own tokenizer with the HMM off.

    It is the reference that rjieba is compared with in the tests and in
    ``bench/segment_agreement.py``.
    """

    engine = "jieba"

    def cut(self, folded: str) -> list[str]:
        return self.tokenizer().lcut(folded, HMM=False)


def _lower_match(match: re.Match) -> str:
    return match.group().lower()


def join_negation(tokens: list[str]) -> list[str]:
    """Join each negator to the Chinese word after it, right to left.

    Working from the right lets a double negation chain: "不是" "不" "满意"
    becomes "不是不满意". Returns ``tokens`` itself when it contains no negator.
    """
    if NEGATORS.isdisjoint(tokens):
        return tokens
    joined = list(tokens)
    negators = [index for index, token in enumerate(tokens) if token in NEGATORS]
    for index in reversed(negators):
        if index + 1 < len(joined) and _HAN.match(joined[index + 1]):
            joined[index] += joined.pop(index + 1)
    return joined
