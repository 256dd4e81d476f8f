"""Turn raw post text into the plain text the classifier reads.

The steps run in a fixed order: cap the length, strip HTML, apply Unicode NFKC,
drop format and control characters, convert traditional characters to
simplified ones with OpenCC, pull out links, then split the Weibo repost chain
and collect hashtags, mentions and emoticon codes. Every pattern is compiled
once at import. The OpenCC converter and the set of characters it changes are
built on the first conversion.

:func:`normalize` converts every traditional character. A :class:`Normalizer`
built for a brand keeps the brand's words, its competitors' words and its
configured places as written, because OpenCC also rewrites some simplified
names (the county 乾安 becomes 干安).
"""

from __future__ import annotations

import functools
import html
import re
import sys
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

import opencc

from items import NormalizedText

if TYPE_CHECKING:
    from config import Brand

# Longer input is cut before any work. The bound is an estimate, well above
# ordinary post lengths, and each later step is linear in it, so a 2 MB payload
# costs no more than a 50,000-character one. A cut text is marked truncated.
MAX_INPUT_CHARS = 50_000

_SCRIPT_OR_STYLE = re.compile(
    r"<(script|style)\b[^>]*>.*?(?:</\1\s*>|\Z)", re.IGNORECASE | re.DOTALL
)
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
# Bounded repeats keep a page of unclosed tags or quotes linear to scan. Feeds
# write the alt value of an emoticon image with or without quotes
# (<img alt=[围观] src=...>).
_IMG_WITH_ALT = re.compile(
    r"<img\b[^<>]{0,500}?\balt\s*=\s*"
    r"(?:\"([^\"<>]{0,40})\"|'([^'<>]{0,40})'|([^\s\"'<>/]{1,40}))"
    r"[^<>]{0,500}>",
    re.IGNORECASE,
)
_BLOCK_TAG = re.compile(
    r"</?(?:br|p|div|li|tr|td|h[1-6]|blockquote)\b[^>]*>", re.IGNORECASE
)
_ANY_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>")

_LINK = re.compile(
    r"(?:https?://|www\.)[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+"
    r"|\bt\.cn/[A-Za-z0-9]+",
    re.IGNORECASE,
)
_LINK_PLACEHOLDER = re.compile(r"O?网页链接|查看图片|全文链接")
# A repost chain starts at "//@name:" or, in RSSHub feeds, at " - 转发 @name:"
# (or "🔁 @name:" when the feed is set to mark reposts with an emoji).
_REPOST_SPLIT = re.compile(r"//\s*@|(?:^|\s)(?:-\s*转发|🔁)\s*@")
# The same feed marker without an author after it ends a feed title.
_FEED_REPOST_MARK = re.compile(r"(?:^|\s)(?:-\s*转发|🔁)(?:\s+|$)")
# Words that a repost adds when the reposter writes nothing of their own.
_REPOST_FILLER = re.compile(r"转发微博|转发|repost", re.IGNORECASE)
_MENTION = re.compile(r"(?<![\w.])@([\w\-]{1,30})")
_HASHTAG = re.compile(r"#([^#\s][^#\n]{0,39})#")
_EMOTICON = re.compile(r"\[([\u4e00-\u9fffA-Za-z][\u4e00-\u9fffA-Za-z0-9]{0,7})\]")
# "展开" and "全文" alone end many ordinary sentences, so they count as a
# truncation mark only after an ellipsis or a space.
_TRUNCATION_MARK = re.compile(
    r"(?:(?:\.{2,}|…)\s*(?:展开全文|全文|展开)|\s(?:全文|展开)|展开全文)\s*[>》∨]?\s*$"
)
_SPACES = re.compile(r"\s+")


def _character_class(characters: Iterable[str]) -> str:
    """Return a regular-expression class of ``characters``, with runs as ranges."""
    codes = sorted(ord(char) for char in characters)
    parts = []
    start = previous = None
    for code in [*codes, None]:
        if previous is not None and code == previous + 1:
            previous = code
            continue
        if start is not None:
            parts.append(f"\\U{start:08x}")
            if previous != start:
                parts.append(f"-\\U{previous:08x}")
        start = previous = code
    return "[" + "".join(parts) + "]"


