"""The check on where to send a browser after login."""

from __future__ import annotations

from urllib.parse import urlsplit

MAX_TARGET_LENGTH = 2000


def local_target(target: str | None, default: str = "/") -> str:
    """Return ``target`` when it is a path on this site, else ``default``.

    Browsers read ``//host`` and ``/\\host`` as another site, treat a
    backslash as a slash and drop tabs and newlines inside a URL, so a
    target with any of these, a scheme, or a control character is rejected.
    """
    if not target or len(target) > MAX_TARGET_LENGTH:
        return default
    if not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or any(not character.isprintable() for character in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target
