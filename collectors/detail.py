"""Reading single known posts again from a JSON address, for the engagement
refresh: their counts now, and the full text of posts a listing cut short.

A source's ``detail`` section names the address of one post and where the
counts and the text are in its response (see config.DetailOptions). A post
that cannot be read this time is left for the next refresh. A post whose
address responds HTTP 404 or 410 is reported removed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from collectors.base import CollectorError, clean_text, parse_count
from collectors.http import DeadlineExceeded, HttpClient, HttpRun
from collectors.records import lookup
from config import DetailOptions
from items import Engagement, KnownPost, Reread

logger = logging.getLogger(__name__)

COUNT_FIELDS = ("likes", "reposts", "comments")
GONE = (404, 410)


class DetailReader:
    """Read known posts of one source through its ``detail`` address."""

    def __init__(
        self,
        source_name: str,
        options: DetailOptions,
        client: HttpClient,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.name = source_name
        self.options = options
        self.client = client
        self.headers = dict(headers or {})

    def reread(self, posts: Sequence[KnownPost]) -> Iterator[Reread]:
        """Yield what the source shows of each post it can still be asked about.

        Stops at the run deadline, after yielding what it read before.
        """
        run = self.client.start_run(self.name)
        missing: list[KnownPost] = []
        found = False
        for post in posts:
            url = self.address(post)
            if url is None:
                logger.debug(
                    "post has no id for the detail address source=%s post=%s",
                    self.name,
                    post.post_id,
                )
                continue
            try:
                reread = self._read(run, post, url)
            except DeadlineExceeded:
                raise
            except CollectorError as exc:
                logger.warning(
                    "post not read again source=%s post=%s reason=%s",
                    self.name,
                    post.post_id,
                    exc,
                )
                continue
            if reread.removed:
                missing.append(post)
                continue
            found = True
            yield reread
        yield from self._missing(missing, found)

    def _missing(self, missing: list[KnownPost], found: bool) -> Iterator[Reread]:
        """Report posts removed, unless the address found none of the posts.

        An address that responds 404 for every post is more likely wrong than
        every post deleted, and marking them removed would end their refresh.
        """
        if not found and len(missing) > 1:
            logger.warning(
                "detail address found none of the posts, none marked removed; "
                "check detail.url source=%s posts=%s",
                self.name,
                len(missing),
            )
            return
        for post in missing:
            yield Reread(post, removed=True)

    def address(self, post: KnownPost) -> str | None:
        """Return the detail URL of a post, or None when it lacks a value the URL needs."""
        values = {
            "native_id": post.native_id,
            "external_id": post.external_id,
            "url": post.url,
        }
        try:
            return self.options.url.format_map(
                {k: quote(v, safe="") for k, v in values.items() if v}
            )
        except KeyError:
            return None

    def _read(self, run: HttpRun, post: KnownPost, url: str) -> Reread:
        response = run.get(url, headers=self.headers)
        if response.status_code in GONE:
            return Reread(post, removed=True)
        if not 200 <= response.status_code <= 299:
            raise CollectorError(f"GET {url} failed: HTTP {response.status_code}")
        try:
            data = json.loads(response.content)
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise CollectorError(
                f"GET {url} failed: the response is not JSON"
            ) from None
        if not isinstance(data, dict):
            raise CollectorError(f"GET {url} failed: the response is not a JSON object")
        return Reread(post, self._engagement(data), text=self._text(post, data))

    def _engagement(self, data: dict[str, Any]) -> Engagement | None:
        fields = self.options.fields
        values = {
            name: lookup(data, fields[name]) for name in COUNT_FIELDS if name in fields
        }
        found = {name: value for name, value in values.items() if value is not None}
        if not found:
            return None
        return Engagement(**{name: parse_count(value) for name, value in found.items()})

    def _text(self, post: KnownPost, data: dict[str, Any]) -> str | None:
        if not post.truncated or "text" not in self.options.fields:
            return None
        value = lookup(data, self.options.fields["text"])
        if not isinstance(value, str):
            return None
        text = clean_text(value).strip()
        return text or None