def _format_and_control_table() -> dict[int, str | None]:
    """Map every format (Cf) and control (Cc) character to removal.

    Tabs, line and paragraph breaks become spaces so that words stay apart.
    """
    table: dict[int, str | None] = {}
    for code in range(sys.maxunicode + 1):
        if unicodedata.category(chr(code)) in ("Cf", "Cc"):
            table[code] = None
    for code in (0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x85, 0x2028, 0x2029):
        table[code] = " "
    return table


_INVISIBLE = _format_and_control_table()
# Most posts contain none of these characters, so a search is cheaper than
# translating every post. The class is written as ranges because each code
# point above U+FFFF in a class is one more test per character of the text.
_INVISIBLE_CHARS = re.compile(_character_class(map(chr, _INVISIBLE)))

# Runs of digits are cut to this length: no amount, date or phone number is
# longer, and the amount patterns would otherwise try every start position of
# a long run, which is quadratic in its length.
MAX_DIGIT_RUN = 20
_LONG_DIGITS = re.compile(rf"\d{{{MAX_DIGIT_RUN + 1},}}")

# The code points searched for characters that OpenCC's t2s conversion changes:
# CJK Unified Ideographs with extension A, the compatibility ideographs, and
# the supplementary planes of extensions B and later.
_CJK_RANGES = ((0x3400, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3FFFF))
# Characters that t2s changes only inside a phrase (瞭 in 瞭解, 覆 in 回覆,
# 沈 in 沈默), so that a character-by-character probe misses them. The list
# was read from the phrase dictionary of OpenCC 1.4.2, and a test compares it
# with the installed dictionary.
PHRASE_ONLY_TRIGGERS = "瞭藉覆沈甦衹哩"
# 坏 and 么 also change inside phrases of that dictionary (毛坏 to 毛坯), but
# both are common simplified characters and the phrases include the ordinary
# simplified 打坏 ("broke"), so neither starts a conversion by itself.
PHRASE_ONLY_IGNORED = "坏么"


_SUPPLEMENTARY = re.compile("[\U00010000-\U0010ffff]")


class _T2S:
    """OpenCC's t2s converter with the set of characters that it changes."""

    def __init__(self) -> None:
        self.converter = opencc.OpenCC("t2s")
        changed = self._changed_characters() | set(PHRASE_ONLY_TRIGGERS)
        # A class of the BMP characters is a bitmap, one lookup per character.
        # The hundreds of supplementary ones would be tested one by one, so
        # they are looked up in a set, and only in texts that contain any.
        bmp = [char for char in changed if char <= "\uffff"]
        self._bmp = re.compile(_character_class(bmp))
        self._supplementary = frozenset(changed.difference(bmp))

    def changes(self, text: str) -> bool:
        """Return True when ``text`` contains a character that t2s may change."""
        if self._bmp.search(text) is not None:
            return True
        return _SUPPLEMENTARY.search(text) is not None and not (
            self._supplementary.isdisjoint(text)
        )

    def _changed_characters(self) -> set[str]:
        # A line break separates the characters, because no dictionary entry
        # contains one, so each character is converted on its own.
        characters = [
            chr(code) for first, last in _CJK_RANGES for code in range(first, last + 1)
        ]
        converted = self.converter.convert("\n".join(characters)).split("\n")
        if len(converted) != len(characters):
            raise RuntimeError(
                "OpenCC t2s changed the number of lines while probing characters; "
                "the installed OpenCC is not the version this module was written for"
            )
        return {
            char
            for char, result in zip(characters, converted, strict=True)
            if result != char
        }

    def convert(self, text: str) -> str:
        if not text or not self.changes(text):
            return text
        return self.converter.convert(text)


