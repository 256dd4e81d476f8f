"""Conversions between the dataclasses of ``items`` and table rows.

The problem grouping's data arrives and leaves in the plain state format of
:mod:`signals.problems`, and the dataclasses that carry it are declared here.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from items import (
    FACTORS,
    Assessment,
    Author,
    Classification,
    Cue,
    Engagement,
    FactorScore,
    Grading,
    Item,
    KnownPost,
    Relevance,
    Signal,
)

from .records import AlertRecord, DeliveryRecord, MessageRecord, SignalRecord

logger = logging.getLogger(__name__)

MAX_EXTERNAL_ID = 512
# Platform names that may scope a native id. Any other name, "unknown" among
# them, leaves the post in its source's scope.
_PLATFORM_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,39}")
# The largest value of a signed 64-bit column (BIGINT on both backends).
MAX_COUNT = 2**63 - 1

POST_TEXT_COLUMNS = (
    "platform",
    "url",
    "title",
    "text",
    "lang",
    "author_name",
    "author_id",
    "author_verified",
    "author_role",
)

# Keys per IN list when looking up stored rows, far below the bind parameter
# limit of SQLite (32766 since 3.32) and PostgreSQL (65535).
LOOKUP_CHUNK = 500

# PostgreSQL rejects NUL in text, and lone surrogates cannot be encoded as UTF-8
# by either driver.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def clean_text(value: str) -> str:
    """Replace NUL and lone surrogates with U+FFFD, leaving other characters intact."""
    if _UNSTORABLE.search(value):
        return _UNSTORABLE.sub("\ufffd", value)
    return value


def post_key(item: Item) -> str:
    """Return the identity key that the store keeps one post row under.

    A native id (``item.native``) is scoped by its platform, as
    ``native:weibo:5101234567890123``, so that every source reading the post
    finds the same row. A feed's ``weibo:<mid>`` and a JSON API's bare mid
    give the same key, because a leading ``<platform>:`` is dropped from the
    id. Any other id is scoped by its source, as ``source:<source>:<id>``.
    Raises ValueError when the external id is longer than the column allows.
    """
    source, external_id = source_key(item)
    platform = item.platform.lower()
    if item.native and platform != "unknown" and _PLATFORM_NAME.fullmatch(platform):
        native_id = external_id.removeprefix(f"{item.platform}:")
        return f"native:{platform}:{native_id}"
    return f"source:{source}:{external_id}"


def source_key(item: Item) -> tuple[str, str]:
    """Return the ``(source, external_id)`` of a post, as stored.

    Raises ValueError when the external id is longer than the column allows.
    """
    external_id = clean_text(item.external_id)
    if len(external_id) > MAX_EXTERNAL_ID:
        raise ValueError(
            f"external_id longer than {MAX_EXTERNAL_ID} characters "
            f"(source={item.source} location={item.location}); "
            "the collector should shorten it, for example to a hash"
        )
    return clean_text(item.source), external_id


def clamp_count(value: int | None) -> int:
    """Bound a reaction count to the BIGINT range, with negative counts as 0."""
    if value is None or value < 0:
        return 0
    return min(value, MAX_COUNT)


def post_row(item: Item, key: str) -> dict[str, Any]:
    """Build the ``posts`` row of an item under its identity key (:func:`post_key`),
    with unstorable characters replaced."""
    source, external_id = source_key(item)
    author = item.author
    row = {
        "identity_key": key,
        "source": source,
        "external_id": external_id,
        "platform": item.platform,
        "url": item.url,
        "title": item.title,
        "text": item.text,
        "lang": item.lang,
        "author_name": author.name,
        "author_id": author.id,
        "author_followers": None
        if author.followers is None
        else clamp_count(author.followers),
        "author_verified": author.verified,
        "author_role": author.role,
        "created_at": item.created_at,
        "collected_at": item.collected_at,
        "last_seen_at": item.collected_at,
        "raw": item.raw,
        "time_estimated": item.time_estimated,
        "removed_at": item.collected_at if item.removed else None,
    }
    for column in POST_TEXT_COLUMNS:
        value = row[column]
        if value is not None and _UNSTORABLE.search(value):
            row[column] = _UNSTORABLE.sub("\ufffd", value)
            logger.warning(
                "replaced NUL or lone surrogate source=%s external_id=%s column=%s",
                source,
                external_id,
                column,
            )
    return row


def engagement_counts(engagement: Engagement) -> tuple[int, int, int]:
    return (
        clamp_count(engagement.likes),
        clamp_count(engagement.reposts),
        clamp_count(engagement.comments),
    )


def snapshot_row(post_id: int, item: Item) -> dict[str, Any]:
    likes, reposts, comments = engagement_counts(item.engagement)
    return {
        "post_id": post_id,
        "taken_at": item.collected_at,
        "likes": likes,
        "reposts": reposts,
        "comments": comments,
    }


def classification_row(
    post_id: int, assessment: Assessment, now: datetime
) -> dict[str, Any]:
    classification = assessment.classification
    relevance = assessment.relevance
    return {
        "post_id": post_id,
        "kind": classification.kind,
        "confidence": classification.confidence,
        "cues": [{"name": cue.name, "text": cue.text} for cue in classification.cues],
        "demands": list(classification.demands),
        "channels": list(classification.channels),
        "root_cause": classification.root_cause,
        "model_version": classification.model_version,
        "relevant": relevance.relevant,
        "brand": relevance.brand,
        "models": list(relevance.models),
        "competitors": list(relevance.competitors),
        "competitor_models": list(relevance.competitor_models),
        "truncated": assessment.normalized.truncated,
        "created_at": now,
    }


def grading_row(
    post_id: int, classification_id: int, grading: Grading, now: datetime
) -> dict[str, Any]:
    """Build the ``gradings`` row, or raise ValueError when a factor is missing."""
    row: dict[str, Any] = {"post_id": post_id, "classification_id": classification_id}
    evidence: dict[str, list[str]] = {}
    for name in FACTORS:
        try:
            factor = grading.factor(name)
        except KeyError:
            raise ValueError(
                f"grading of post {post_id} has no factor {name!r}; "
                f"expected all of {', '.join(FACTORS)}"
            ) from None
        row[name] = factor.score
        evidence[name] = list(factor.evidence)
    row.update(
        evidence=evidence,
        level=grading.level,
        strategy=grading.strategy,
        safety=grading.safety,
        high_risk=grading.high_risk,
        deadline=grading.deadline,
        reason=grading.reason,
        created_at=now,
    )
    return row


def signal_row(signal: Signal, now: datetime) -> dict[str, Any]:
    return {
        "kind": signal.kind,
        "key": signal.key,
        "subject": signal.subject,
        "post_id": signal.post_id,
        "problem_id": signal.problem_id,
        "level": signal.level,
        "reason": clean_text(signal.reason),
        "detail": dict(signal.detail),
        "occurred_at": signal.occurred_at,
        "created_at": now,
    }


def signal_record(row: Mapping[str, Any]) -> SignalRecord:
    signal = Signal(
        kind=row["kind"],
        key=row["key"],
        subject=row["subject"],
        reason=row["reason"],
        occurred_at=row["occurred_at"],
        post_id=row["post_id"],
        problem_id=row["problem_id"],
        level=row["level"],
        detail=dict(row["detail"] or {}),
    )
    return SignalRecord(id=row["id"], signal=signal, created_at=row["created_at"])


def known_post(row: Any, level: str | None, truncated: bool) -> KnownPost:
    """Build what the engagement refresh needs of a stored post."""
    raw = row.raw if isinstance(row.raw, dict) else {}
    native_id = raw.get("native_id")
    return KnownPost(
        post_id=row.id,
        source=row.source,
        platform=row.platform,
        external_id=row.external_id,
        url=row.url,
        native_id=str(native_id) if native_id else None,
        created_at=row.created_at,
        truncated=truncated,
        level=level,
    )


def item_from_row(row: Mapping[str, Any], engagement: Mapping[str, Any] | None) -> Item:
    counts = Engagement()
    if engagement is not None:
        counts = Engagement(
            likes=engagement["likes"],
            reposts=engagement["reposts"],
            comments=engagement["comments"],
        )
    return Item(
        source=row["source"],
        platform=row["platform"],
        external_id=row["external_id"],
        text=row["text"],
        collected_at=row["collected_at"],
        created_at=row["created_at"],
        title=row["title"],
        url=row["url"],
        lang=row["lang"],
        author=Author(
            name=row["author_name"],
            id=row["author_id"],
            followers=row["author_followers"],
            verified=row["author_verified"],
            role=row["author_role"],
        ),
        engagement=counts,
        raw=row["raw"],
        time_estimated=row["time_estimated"],
        removed=row["removed_at"] is not None,
        native=row["identity_key"].startswith("native:"),
    )


def classification_from_row(row: Mapping[str, Any]) -> Classification:
    return Classification(
        kind=row["kind"],
        confidence=row["confidence"],
        cues=tuple(Cue(cue["name"], cue["text"]) for cue in row["cues"]),
        demands=tuple(row["demands"]),
        channels=tuple(row["channels"]),
        root_cause=row["root_cause"],
        model_version=row["model_version"],
    )


def relevance_from_row(row: Mapping[str, Any]) -> Relevance:
    return Relevance(
        relevant=row["relevant"],
        brand=row["brand"],
        models=tuple(row["models"]),
        competitors=tuple(row["competitors"]),
        competitor_models=tuple(row["competitor_models"]),
    )


def grading_from_row(row: Mapping[str, Any]) -> Grading:
    evidence = row["evidence"]
    factors = tuple(
        FactorScore(name, row[name], tuple(evidence.get(name, ()))) for name in FACTORS
    )
    return Grading(
        factors=factors,
        level=row["level"],
        strategy=row["strategy"],
        deadline=row["deadline"],
        reason=row["reason"],
        safety=row["safety"],
        high_risk=row["high_risk"],
    )


def alert_from_row(row: Mapping[str, Any]) -> AlertRecord:
    return AlertRecord(
        id=row["id"],
        post_id=row["post_id"],
        dedup_key=row["dedup_key"],
        level=row["level"],
        kind=row["kind"],
        subject=row["subject"],
        status=row["status"],
        deadline=row["deadline"],
        acknowledged_at=row["acknowledged_at"],
        acknowledged_by=row["acknowledged_by"],
        escalation_tier=row["escalation_tier"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        incident_id=row["incident_id"],
        root_cause=row["root_cause"],
        reach=row["reach"],
        owners=row["owners"],
        viral=row["viral"],
        last_message_at=row["last_message_at"],
    )


def message_from_row(row: Mapping[str, Any]) -> MessageRecord:
    return MessageRecord(
        id=row["id"],
        alert_id=row["alert_id"],
        sequence=row["sequence"],
        reason=row["reason"],
        message_id=row["message_id"],
        in_reply_to=row["in_reply_to"],
        references=row["references"],
        subject=row["subject"],
        message=row["message"],
        card=row["card"],
        created_at=row["created_at"],
    )


def delivery_from_row(row: Mapping[str, Any]) -> DeliveryRecord:
    return DeliveryRecord(
        id=row["id"],
        message=row["alert_message_id"],
        channel=row["channel"],
        recipient=row["recipient"],
        status=row["status"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        last_code=row["last_code"],
        sent_at=row["sent_at"],
        created_at=row["created_at"],
    )


# Problems and incidents, in the state format of signals.problems

# Problem fields that live in the ``profile`` JSON column.
PROFILE_COUNTERS = ("terms", "partial_terms", "root_causes", "kinds", "words")


@dataclass(frozen=True, slots=True)
class PostAssignment:
    """The incident and problem that the grouping gave a stored post.

    ``people`` lists (author hash, whether that author wrote words) for the
    post's author and the names of its repost chain.
    """

    post_id: int
    problem_id: int
    incident_id: int
    report: bool
    matched_by: str
    posted_at: datetime
    people: tuple[tuple[str, bool], ...] = ()


@dataclass(frozen=True, slots=True)
class GroupingChanges:
    """The changes that grouping a batch of posts made, saved with their assessments.

    ``problems`` and ``incidents`` contain the ``to_dict()`` data of each problem
    and incident that changed, in the grouping's state format
    (:class:`signals.problems.Problem` and ``Incident``). Each problem mapping
    also has a "label" and a "root_cause". ``state_version`` is the version of
    that format.
    """

    state_version: int
    assignments: tuple[PostAssignment, ...] = ()
    problems: tuple[Mapping[str, Any], ...] = ()
    incidents: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class ProblemSummary:
    """A stored problem with its counts, for the status command.

    ``recent_reports`` counts the reports posted within the requested
    window. ``reporters`` counts distinct people who wrote words.
    """

    id: int
    label: str
    model: str | None
    term: str | None
    root_cause: str | None
    posts: int
    reports: int
    incidents: int
    reporters: int
    first_seen: datetime
    last_seen: datetime
    recent_reports: int


def problem_row(data: Mapping[str, Any], version: int, now: datetime) -> dict[str, Any]:
    """Build the ``problems`` row of a problem's ``to_dict()`` data."""
    profile: dict[str, Any] = {name: dict(data[name]) for name in PROFILE_COUNTERS}
    profile["profile_incidents"] = data["profile_incidents"]
    return {
        "id": data["id"],
        "model": _clean_optional(data["model"]),
        "term": _clean_optional(data["term"]),
        "label": clean_text(data["label"]),
        "root_cause": data["root_cause"],
        "models": dict(data["models"]),
        "posts": data["posts"],
        "reports": data["reports"],
        "incidents": len(data["incident_ids"]),
        "reporters": len(data["authors"]),
        "first_seen": datetime.fromisoformat(data["first_seen"]),
        "last_seen": datetime.fromisoformat(data["last_seen"]),
        "profile": profile,
        "state_version": version,
        "updated_at": now,
    }


