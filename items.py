"""Plain data passed between the stages of the pipeline.

A collector produces :class:`Item` objects; the nlp stage turns each into an
:class:`Assessment` (normalised text, brand relevance, classification and
grading); storage and alerts read both. This module imports nothing from the
project, so every package may import it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

KINDS = ("irrelevant", "neutral", "praise", "grievance", "complaint")
LEVELS = ("normal", "medium", "critical")
FACTORS = ("customer_loss", "company_fault", "public_impact", "customer_identity")
VERIFIED_TYPES = ("none", "personal", "media", "government", "enterprise")
ROOT_CAUSES = ("product", "service", "process")
SIGNAL_KINDS = ("critical", "viral", "escalation", "burst")

FACTOR_NAMES_ZH = {
    "customer_loss": "客户损失",
    "company_fault": "企业过失",
    "public_impact": "公共影响",
    "customer_identity": "客户身份",
}
LEVEL_NAMES_ZH = {"normal": "普通", "medium": "中等", "critical": "危机"}
KIND_NAMES_ZH = {
    "irrelevant": "无关",
    "neutral": "中性",
    "praise": "表扬",
    "grievance": "抱怨",
    "complaint": "投诉",
}


@dataclass(slots=True)
class Author:
    """The account that wrote a post, as the source describes it."""

    name: str | None = None
    id: str | None = None
    followers: int | None = None
    verified: str = "none"
    role: str | None = None


@dataclass(slots=True)
class Engagement:
    """Counts of reactions to a post at the time it was collected."""

    likes: int = 0
    reposts: int = 0
    comments: int = 0

    @property
    def interactions(self) -> int:
        return self.likes + self.reposts + self.comments


@dataclass(slots=True)
class Item:
    """One collected post, before any analysis.

    ``source`` is the configured source name and ``platform`` the site the post
    was written on (weibo, reddit, 12365auto ...). ``external_id`` is unique
    within a source. ``native`` is True when ``external_id`` is the platform's
    own id of the post (a Weibo mid read from a link, a Reddit fullname), so
    that the store keeps one row per platform and id whichever source read
    it; otherwise the id is only unique within its source.
    ``created_at`` and ``collected_at`` are timezone-aware.
    ``time_estimated`` is True when the source gave no readable time and
    ``created_at`` is the time of collection. ``removed`` is True when the
    source showed the post removed or deleted at collection. ``location``
    names where the record came from (a file and line, a URL) so that log
    lines can point at it.
    """

    source: str
    platform: str
    external_id: str
    text: str
    collected_at: datetime
    created_at: datetime | None = None
    title: str | None = None
    url: str | None = None
    lang: str | None = None
    author: Author = field(default_factory=Author)
    engagement: Engagement = field(default_factory=Engagement)
    raw: dict[str, Any] = field(default_factory=dict)
    location: str = ""
    time_estimated: bool = False
    removed: bool = False
    native: bool = False


@dataclass(frozen=True, slots=True)
class NormalizedText:
    """The text the classifier reads; analysts always see the original.

    ``text`` contains the author's own words, ``quoted`` the repost chain that
    followed them. ``emoticons`` counts Weibo codes such as ``[怒]``.
    """

    text: str
    quoted: str = ""
    emoticons: dict[str, int] = field(default_factory=dict)
    hashtags: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    mentions: tuple[str, ...] = ()
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class Relevance:
    """Whether a post is about the monitored brand, and the words that showed it.

    ``models`` lists every car model named, the monitored brand's own first.
    ``competitor_models`` contains those of them that belong to a competitor.
    """

    relevant: bool
    brand: str | None = None
    models: tuple[str, ...] = ()
    competitors: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    competitor_models: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Cue:
    """A signal that contributed to a decision: its name and the matched text."""

    name: str
    text: str

    def __str__(self) -> str:
        return f"{self.name}: {self.text}"


@dataclass(frozen=True, slots=True)
class Classification:
    """The kind of a post with its confidence and the cues that decided it."""

    kind: str
    confidence: float
    cues: tuple[Cue, ...] = ()
    demands: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    root_cause: str | None = None
    model_version: str = ""


@dataclass(frozen=True, slots=True)
class FactorScore:
    """One of the four grading factors, scored 0-3, with its evidence."""

    name: str
    score: int
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Grading:
    """Escalation risk of a grievance or complaint.

    ``level`` is set for complaints and for grievances alike: a grievance from a
    journalist going viral can be critical before anyone has filed anything.
    ``deadline`` is the response deadline that the level implies under the
    configured strategy. ``reason`` is one sentence an analyst can read.
    """

    factors: tuple[FactorScore, ...]
    level: str
    strategy: str
    deadline: datetime | None
    reason: str
    safety: bool = False
    high_risk: bool = False

    def factor(self, name: str) -> FactorScore:
        for factor in self.factors:
            if factor.name == name:
                return factor
        raise KeyError(name)

    @property
    def total(self) -> int:
        return sum(factor.score for factor in self.factors)


@dataclass(frozen=True, slots=True)
class Assessment:
    """Everything the nlp stage concluded about one item.

    ``grading`` is None for kinds that are not graded (irrelevant, neutral,
    praise).
    """

    normalized: NormalizedText
    relevance: Relevance
    classification: Classification
    grading: Grading | None = None


@dataclass(frozen=True, slots=True)
class Signal:
    """One early warning for the alert stage.

    ``kind`` is one of SIGNAL_KINDS. ``key`` is unique among all signals, so
    that the same warning is stored once however often the job finds it.
    ``subject`` is "post", "problem" or "brand". ``occurred_at`` is when the
    event happened: the post's time, the time of a forecast, a burst's first
    hour. ``reason`` is one sentence an analyst can read.
    """

    kind: str
    key: str
    subject: str
    reason: str
    occurred_at: datetime
    post_id: int | None = None
    problem_id: int | None = None
    level: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def as_dict(value: Any) -> Any:
    """Convert a dataclass from this module into JSON-ready built-in types."""
    if dataclasses.is_dataclass(value):
        return {
            f.name: as_dict(getattr(value, f.name)) for f in dataclasses.fields(value)
        }
    if isinstance(value, (list, tuple)):
        return [as_dict(v) for v in value]
    if isinstance(value, dict):
        return {k: as_dict(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    return value


@dataclass(frozen=True, slots=True)
class KnownPost:
    """A stored post that the engagement refresh reads again from its source.

    ``native_id`` is the platform's own id of the post where the collector
    read one from its link. ``truncated`` is True when the source showed the
    post cut short and its full text has not been looked up yet. ``level`` is
    its latest grading's level, if graded.
    """

    post_id: int
    source: str
    platform: str
    external_id: str
    url: str | None
    native_id: str | None
    created_at: datetime | None
    truncated: bool = False
    level: str | None = None


@dataclass(frozen=True, slots=True)
class Reread:
    """A known post as its source shows it now.

    ``engagement`` is None when the source gave no counts. ``text`` is the
    post's full text, given only for a post that was cut short and only when
    the source returned it.
    """

    post: KnownPost
    engagement: Engagement | None = None
    removed: bool = False
    text: str | None = None
