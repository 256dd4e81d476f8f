"""The ``after`` parameter of the queue's next-page link.

It carries the sort key of the last row shown, as URL-safe base64 of a
JSON list. It is not secret: a reader may build any key, which only moves
where the page starts.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime

from storage.queue import QUEUE_LEVELS, QueueKey

MAX_CURSOR_LENGTH = 400


def encode_key(key: QueueKey) -> str:
    """Encode a queue key for a URL."""
    values = [
        key.level,
        key.deadline.isoformat(),
        key.posted_at.isoformat(),
        key.post_id,
    ]
    text = json.dumps(values, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_key(value: str) -> QueueKey:
    """Decode a key made by :func:`encode_key`; raise ValueError when invalid."""
    if len(value) > MAX_CURSOR_LENGTH:
        raise ValueError("page cursor too long")
    try:
        padded = value + "=" * (-len(value) % 4)
        level, deadline, posted_at, post_id = json.loads(
            base64.urlsafe_b64decode(padded.encode("ascii"))
        )
        key = QueueKey(
            level=level,
            deadline=datetime.fromisoformat(deadline),
            posted_at=datetime.fromisoformat(posted_at),
            post_id=post_id,
        )
    except (binascii.Error, UnicodeError, TypeError, ValueError) as exc:
        raise ValueError(f"invalid page cursor: {exc}") from None
    if key.level not in QUEUE_LEVELS:
        raise ValueError("invalid page cursor: unknown level")
    if type(key.post_id) is not int or not 0 <= key.post_id < 2**63:
        raise ValueError("invalid page cursor: post id out of range")
    if key.deadline.tzinfo is None or key.posted_at.tzinfo is None:
        raise ValueError("invalid page cursor: times without a UTC offset")
    try:
        # A time near year 1 or 9999 with an offset has no UTC equivalent.
        key.deadline.astimezone(UTC)
        key.posted_at.astimezone(UTC)
    except OverflowError:
        raise ValueError("invalid page cursor: time out of range") from None
    return key
