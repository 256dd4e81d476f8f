"""Tests for web.cursors: page cursors from the query string are hostile input."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from storage.queue import sort_key
from web.cursors import decode_key, encode_key


def test_cursor_round_trips() -> None:
    key = sort_key(
        "critical",
        datetime(2026, 12, 5, 8, tzinfo=UTC),
        7,
        datetime(2026, 12, 5, 7, tzinfo=UTC),
        42,
    )
    assert decode_key(encode_key(key)) == key


@pytest.mark.parametrize(
    "value",
    [
        "not a cursor",
        "A" * 500,
        "%%%%",
        base64.urlsafe_b64encode(b"short").decode(),
        base64.urlsafe_b64encode(b"x" * 27).decode(),
        "ＡＢＣＤ",
        "",
    ],
)
def test_invalid_cursor_rejected(value: str) -> None:
    with pytest.raises(ValueError, match="page cursor"):
        decode_key(value)


def test_sort_key_orders_like_queue() -> None:
    early = datetime(2026, 3, 1, tzinfo=UTC)
    late = datetime(2026, 3, 2, tzinfo=UTC)
    keys = [
        sort_key("critical", early, 3, early, 5),
        sort_key("critical", early, 3, early, 4),
        sort_key("critical", early, 2, late, 9),
        sort_key("critical", late, 12, late, 9),
        sort_key("critical", None, 12, late, 9),
        sort_key("medium", early, 0, early, 1),
        sort_key("normal", early, 0, early, 1),
    ]
    assert sorted(keys) == keys
