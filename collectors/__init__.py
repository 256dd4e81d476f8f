"""Collectors: one per kind of source. Each reads posts and returns items in
batches with a cursor. None writes to the database or imports the alerts."""

from __future__ import annotations

from collectors.base import Batch, Collector, CollectorError, RecordError, Rejected
from collectors.replay import ReplayCollector
from config import Config, Source

__all__ = [
    "Batch",
    "Collector",
    "CollectorError",
    "RecordError",
    "Rejected",
    "ReplayCollector",
    "build_collector",
]


def build_collector(source: Source, config: Config) -> Collector:
    """Create the collector for one configured source."""
    if source.kind == "replay":
        return ReplayCollector(
            source,
            config.resolve(source.path),
            config.timezone,
            config.storage.batch_size,
        )
    raise ValueError(f"unknown source kind {source.kind!r}")
