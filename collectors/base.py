"""The parts every collector shares: the batch it yields, its errors, and the
helpers that turn loosely typed source values into clean item fields.

Exceptions::

    CollectorError          the source cannot be read at all (run fails)
    RecordError             one record is unusable (it is set aside, run goes on)
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from items import Item


class CollectorError(Exception):
    """A source that cannot be read at all; the message names source and location."""


class RecordError(ValueError):
    """One record that cannot become an item, with the reason in the message."""


@dataclass(slots=True)
class Rejected:
    """A record set aside, with where it was and why."""

    location: str
    reason: str


@dataclass(slots=True)
class Batch:
    """Items read since the previous batch, and the cursor that follows them.

    Storing the items and the cursor together means a restart resumes right
    after the last stored batch.
    """

    items: list[Item]
    cursor: str
    rejected: list[Rejected] = field(default_factory=list)


class Collector(Protocol):
    name: str

    def collect(self, cursor: str | None) -> Iterator[Batch]:
        """Yield batches of items from where ``cursor`` left off."""
        ...

    def estimate_total(self, cursor: str | None) -> int | None:
        """Return how many records remain, when that is cheap to know."""
        ...


# C0 and C1 control characters other than tab, newline and carriage return.
# PostgreSQL cannot store NUL in text at all, and the others only break
# terminals and mail headers further on.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Lone surrogates (from a hostile "\ud800" escape) cannot be encoded as UTF-8.
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(value: str) -> str:
    """Remove NUL and other control characters, keeping tabs and newlines, and
    replace lone surrogates with U+FFFD."""
    return _SURROGATE.sub("\ufffd", _CONTROL.sub("", value))


def clean_raw(value: Any) -> Any:
    """Apply :func:`clean_text` to every string inside a decoded JSON value, and
    replace NaN and infinities, which JSON cannot carry, with None."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {clean_text(str(k)): clean_raw(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_raw(v) for v in value]
    return value


_COUNT = re.compile(r"^\s*([0-9][0-9,]*(?:\.[0-9]+)?)\s*([万wWkK千亿]?)\+?\s*$")
_COUNT_SCALE = {
    "": 1,
    "万": 10_000,
    "w": 10_000,
    "W": 10_000,
    "k": 1_000,
    "K": 1_000,
    "千": 1_000,
    "亿": 100_000_000,
}


# Larger counts are clamped: no account has ten billion followers, and a
# bigger value is a broken record that must not overflow a database column.
MAX_COUNT = 10**10


def parse_count(value: Any) -> int:
    """Read a follower or engagement count such as 12, "1,024", "1.2万" or "3k".

    Anything unreadable, negative or not finite counts as 0, and counts above
    MAX_COUNT are clamped: a broken like count must not cost the whole post.
    """
    if value is None or isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return min(max(value, 0), MAX_COUNT)
    if isinstance(value, float):
        if not math.isfinite(value):
            return 0
        return int(min(max(value, 0.0), MAX_COUNT))
    match = _COUNT.match(str(value)[:40])
    if not match:
        return 0
    number = float(match.group(1).replace(",", ""))
    return parse_count(number * _COUNT_SCALE[match.group(2)])


_DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%Y年%m月%d日 %H:%M",
    "%Y年%m月%d日",
    "%a %b %d %H:%M:%S %z %Y",
)


# Posts from before this year or more than a day in the future carry a broken
# timestamp; they are treated as having none.
EARLIEST_YEAR = 2000
MAX_FUTURE = timedelta(days=1)


def parse_time(
    value: Any, zone: ZoneInfo, now: datetime | None = None
) -> datetime | None:
    """Read a timestamp as a source writes it; None when it cannot be read.

    Naive times are taken to be in ``zone``. Numbers are Unix seconds (or
    milliseconds when too large for seconds). The relative and partial forms
    of Chinese sites (刚刚, 5分钟前, 昨天 08:30, 12-03 10:00) are read against
    ``now``, the time of the fetch. A time before EARLIEST_YEAR or more than
    MAX_FUTURE after ``now`` counts as unreadable. The result is in UTC.
    """
    now = now or datetime.now(UTC)
    parsed = _parse_time(value, zone)
    if parsed is None and isinstance(value, str):
        parsed = _parse_relative(value.strip()[:32], zone, now)
    if parsed is None:
        return None
    if parsed.year < EARLIEST_YEAR or parsed > now + MAX_FUTURE:
        return None
    return parsed


def _parse_time(value: Any, zone: ZoneInfo) -> datetime | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > 10**11 else value
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    text = str(value).strip()[:64]
    if text.isdigit():
        return _parse_time(int(text), zone)
    parsed = _parse_iso(text)
    if parsed is None:
        for pattern in _DATE_FORMATS:
            try:
                parsed = datetime.strptime(text, pattern)
                break
            except ValueError:
                continue
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        return None


_AGO = re.compile(r"^(\d{1,4})\s*(秒|分钟|小时|天)前$")
_AGO_UNITS = {"秒": "seconds", "分钟": "minutes", "小时": "hours", "天": "days"}
_DAY_WORDS = {"今天": 0, "昨天": 1, "前天": 2}
_CLOCK = r"(\d{1,2}):(\d{2})"
_NAMED_DAY = re.compile(rf"^(今天|昨天|前天)\s*(?:{_CLOCK})?$")
_MONTH_DAY = re.compile(rf"^(\d{{1,2}})(?:-|月)(\d{{1,2}})日?\s*(?:{_CLOCK})?$")
_CLOCK_ONLY = re.compile(rf"^{_CLOCK}$")


def _parse_relative(text: str, zone: ZoneInfo, now: datetime) -> datetime | None:
    """Read 刚刚, N分钟前, 昨天 HH:MM, MM-DD HH:MM and HH:MM against ``now``."""
    if text == "刚刚":
        return now.astimezone(UTC)
    if match := _AGO.match(text):
        span = timedelta(**{_AGO_UNITS[match.group(2)]: int(match.group(1))})
        return (now - span).astimezone(UTC)
    local = now.astimezone(zone)
    try:
        if match := _NAMED_DAY.match(text):
            day = local.date() - timedelta(days=_DAY_WORDS[match.group(1)])
            return _local(day, match.group(2), match.group(3), zone)
        if match := _MONTH_DAY.match(text):
            month, day_of_month = int(match.group(1)), int(match.group(2))
            day = date(local.year, month, day_of_month)
            if day > local.date():
                # A date without a year that lies ahead is from last year.
                day = date(local.year - 1, month, day_of_month)
            return _local(day, match.group(3), match.group(4), zone)
        if match := _CLOCK_ONLY.match(text):
            return _local(local.date(), match.group(1), match.group(2), zone)
    except ValueError:
        return None
    return None


def _local(day: date, hour: str | None, minute: str | None, zone: ZoneInfo) -> datetime:
    clock = time(int(hour or 0), int(minute or 0))
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def _parse_iso(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        pass
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return datetime(day.year, day.month, day.day)