_t2s_lock = threading.Lock()
_t2s_instance: _T2S | None = None


def _t2s() -> _T2S:
    # Built on first use: probing the code points takes about 50 ms, which
    # importers that never convert should not pay.
    global _t2s_instance
    if _t2s_instance is None:
        with _t2s_lock:
            if _t2s_instance is None:
                _t2s_instance = _T2S()
    return _t2s_instance


class Normalizer:
    """Normalise posts, keeping a fixed list of names out of the OpenCC conversion.

    A protected name keeps the spelling that it has in the post when it is
    written there as in ``protected`` (after NFKC). Only names that contain a
    character the conversion would change need protection, so the others are
    dropped from the pattern.

    NOTE: names missing from ``protected``, such as people's names (李兴乾) and
    companies, are converted like any other text, so their 乾 becomes 干.
    """

    def __init__(self, protected: Iterable[str] = ()):
        names = {_clean(name).strip() for name in protected}
        names = sorted((name for name in names if name), key=len, reverse=True)
        self.protected = tuple(names)
        self._pattern: re.Pattern | None = None
        self._pattern_built = not names

    @classmethod
    def for_brand(cls, brand: Brand) -> Normalizer:
        return cls(protected_names(brand))

    def normalize(self, text: str) -> NormalizedText:
        """Normalise one post for the later stages; the original stays untouched.

        Links are moved out of the text, hashtags stay in it, and a Weibo repost
        chain (``own words//@someone:quoted``) is split so that ``text`` contains
        the author's own words and ``quoted`` the chain. A repost that adds only
        转发微博 or emoticons has empty own words. ``truncated`` is set when the
        text ends with a platform truncation mark or was cut at MAX_INPUT_CHARS.
        """
        if not text:
            return NormalizedText(text="")
        cut = len(text) > MAX_INPUT_CHARS
        if cut:
            text = text[:MAX_INPUT_CHARS]

        if "<" in text or "&" in text:
            text = _strip_html(text)
        text = self.fold(text)

        links = tuple(match.group(0) for match in _LINK.finditer(text))
        if links:
            text = _LINK.sub(" ", text)
        text = _LINK_PLACEHOLDER.sub(" ", text)
        text = _LONG_DIGITS.sub(lambda match: match.group(0)[:MAX_DIGIT_RUN], text)
        text = _SPACES.sub(" ", text).strip()

        text, truncated = _remove_truncation_mark(text)
        own, quoted = _split_repost(text)
        return NormalizedText(
            text=own,
            quoted=quoted,
            emoticons=dict(Counter(_EMOTICON.findall(text))),
            hashtags=_unique(m.strip() for m in _HASHTAG.findall(text)),
            links=links,
            mentions=_unique(_MENTION.findall(text)),
            truncated=truncated or cut,
        )

    def fold(self, text: str) -> str:
        """Apply NFKC, drop format and control characters, convert to simplified.

        Positions are not preserved.
        """
        return self.to_simplified(_clean(text))

    def to_simplified(self, text: str) -> str:
        """Convert traditional characters with OpenCC t2s, except in protected names.

        A text that contains none of the characters t2s changes is returned as
        it is, without calling OpenCC. 坏 and 么 do not count (see
        PHRASE_ONLY_IGNORED).
        """
        t2s = _t2s()
        if not t2s.changes(text):
            return text
        pattern = self._protection(t2s)
        if pattern is None:
            return t2s.converter.convert(text)

        parts = []
        start = 0
        for match in pattern.finditer(text):
            parts.append(t2s.convert(text[start : match.start()]))
            parts.append(match.group())
            start = match.end()
        parts.append(t2s.convert(text[start:]))
        return "".join(parts)

    def _protection(self, t2s: _T2S) -> re.Pattern | None:
        if not self._pattern_built:
            names = [name for name in self.protected if t2s.changes(name)]
            if names:
                self._pattern = re.compile("|".join(map(re.escape, names)))
            self._pattern_built = True
        return self._pattern


