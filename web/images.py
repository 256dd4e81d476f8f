"""Chart images served from the page's own routes, as the CSP's img-src 'self'
allows."""

from __future__ import annotations

from flask import Response


def png_response(png: bytes) -> Response:
    """Return PNG bytes as an image response."""
    return Response(png, mimetype="image/png")
