"""Collectors: one per kind of source. Each reads posts and returns items in
batches with a cursor. None writes to the database or imports the alerts."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from collectors.base import Batch, Collector, CollectorError, RecordError, Rejected
from collectors.detail import DetailReader
from collectors.feed import FeedCollector
from collectors.http import DeadlineExceeded, HttpClient, shared_client
from collectors.jsonapi import JsonCollector
from collectors.replay import ReplayCollector
from config import Config, Source
from items import KnownPost, Reread

__all__ = [
    "Batch",
    "Collector",
    "CollectorError",
    "DeadlineExceeded",
    "DetailReader",
    "FeedCollector",
    "HttpClient",
    "JsonCollector",
    "RecordError",
    "Rejected",
    "ReplayCollector",
    "Rereader",
    "build_collector",
    "build_rereader",
]


def build_collector(source: Source, config: Config) -> Collector:
    """Create the collector for one configured source.

    Feed and JSON sources share one HTTP client per process, so that sources
    running in parallel threads take turns at the hosts they share.
    """
    batch_size = config.storage.batch_size
    if source.kind == "replay" and source.path is not None:
        return ReplayCollector(
            source,
            config.resolve(source.path),
            config.timezone,
            batch_size,
        )
    if source.kind == "feed":
        client = shared_client(config.http)
        return FeedCollector(source, client, config.timezone, batch_size)
    if source.kind == "json":
        client = shared_client(config.http)
        return JsonCollector(source, client, config.timezone, batch_size)
    if source.kind == "reddit":
        return _reddit_collector(source, config)
    raise CollectorError(f"source {source.name}: unknown source kind {source.kind!r}")


def _reddit_collector(source: Source, config: Config) -> Collector:
    # Imported here so that praw and requests load only for a Reddit source.
    from collectors.reddit import RedditCollector

    return RedditCollector(source, config)


class Rereader(Protocol):
    def reread(self, posts: Sequence[KnownPost]) -> Iterator[Reread]:
        """Yield what the source shows now of each known post it can still read."""
        ...


def build_rereader(source: Source, config: Config) -> Rereader | None:
    """Return what reads known posts of a source again, or None when nothing can.

    Reddit returns any post by its id. A feed or JSON source can when its
    ``detail`` section names the address of one post; files cannot.
    """
    if source.kind == "reddit":
        return _reddit_collector(source, config)
    if source.detail is None or source.kind not in ("feed", "json"):
        return None
    client = shared_client(config.http)
    headers = {}
    if source.kind == "json":
        headers = JsonCollector(source, client, config.timezone, 1).request_headers()
    return DetailReader(source.name, source.detail, client, headers)
