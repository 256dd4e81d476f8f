"""Word segmentation with jieba and a user dictionary built from the brand config.

The user dictionary contains the brand's name, aliases and models and the
competitors' names, aliases and models, lower-cased and without inner spaces,
so that "SU7 Ultra", "问界Ｍ7" and "理想l9" keep their brand and model words
whole. Text is folded the same way before it is cut. A negator is joined to the
word it governs ("不" + "满意" gives "不满意"). "无" is not a negator, so "无语"
stays one negative word.

Each distinct dictionary gets one private ``jieba.Tokenizer``, built on first
use and shared by every :class:`Segmenter` with the same words. The global
jieba tokenizer is left unchanged.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Iterable, Sequence

import jieba

from config import Brand
from nlp.normalize import fold_characters

logger = logging.getLogger(__name__)
# jieba 0.42.1 sets its own logger to DEBUG with a stderr handler when it is
# imported, so every start would print its dictionary loading.
jieba.setLogLevel(logging.WARNING)

# Frequency given to user words: high enough that the dictionary path through a
# brand or model name always beats splitting it.
USER_WORD_FREQUENCY = 100_000
NEGATORS = frozenset({"不", "没", "没有", "未", "别", "不是", "并不", "并非", "从不"})
# Emoticon codes such as [怒] are counted as cue features and leave the text.
_EMOTICON = re.compile(r"\[[\u4e00-\u9fffA-Za-z][\u4e00-\u9fffA-Za-z0-9]{0,7}\]")
_ASCII_UPPER = {code: code + 32 for code in range(ord("A"), ord("Z") + 1)}
_HAN = re.compile(r"[\u4e00-\u9fff]")

_tokenizers: dict[tuple[str, ...], jieba.Tokenizer] = {}
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


def _tokenizer(words: tuple[str, ...]) -> jieba.Tokenizer:
    with _tokenizers_lock:
        tokenizer = _tokenizers.get(words)
        if tokenizer is None:
            tokenizer = jieba.Tokenizer()
            tokenizer.initialize()
            for word in words:
                tokenizer.add_word(word, freq=USER_WORD_FREQUENCY)
            _tokenizers[words] = tokenizer
            logger.debug("tokenizer built words=%s", len(words))
        return tokenizer


class Segmenter:
    """A picklable tokenizer for scikit-learn vectorizers: text in, words out.

    Only the word list is pickled; the jieba tokenizer is rebuilt (once per
    process and dictionary) on first use after loading.
    """

    def __init__(self, words: Sequence[str]):
        self.words = tuple(sorted({_fold_word(word) for word in words if word}))
        self._spaced = _spaced_pattern(self.words)

    @classmethod
    def for_brand(cls, brand: Brand) -> Segmenter:
        return cls(user_words(brand))

    @property
    def dictionary_hash(self) -> str:
        return dictionary_hash(self.words)

    def __getstate__(self) -> dict:
        return {"words": self.words}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["words"])

    def __call__(self, text: str) -> list[str]:
        return self.segment(text)

    def fold(self, text: str) -> str:
        """Fold text as the dictionary is folded: NFKC, lower case, no emoticons."""
        text = fold_characters(text).translate(_ASCII_UPPER)
        text = _EMOTICON.sub(" ", text)
        if self._spaced is not None:
            text = self._spaced.sub(lambda m: re.sub(r"\s+", "", m.group()), text)
        return text

    def segment(self, text: str) -> list[str]:
        """Return the words of ``text``, with negators joined and spaces dropped."""
        tokenizer = _tokenizer(self.words)
        tokens = [
            token
            for token in tokenizer.lcut(self.fold(text), HMM=False)
            if not token.isspace()
        ]
        return join_negation(tokens)


def join_negation(tokens: list[str]) -> list[str]:
    """Join each negator to the Chinese word after it, right to left.

    Working from the right lets a double negation chain: "不是" "不" "满意"
    becomes "不是不满意".
    """
    joined: list[str] = []
    for token in reversed(tokens):
        if token in NEGATORS and joined and _HAN.match(joined[-1]):
            joined[-1] = token + joined[-1]
        else:
            joined.append(token)
    joined.reverse()
    return joined
