"""Turn a decoded record into an item through a source's field mapping.

The replay and JSON API collectors share this mapping: ``Source.fields`` maps
the product's field names to the record's own keys, and a dotted key such as
``author.followers`` reaches into nested objects. A record that cannot become
an item raises :class:`~collectors.base.RecordError` with the reason.
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from collectors.base import (
    RecordError,
    clean_raw,
    clean_text,
    parse_count,
    parse_time,
)
from config import Source
from items import VERIFIED_TYPES, Author, Engagement, Item

logger = logging.getLogger(__name__)

# Records larger than this are set aside: a single record of tens of megabytes
# is a broken export, not a post, and would stall every later stage.
MAX_RECORD_BYTES = 8 * 1024 * 1024

# Ids longer than this are replaced by their hash, so that two long ids that
# share a prefix never collide and the column stays indexable.
MAX_ID_CHARS = 200

_SURROGATE = re.compile("[\ud800-\udfff]")

_VERIFIED_ALIASES = {
    "": "none",
    "无": "none",
    "黄v": "personal",
    "橙v": "personal",
    "金v": "personal",
    "蓝v": "enterprise",
    "true": "personal",
    "false": "none",
}


def record_to_item(
    record: dict[str, Any],
    source: Source,
    zone: ZoneInfo,
    location: str,
    collected_at: datetime,
) -> Item:
    """Map one record to an item; raise RecordError when it cannot be used.

    Naive times are read in ``zone``. Without a mapped id, the id is a hash of
    the text, so the same text read twice is the same post.
    """
    fields = source.fields

    def get(name: str) -> Any:
        return lookup(record, fields.get(name, name))

    text = get("text")
    if not isinstance(text, str):
        raise RecordError("missing text" if text is None else "text is not a string")
    text = clean_text(text).strip()
    if not text:
        raise RecordError("empty text")

    external_id = make_external_id(get("id"), "id" in fields, text)

    raw_time = get("created_at")
    created_at = parse_time(raw_time, zone, now=collected_at)
    if created_at is None and raw_time not in (None, ""):
        logger.warning(
            "unreadable time source=%s location=%s value=%r",
            source.name,
            location,
            str(raw_time)[:40],
        )
    # Without a readable time the post is dated when it was fetched, and
    # marked, so that bursts and forecasts leave it out.
    estimated = created_at is None
    if estimated:
        created_at = collected_at

    title = get("title")
    return Item(
        source=source.name,
        platform=_text_or(get("platform"), source.platform)[:40],
        external_id=external_id,
        text=text,
        collected_at=collected_at,
        created_at=created_at,
        title=clean_text(str(title)).strip() if title else None,
        url=_text_or(get("url"), None),
        lang=_text_or(get("lang"), source.lang),
        author=Author(
            name=_text_or(get("author_name"), None),
            id=_text_or(get("author_id"), None),
            followers=parse_count(get("followers"))
            if get("followers") is not None
            else None,
            verified=_verified(get("verified")),
            role=_text_or(get("role"), None),
        ),
        engagement=Engagement(
            likes=parse_count(get("likes")),
            reposts=parse_count(get("reposts")),
            comments=parse_count(get("comments")),
        ),
        raw=clean_raw(record),
        location=location,
        time_estimated=estimated,
    )


def make_external_id(value: Any, mapped: bool, text: str) -> str:
    """Return a storable id for a record's id value.

    A missing id is an error when the source maps one (``mapped``), and
    otherwise the SHA-1 of the text. Ids longer than MAX_ID_CHARS are hashed.
    """
    if value is None or value == "":
        if mapped:
            raise RecordError("missing id")
        return "sha1:" + hashlib.sha1(text.encode("utf-8")).hexdigest()
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise RecordError(f"id is not a string or number: {type(value).__name__}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    raw_id = str(value)
    if _SURROGATE.search(raw_id):
        # Lone surrogates cannot be stored as UTF-8, and replacing them would
        # make two such ids equal: hash their code points instead.
        return (
            "sha1:" + hashlib.sha1(raw_id.encode("utf-8", "surrogatepass")).hexdigest()
        )
    external_id = clean_text(raw_id).strip()
    if not external_id:
        raise RecordError("missing id")
    if len(external_id) > MAX_ID_CHARS:
        return "sha1:" + hashlib.sha1(external_id.encode("utf-8")).hexdigest()
    return external_id


def lookup(record: dict[str, Any], key: str) -> Any:
    """Return the value at ``key``, a plain or dotted key; None when absent."""
    if key in record:
        return record[key]
    value: Any = record
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _text_or(value: Any, default: str | None) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return default
    text = clean_text(str(value)).strip()
    return text or default


def _verified(value: Any) -> str:
    if value is None:
        return "none"
    text = str(value).strip().lower()
    if text in VERIFIED_TYPES:
        return text
    return _VERIFIED_ALIASES.get(text, "personal" if text else "none")
