"""Collectors: one per kind of source. Each reads posts and returns items in
batches with a cursor. None writes to the database or imports the alerts."""

from __future__ import annotations

from collectors.base import Batch, Collector, CollectorError, RecordError, Rejected
from collectors.feed import FeedCollector
from collectors.http import DeadlineExceeded, HttpClient, shared_client
from collectors.jsonapi import JsonCollector
from collectors.reddit import RedditCollector
from collectors.replay import ReplayCollector
from config import Config, Source

__all__ = [
    "Batch",
    "Collector",
    "CollectorError",
    "DeadlineExceeded",
    "FeedCollector",
    "HttpClient",
    "JsonCollector",
    "RecordError",
    "RedditCollector",
    "Rejected",
    "ReplayCollector",
    "build_collector",
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
        return RedditCollector(source, config)
    raise CollectorError(f"source {source.name}: unknown source kind {source.kind!r}")