def incident_row(
    data: Mapping[str, Any], version: int, now: datetime
) -> dict[str, Any]:
    """Build the ``incidents`` row of an incident's ``to_dict()`` data."""
    posts = data["posts"]
    return {
        "id": data["id"],
        "problem_id": data["problem_id"],
        "posts": len(posts),
        "reports": sum(1 for report in posts.values() if report),
        "authors": len(data["authors"]),
        "reporters": len(data["reporters"]),
        "first_seen": datetime.fromisoformat(data["first_seen"]),
        "last_seen": datetime.fromisoformat(data["last_seen"]),
        "signatures": list(data["signatures"]),
        "state_version": version,
        "updated_at": now,
    }


def problem_post_row(assignment: PostAssignment, now: datetime) -> dict[str, Any]:
    return {
        "post_id": assignment.post_id,
        "problem_id": assignment.problem_id,
        "incident_id": assignment.incident_id,
        "report": assignment.report,
        "matched_by": assignment.matched_by,
        "posted_at": assignment.posted_at,
        "assigned_at": now,
    }


def problem_state(
    row: Mapping[str, Any], incident_ids: list[int], authors: set[str]
) -> dict[str, Any]:
    """Rebuild a problem's ``to_dict()`` data from its row and related rows."""
    profile = row["profile"]
    data: dict[str, Any] = {name: profile[name] for name in PROFILE_COUNTERS}
    data.update(
        id=row["id"],
        model=row["model"],
        term=row["term"],
        posts=row["posts"],
        reports=row["reports"],
        profile_incidents=profile["profile_incidents"],
        models=row["models"],
        incident_ids=incident_ids,
        authors=list(authors),
        first_seen=row["first_seen"].isoformat(),
        last_seen=row["last_seen"].isoformat(),
    )
    return data