def protected_names(brand: Brand) -> tuple[str, ...]:
    """Return the names that a brand's normaliser keeps out of the conversion.

    They are the brand's name, aliases and models, the same for each
    competitor, and the configured places and dealers.
    """
    names = [brand.name, *brand.aliases, *brand.models, *brand.places]
    for competitor in brand.competitors:
        names += [competitor.name, *competitor.aliases, *competitor.models]
    return tuple(dict.fromkeys(names))


_PLAIN = Normalizer()


def normalize(text: str, protected: Iterable[str] = ()) -> NormalizedText:
    """Normalise one post, keeping the names in ``protected`` as written.

    See :meth:`Normalizer.normalize`. A normaliser is cached for each distinct
    tuple of protected names, so repeated calls with the same names are cheap.
    """
    protected = tuple(protected)
    normalizer = _normalizer_for(protected) if protected else _PLAIN
    return normalizer.normalize(text)


def fold_characters(text: str) -> str:
    """Apply NFKC, drop format and control characters and convert to simplified.

    Nothing is protected. Brand words and cue phrases go through the same
    folding as post text, so that both sides compare equal.
    """
    return _PLAIN.fold(text)


def to_simplified(text: str) -> str:
    """Convert traditional characters to simplified ones with OpenCC t2s."""
    return _PLAIN.to_simplified(text)


@functools.lru_cache(maxsize=16)
def _normalizer_for(protected: tuple[str, ...]) -> Normalizer:
    return Normalizer(protected)


def _clean(text: str) -> str:
    """Apply NFKC and drop format and control characters."""
    text = unicodedata.normalize("NFKC", text)
    if _INVISIBLE_CHARS.search(text):
        text = text.translate(_INVISIBLE)
    return text


def _strip_html(text: str) -> str:
    text = html.unescape(text)
    if "<" not in text:
        return text
    text = _SCRIPT_OR_STYLE.sub(" ", text)
    text = _HTML_COMMENT.sub(" ", text)
    text = _IMG_WITH_ALT.sub(_alt_text, text)
    text = _BLOCK_TAG.sub(" ", text)
    return _ANY_TAG.sub("", text)


def _alt_text(match: re.Match) -> str:
    return match.group(1) or match.group(2) or match.group(3) or ""


def _remove_truncation_mark(text: str) -> tuple[str, bool]:
    # Only the tail can hold the mark; searching the whole text would try the
    # pattern at every position of a long run of dots.
    offset = max(0, len(text) - 16)
    match = _TRUNCATION_MARK.search(text, offset)
    if match is None:
        return text, False
    return text[: match.start()].rstrip(), True


def _split_repost(text: str) -> tuple[str, str]:
    """Split a post into the author's own words and the repost chain after them.

    A feed title marked as a repost ("[围观] - 转发" before the post) loses the
    marker, and the words before it too when they are only emoticons. Own words
    that are only 转发微博 or emoticons are empty: such a repost amplifies
    another post and adds nothing new.
    """
    own, quoted = text, ""
    match = _REPOST_SPLIT.search(text)
    if match is not None:
        own = text[: match.start()].strip()
        quoted = text[match.end() - 1 :].strip()

    title = _FEED_REPOST_MARK.search(own)
    if title is not None:
        head, tail = own[: title.start()].strip(), own[title.end() :].strip()
        own = tail if _is_filler(head) else f"{head} {tail}".strip()

    is_repost = bool(quoted) or title is not None or _REPOST_FILLER.search(own)
    if is_repost and _is_filler(own):
        own = ""
    return own, quoted


def _is_filler(text: str) -> bool:
    """Return True when ``text`` has no letter or digit beyond emoticons and 转发."""
    rest = _REPOST_FILLER.sub("", _EMOTICON.sub("", text))
    return not any(char.isalnum() for char in rest)


def _unique(values) -> tuple[str, ...]:
    return tuple(dict.fromkeys(value for value in values if value))
