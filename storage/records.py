"""Frozen dataclasses that the store takes and returns, besides those of ``items``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from items import Classification, Grading, Item, Relevance, Signal


@dataclass(frozen=True, slots=True)
class NewAlert:
    """An alert to store, with a ``dedup_key`` that makes a repeat of it a no-op.

    ``post_id`` is None for an alert that is about no single post.
    """

    post_id: int | None
    dedup_key: str
    level: str
    kind: str
    subject: str
    recipients: tuple[str, ...]
    message_id: str
    message: str


@dataclass(frozen=True, slots=True)
class StoredBatch:
    """The outcome of storing a batch of collected items.

    ``ids`` holds, in the position of each item, the id of the post it
    created, or None for a post already stored. ``refreshed`` lists the
    already stored posts whose engagement changed, once each.
    """

    ids: list[int | None]
    refreshed: list[int]


@dataclass(frozen=True, slots=True)
class Saved:
    """The ids of the alerts and signals a save stored, None where one was known.

    Both lists follow the order of what was passed in.
    """

    alert_ids: list[int | None]
    signal_ids: list[int | None]


@dataclass(frozen=True, slots=True)
class SignalRecord:
    """A stored early-warning signal."""

    id: int
    signal: Signal
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """A stored alert with its delivery state."""

    id: int
    post_id: int | None
    dedup_key: str
    level: str
    kind: str
    subject: str
    recipients: tuple[str, ...]
    message_id: str
    message: str
    status: str
    attempts: int
    created_at: datetime
    last_attempt_at: datetime | None
    sent_at: datetime | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """The state of one source: its last run and the posts stored from it.

    ``last_error`` is the error of the most recent run that recorded one, and
    ``last_error_at`` is when that run started. It may be older than the last run.
    ``last_success_at`` is when the last ok or partial run finished, and
    ``failures_in_row`` counts the failed runs since then. ``skipped_runs``
    counts the scheduled runs of the last seven days that did not happen.
    """

    name: str
    posts: int
    last_started_at: datetime | None = None
    last_finished_at: datetime | None = None
    last_status: str | None = None
    last_bad: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_success_at: datetime | None = None
    failures_in_row: int = 0
    skipped_runs: int = 0


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One collection run of a source."""

    id: int
    source: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    error: str | None


@dataclass(frozen=True, slots=True)
class StatusReport:
    """Counts that summarise the database for the status command and page.

    ``kinds`` counts posts by the kind of their latest classification.
    ``levels`` counts them by the level of the latest grading of that
    classification, and ``levels_by_kind`` splits the same counts by kind.
    Posts whose latest classification has no grading are not in the level counts.
    """

    sources: tuple[SourceStatus, ...]
    posts: int
    kinds: Mapping[str, int] = field(default_factory=dict)
    levels: Mapping[str, int] = field(default_factory=dict)
    levels_by_kind: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    pending_alerts: int = 0
    failed_alerts: int = 0


@dataclass(frozen=True, slots=True)
class PostRecord:
    """A stored post with its latest classification and that one's latest grading.

    ``item.engagement`` is the latest engagement snapshot. ``relevance`` has
    no evidence, because the store keeps only its verdict, brand and models.
    """

    id: int
    item: Item
    last_seen_at: datetime
    relevance: Relevance | None = None
    classification: Classification | None = None
    grading: Grading | None = None
    truncated: bool = False
    classified_at: datetime | None = None
    graded_at: datetime | None = None