def incident_state(
    row: Mapping[str, Any],
    posts: dict[str, bool],
    authors: dict[str, bool],
) -> dict[str, Any]:
    """Rebuild an incident's ``to_dict()`` data from its row and related rows.

    ``posts`` maps post keys ("source:external_id") to whether each is a
    report, and ``authors`` maps author hashes to whether each is a reporter.
    """
    return {
        "id": row["id"],
        "problem_id": row["problem_id"],
        "posts": posts,
        "authors": list(authors),
        "reporters": [author for author, wrote in authors.items() if wrote],
        "signatures": row["signatures"],
        "first_seen": row["first_seen"].isoformat(),
        "last_seen": row["last_seen"].isoformat(),
    }


def _clean_optional(value: str | None) -> str | None:
    return None if value is None else clean_text(value)


def problem_summary(row: Mapping[str, Any]) -> ProblemSummary:
    return ProblemSummary(
        id=row["id"],
        label=row["label"],
        model=row["model"],
        term=row["term"],
        root_cause=row["root_cause"],
        posts=row["posts"],
        reports=row["reports"],
        incidents=row["incidents"],
        reporters=row["reporters"],
        first_seen=row["first_seen"],
        last_seen=row["last_seen"],
        recent_reports=row["recent_reports"],
    )


def chunks(values: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Yield ``values`` in consecutive slices of at most ``size``."""
    for start in range(0, len(values), size):
        yield values[start : start + size]
