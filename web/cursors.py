"""The ``after`` parameter of the queue's next-page link.

It carries the queue sort key of the last row shown (see
:func:`storage.queue.sort_key`) as URL-safe base64. It is not secret: a
reader may send any key of the right length, which only moves where the page
starts.
"""

from __future__ import annotations

import base64
import binascii

from storage.queue_tables import SORT_KEY_LENGTH


def encode_key(key: bytes) -> str:
    """Encode a queue sort key for a URL."""
    return base64.urlsafe_b64encode(key).decode().rstrip("=")


def decode_key(value: str) -> bytes:
    """Decode a key made by :func:`encode_key`; raise ValueError when invalid."""
    if len(value) > 4 * SORT_KEY_LENGTH:
        raise ValueError("page cursor too long")
    try:
        padded = value + "=" * (-len(value) % 4)
        key = base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise ValueError(f"invalid page cursor: {exc}") from None
    if len(key) != SORT_KEY_LENGTH:
        raise ValueError(
            f"invalid page cursor: {len(key)} bytes, expected {SORT_KEY_LENGTH}"
        )
    return key
