"""Read the queue's filters from the query string.

Every value is checked before it reaches the database, and a bad one ends
the request with 400 and a message in Chinese that names the parameter. The
values are then bound as parameters, never written into SQL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import abort

from items import KINDS
from storage.accounts import NAME_PATTERN
from storage.queue import QUEUE_LEVELS, QueueFilter
from storage.search import (
    MAX_QUERY_LENGTH,
    SearchQuery,
    SearchQueryError,
    parse_query,
)
from storage.web_tables import REVIEW_STATUSES

# The kinds offered in the queue's filter: the graded ones. The others are
# still accepted in the query string.
QUEUE_KINDS = ("complaint", "grievance")
# The largest id of a BIGINT column.
MAX_ID = 2**63 - 1
# Brand and model names, as the config and the classifier write them.
MAX_LABEL_LENGTH = 64
# Dates outside these years are typing mistakes, and the limits keep every
# day's start convertible to UTC in any time zone.
FIRST_YEAR, LAST_YEAR = 1970, 2999
FILTER_NAMES = (
    "level",
    "kind",
    "source",
    "brand",
    "model",
    "problem",
    "from",
    "to",
    "status",
    "assignee",
    "q",
)
_SOURCE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DIGITS = re.compile(r"[0-9]{1,19}")
_SEARCH_ERRORS = {
    "too_long": f"搜索词太长：最多 {MAX_QUERY_LENGTH} 个字符。",
    "no_terms": "搜索词里没有可搜索的文字或数字。",
    "one_character": "中文搜索词至少要两个字。",
}


def read_queue_filter(
    args: Mapping[str, str], zone: ZoneInfo
) -> tuple[QueueFilter, dict[str, str]]:
    """Return the filter and the non-empty filter parameters, for the page's links.

    Empty parameters count as absent. Dates are whole days in ``zone``, and
    ``to`` includes its day.
    """
    values = {name: (args.get(name) or "").strip() for name in FILTER_NAMES}
    present = {name: value for name, value in values.items() if value}
    start, end = _day(present, "from", zone), _day(present, "to", zone)
    if start is not None and end is not None and start > end:
        abort(400, "日期范围无效：开始日期晚于结束日期。")
    queue_filter = QueueFilter(
        level=_choice(present, "level", QUEUE_LEVELS, "未知的级别"),
        kind=_choice(present, "kind", KINDS, "未知的类型"),
        source=_matching(present, "source", _SOURCE_NAME, "无效的来源名"),
        brand=_label(present, "brand", "品牌"),
        model=_label(present, "model", "车型"),
        problem_id=_problem(present),
        posted_from=start,
        posted_until=None if end is None else end + timedelta(days=1),
        status=_choice(present, "status", REVIEW_STATUSES, "未知的处理状态"),
        assignee=_matching(present, "assignee", NAME_PATTERN, "无效的处理人用户名"),
        search=_search(present),
    )
    return queue_filter, present


def _choice(
    present: dict[str, str], name: str, allowed: tuple[str, ...], message: str
) -> str | None:
    value = present.get(name)
    if value is not None and value not in allowed:
        abort(400, f"{message}：{value}")
    return value


def _matching(
    present: dict[str, str], name: str, pattern: re.Pattern[str], message: str
) -> str | None:
    value = present.get(name)
    if value is not None and not pattern.fullmatch(value):
        abort(400, f"{message}：{value}")
    return value


def _label(present: dict[str, str], name: str, noun: str) -> str | None:
    value = present.get(name)
    if value is None:
        return None
    if len(value) > MAX_LABEL_LENGTH or not value.isprintable():
        abort(400, f"无效的{noun}名：最多 {MAX_LABEL_LENGTH} 个可见字符。")
    return value


def _problem(present: dict[str, str]) -> int | None:
    value = present.get("problem")
    if value is None:
        return None
    if not _DIGITS.fullmatch(value) or not 0 < int(value) <= MAX_ID:
        abort(400, f"无效的问题编号：{value}")
    return int(value)


def _day(present: dict[str, str], name: str, zone: ZoneInfo) -> datetime | None:
    value = present.get(name)
    if value is None:
        return None
    try:
        if not _DATE.fullmatch(value):
            raise ValueError(value)
        day = date.fromisoformat(value)
    except ValueError:
        abort(400, f"无效的日期：{value}（格式为 2026-03-01）")
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        abort(400, f"日期超出范围：{value}（{FIRST_YEAR} 至 {LAST_YEAR} 年）")
    return datetime.combine(day, time(), tzinfo=zone)


def _search(present: dict[str, str]) -> SearchQuery | None:
    value = present.get("q")
    if value is None:
        return None
    try:
        return parse_query(value)
    except SearchQueryError as exc:
        abort(400, _SEARCH_ERRORS[exc.reason])
