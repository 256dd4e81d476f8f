"""Decide whether a post is about the monitored brand.

Precision comes before recall. The brand's full name, an unambiguous alias, a
model name as a whole token and an official account count directly. A brand
word that is also an ordinary word ("启程" is "to set off") counts only next to
a context word or together with a model name, and never inside one of the
brand's ordinary-sense phrases. Competitors and their models are recorded but
never make a post relevant, so a post only about competitors is not relevant.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

from config import Brand
from items import NormalizedText, Relevance
from nlp.normalize import (
    MAX_INPUT_CHARS,
    fold_characters,
    protected_names,
    to_simplified,
)

# Characters on either side of an ambiguous alias searched for a context word.
CONTEXT_WINDOW = 16

# Transport words that contain the context word "车" without meaning a car of
# the brand ("明天启程,坐火车回家").
_TRANSPORT_WORDS = (
    "火车",
    "动车",
    "高铁",
    "公交车",
    "大巴车",
    "出租车",
    "自行车",
    "班车",
    "列车",
    "坐车",
    "打车",
    "车站",
    "车票",
)

# Words of any consumer brand that make an ambiguous brand word mean the
# company: its products, staff, service and money.
_GENERIC_CONTEXT = (
    "品牌",
    "牌子",
    "厂家",
    "官方",
    "官网",
    "车企",
    "旗舰店",
    "投诉",
    "维权",
    "质量",
    "服务",
    "产品",
    "用户",
    "退款",
    "客服",
    "售后",
    "门店",
    "店里",
    "APP",
    "系统",
    "升级",
    "降价",
    "涨价",
    "价格",
    "优惠",
    "落地价",
    "值得买",
    "口碑",
    "配置",
    "家的",
    "这家",
)

# Words next to a model name that show a code for something other than a car:
# a production batch, an inspection, another kind of product.
_OTHER_PRODUCT_CONTEXT = (
    "批次",
    "抽检",
    "质检",
    "检验",
    "返工",
    "产线",
    "生产线",
    "号线",
    "工位",
    "打印机",
    "扫地机",
    "吸尘器",
    "墨盒",
    "硒鼓",
    "机器人",
    "路由器",
    "耳机",
    "显卡",
    "型号",
    "打印",
    "扫地",
    "净化器",
    "洗衣机",
    "冰箱",
    "手机",
    "相机",
    "镜头",
    "芯片",
    "电路板",
    "料号",
    "品管",
    "品质部",
    "来料",
    "出货",
    "抽样",
    "不良率",
    "良率",
    "车间",
    "流水线",
    "班组",
)
_OTHER_PRODUCT_WINDOW = 8
# Characters after a two-character competitor name searched for a car word.
_COMPETITOR_CONTEXT_WINDOW = 8


class RelevanceMatcher:
    """Brand relevance of normalised posts, with patterns compiled once per brand."""

    def __init__(self, brand: Brand):
        self.brand = brand
        # The names that the normaliser of this brand's posts keeps as written.
        self.protected = protected_names(brand)
        self._ordinary = _alternation(_fold(s) for s in brand.ordinary_senses)
        self._transport = _alternation(_TRANSPORT_WORDS)
        self._other_product = _alternation(_OTHER_PRODUCT_CONTEXT)

        strong, ambiguous = _split_aliases(brand)
        self._strong = _alternation(strong, whole_words=True)
        self._ambiguous = _alternation(ambiguous, whole_words=True)
        self._context = _alternation(
            [_fold(word) for word in brand.context_words] + list(_GENERIC_CONTEXT)
        )
        self._models = _token_pattern(brand.models)
        self._model_names = {_fold(model).lower(): model for model in brand.models}
        self._official = {_fold(a).lstrip("@") for a in brand.official_accounts}
        handles = _alternation(self._official)
        # A profile link ("weibo.com/n/启程汽车") names the account without the "@".
        self._official_raw = (
            re.compile(rf"(?:@|/n/)({handles.pattern})(?![\w-])", re.IGNORECASE)
            if handles
            else None
        )
        self._competitors = _compile_competitors(brand, self._other_product)

    def match(self, normalized: NormalizedText, raw_text: str) -> Relevance:
        """Return the brand relevance of one post.

        ``raw_text`` is the original post. It is searched only for the official
        accounts, whose handle an HTML page may carry in a profile link
        (``/n/启程汽车``) that normalisation drops.
        """
        text = normalized.text
        if normalized.quoted:
            text = f"{text} // {normalized.quoted}"
        # Names that the normaliser kept in traditional spelling are converted
        # here, like the brand words, so that 啟程 in a post matches 启程 in
        # config and the other way round.
        masked = _mask(self._ordinary, to_simplified(text))

        evidence: list[str] = []
        models = self._find_models(masked)
        evidence.extend(models)
        evidence.extend(self._find_official(normalized, raw_text))
        if self._strong is not None:
            evidence.extend(m.group() for m in self._strong.finditer(masked))
        if not evidence:
            evidence.extend(self._find_ambiguous(masked))

        competitors, competitor_models = self._competitors.find(masked)
        relevant = bool(evidence)
        return Relevance(
            relevant=relevant,
            brand=self.brand.name if relevant else None,
            models=tuple(dict.fromkeys([*models, *competitor_models])),
            competitors=competitors,
            evidence=tuple(dict.fromkeys(evidence)),
            competitor_models=competitor_models,
        )

    def _find_models(self, masked: str) -> list[str]:
        if self._models is None:
            return []
        found = []
        for match in self._models.finditer(masked):
            left = masked[max(0, match.start() - _OTHER_PRODUCT_WINDOW) : match.start()]
            right = masked[match.end() : match.end() + _OTHER_PRODUCT_WINDOW]
            if self._other_product.search(left + " " + right):
                continue
            found.append(self._model_names.get(match.group().lower(), match.group()))
        return found

    def _find_official(self, normalized: NormalizedText, raw_text: str) -> list[str]:
        found = [f"@{m}" for m in normalized.mentions if _fold(m) in self._official]
        has_handle = "@" in raw_text or "/n/" in raw_text or "＠" in raw_text
        if not found and self._official_raw is not None and has_handle:
            raw = _fold(raw_text[:MAX_INPUT_CHARS])
            found = [f"@{m.group(1)}" for m in self._official_raw.finditer(raw)]
        return found

    def _find_ambiguous(self, masked: str) -> list[str]:
        if self._ambiguous is None or self._context is None:
            return []
        context_text = _mask(self._transport, masked)
        found = []
        for match in self._ambiguous.finditer(masked):
            start = max(0, match.start() - CONTEXT_WINDOW)
            window = context_text[start : match.end() + CONTEXT_WINDOW]
            window = window.replace(match.group(), " " * len(match.group()))
            context = self._context.search(window)
            if context:
                found.append(f"{match.group()}…{context.group()}")
        return found


def _split_aliases(brand: Brand) -> tuple[list[str], list[str]]:
    """Split the brand words into those that count alone and the ambiguous ones.

    An alias is ambiguous when it occurs inside an ordinary-sense phrase or is
    only a part of the brand's full name ("启程" inside "启程汽车").
    """
    name = _fold(brand.name)
    ordinary = [_fold(s) for s in brand.ordinary_senses]
    strong, ambiguous = [name], []
    for alias in brand.aliases:
        alias = _fold(alias)
        if alias == name or alias in strong or alias in ambiguous:
            continue
        if any(alias in phrase for phrase in ordinary) or alias in name:
            ambiguous.append(alias)
        else:
            strong.append(alias)
    return strong, ambiguous


def _fold(text: str) -> str:
    """Fold a brand word the way posts are normalised (NFKC, simplified)."""
    return fold_characters(text).strip()


def _alternation(words: Iterable[str], whole_words: bool = False) -> re.Pattern | None:
    words = sorted({w for w in words if w}, key=len, reverse=True)
    if not words:
        return None
    parts = []
    for word in words:
        escaped = re.escape(word)
        if whole_words and word[0].isascii() and word[0].isalnum():
            escaped = rf"(?<![A-Za-z0-9]){escaped}"
        if whole_words and word[-1].isascii() and word[-1].isalnum():
            escaped = rf"{escaped}(?![A-Za-z0-9])"
        parts.append(escaped)
    return re.compile("|".join(parts), re.IGNORECASE)


def _token_pattern(models: Iterable[str]) -> re.Pattern | None:
    return _alternation((_fold(model) for model in models), whole_words=True)


def _compile_competitors(
    brand: Brand, other_product: re.Pattern | None
) -> _Competitors:
    """Collect the competitors' names, aliases and models into one pattern.

    Two-character Chinese names are often ordinary words (理想 "ideal", 小米
    "millet"), so they need a car word of two or more characters right after
    them: the single "车" of "开车" is no evidence. Single Chinese characters
    among the models (汉) are skipped for the same reason. A word that is also
    one of the brand's own models stays the brand's.
    """
    own_models = {_fold(model).lower() for model in brand.models}
    words: dict[str, _CompetitorWord] = {}
    for competitor in brand.competitors:
        spellings = [(w, False) for w in (competitor.name, *competitor.aliases)]
        spellings += [(model, True) for model in competitor.models]
        for spelling, is_model in spellings:
            word = _fold(spelling).lower()
            if not word or (len(word) == 1 and not word.isascii()):
                continue
            if word in own_models:
                continue
            needs_context = len(word) == 2 and not word.isascii()
            model = spelling.strip() if is_model else None
            words.setdefault(
                word, _CompetitorWord(competitor.name, model, needs_context)
            )
    if not words:
        return _Competitors(None, words, None, None)
    ordered = sorted(words, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(word) for word in ordered))
    car_words = _alternation(_fold(w) for w in brand.context_words if len(w) > 1)
    return _Competitors(pattern, words, car_words, other_product)


class _CompetitorWord(NamedTuple):
    competitor: str
    # The model's spelling in config, or None for a name or an alias.
    model: str | None
    needs_context: bool


class _Competitors(NamedTuple):
    pattern: re.Pattern | None
    words: dict[str, _CompetitorWord]
    car_words: re.Pattern | None
    other_product: re.Pattern | None

    def find(self, text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Return the competitor names and models in ``text``, in order of appearance.

        A model next to a word of another product ("华为P7手机") is skipped, as
        the brand's own models are, and names no competitor either.
        """
        if self.pattern is None:
            return (), ()
        lowered = text.lower()
        names, models = [], []
        for match in self.pattern.finditer(lowered):
            start, end = match.span()
            if _inside_ascii_word(lowered, start, end):
                continue
            word = self.words[match.group()]
            after = lowered[end : end + _COMPETITOR_CONTEXT_WINDOW]
            if word.needs_context and not (
                self.car_words and self.car_words.search(after)
            ):
                continue
            if word.model is not None:
                if self._other_product_near(lowered, start, end):
                    continue
                models.append(word.model)
            names.append(word.competitor)
        return tuple(dict.fromkeys(names)), tuple(dict.fromkeys(models))

    def _other_product_near(self, text: str, start: int, end: int) -> bool:
        if self.other_product is None:
            return False
        left = text[max(0, start - _OTHER_PRODUCT_WINDOW) : start]
        right = text[end : end + _OTHER_PRODUCT_WINDOW]
        return self.other_product.search(f"{left} {right}") is not None


def _inside_ascii_word(text: str, start: int, end: int) -> bool:
    """Return True when a match starts or ends in the middle of an ASCII word."""

    def alnum(index: int) -> bool:
        return (
            0 <= index < len(text) and text[index].isascii() and text[index].isalnum()
        )

    return (alnum(start) and alnum(start - 1)) or (alnum(end - 1) and alnum(end))


def _mask(pattern: re.Pattern | None, text: str) -> str:
    """Blank out the matches of ``pattern``, keeping every position in place."""
    if pattern is None:
        return text
    return pattern.sub(lambda m: " " * len(m.group()), text)
