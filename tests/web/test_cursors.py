"""Tests for web.cursors: page cursors from the query string are hostile input."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from web.cursors import QueueKey, decode_key, encode_key


def encoded(values) -> str:
    text = json.dumps(values)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_cursor_round_trips() -> None:
    key = QueueKey(
        level="critical",
        deadline=datetime(2026, 12, 5, 8, tzinfo=UTC),
        posted_at=datetime(2026, 12, 5, 7, tzinfo=UTC),
        post_id=42,
    )
    assert decode_key(encode_key(key)) == key


@pytest.mark.parametrize(
    "values",
    [
        ["critical", "0001-01-01T00:00:00+01:00", "2026-01-01T00:00:00+00:00", 1],
        ["critical", "2026-01-01T00:00:00+00:00", "9999-12-31T23:59:59-01:00", 1],
    ],
)
def test_cursor_time_without_utc_equivalent_rejected(values) -> None:
    with pytest.raises(ValueError, match="time out of range"):
        decode_key(encoded(values))
