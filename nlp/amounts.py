"""Find money amounts in normalised post text.

Handles Arabic digits with separators and decimals (¥12,000, 2.5万元, 1.2w,
5k) and Chinese numerals (八千块, 两万五, 三十万). A number counts as money
only with a currency sign or a money unit, and not when a unit of distance,
count or time follows it ("3万公里", "5k粉丝").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4}
_DIGITS.update({"五": 5, "六": 6, "七": 7, "八": 8, "九": 9})
_SMALL_UNITS = {"十": 10, "百": 100, "千": 1000}

_AMOUNT = re.compile(
    r"(?P<currency>[¥$]|rmb|人民币)?\s?"
    r"(?P<number>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|[零〇一二两三四五六七八九十百千万]+)"
    r"\s?(?P<unit>万元|万块|万|w(?![a-z])|千元|千块|千|k(?![a-z])|元|块钱|块|rmb)?",
    re.IGNORECASE,
)
# Units after an amount that show it is not money.
_NOT_MONEY_AFTER = re.compile(
    r"\s?(?:公里|km|里|米|人|次|台|辆|个|条|年|月|天|小时|分钟|分|公斤|斤|粉|转|赞|评论"
    r"|阅读|播放|度|瓦|kw|kwh|万公里|多公里|位|名|家|件|张|楼|号|集|篇)",
    re.IGNORECASE,
)
_MULTIPLIERS = {"万": 10_000, "w": 10_000, "千": 1_000, "k": 1_000}
_SPOKEN_FIRST = frozenset("一二两三四五六七八九十")
_ROUGH_COUNTS = frozenset("几上好数")


@dataclass(frozen=True, slots=True)
class Amount:
    """A money amount in yuan, with its span and matched text."""

    yuan: float
    start: int
    end: int
    text: str


def find_amounts(text: str) -> list[Amount]:
    """Return the money amounts in ``text``, in order of appearance."""
    found = []
    for match in _AMOUNT.finditer(text):
        currency, number, unit = match.group("currency", "number", "unit")
        if not currency and not unit and not _is_spoken_amount(text, match):
            continue
        if _NOT_MONEY_AFTER.match(text, match.end()):
            continue
        value = _parse_number(number)
        if value is None or value <= 0:
            continue
        unit = (unit or "").lower()
        value *= _MULTIPLIERS.get(unit[:1], 1)
        found.append(Amount(value, match.start(), match.end(), match.group().strip()))
    return found


def _is_spoken_amount(text: str, match: re.Match) -> bool:
    """Return True for a Chinese numeral that carries its own magnitude.

    "损失三万" and "亏了几万" are money without a unit. The numeral starts with
    a digit or 十, or is a bare 万 or 千 after a rough count (几, 上, 好, 数),
    so the idioms "千万别买" and "万一" are not money.
    """
    number = match.group("number")
    if "万" not in number and "千" not in number:
        return False
    if number[0] in _SPOKEN_FIRST:
        return True
    before = text[match.start() - 1 : match.start()]
    return number in ("万", "千") and before in _ROUGH_COUNTS


def _parse_number(number: str) -> float | None:
    if number[0].isdigit():
        return float(number.replace(",", ""))
    return parse_chinese_number(number)


def parse_chinese_number(text: str) -> float | None:
    """Parse a Chinese numeral such as 八千, 两万五, 三十万 or 一万二千.

    A single digit after the last unit is read as the next smaller unit, as
    speakers do: 两万五 is 25,000 and 八千五 is 8,500. Returns None for text
    that is not a numeral.
    """
    if "万" in text:
        high, _, low = text.partition("万")
        high_value = parse_chinese_number(high) if high else 1
        low_value = _below_ten_thousand(low, implied_unit=1000) if low else 0
        if high_value is None or low_value is None:
            return None
        return high_value * 10_000 + low_value
    return _below_ten_thousand(text, implied_unit=1)


def _below_ten_thousand(text: str, implied_unit: int) -> float | None:
    total, digit, last_unit = 0, None, None
    for char in text:
        if char in _DIGITS:
            if digit is not None:
                return None
            digit = _DIGITS[char]
        elif char in _SMALL_UNITS:
            unit = _SMALL_UNITS[char]
            total += (1 if digit is None else digit) * unit
            digit, last_unit = None, unit
        else:
            return None
    if digit is not None:
        if last_unit is not None and last_unit >= 100:
            total += digit * (last_unit // 10)
        elif last_unit is None:
            total += digit * implied_unit
        else:
            total += digit
    return total
