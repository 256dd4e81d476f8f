"""Graded posts stored through the real Store, for the review page's tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from items import (
    Assessment,
    Author,
    Classification,
    Cue,
    Engagement,
    FactorScore,
    Grading,
    Item,
    NormalizedText,
    Relevance,
)
from storage import NewAlert, NewDelivery, NewMessage, Store

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
# A post written to run script wherever it is shown unescaped: tags, event
# handlers, a javascript: link and a tag left open.
HOSTILE_TEXT = (
    '<script>alert("text")</script> QC7 刹车失灵 <img src=x onerror=alert(1)> '
    "<b>粗体 <a href=\"javascript:alert('a')\">点我</a> <svg onload=alert(2)> <i"
)
HOSTILE_AUTHOR = '<script>alert("author")</script><img src=x onerror=alert(3)>'
HOSTILE_URL = "javascript:alert('url')"


def make_grading(level: str, deadline: datetime | None) -> Grading:
    return Grading(
        factors=(
            FactorScore("customer_loss", 2, ("维修费 8000 元",)),
            FactorScore("company_fault", 2, ("售后推诿三次",)),
            FactorScore("public_impact", 1, ("转发 120",)),
            FactorScore("customer_identity", 0),
        ),
        level=level,
        strategy="balanced",
        deadline=deadline,
        reason="刹车异响多次维修未果，车主要求退车",
        safety=True,
    )


def make_assessment(
    kind: str, level: str | None, deadline: datetime | None
) -> Assessment:
    return Assessment(
        normalized=NormalizedText(text="刹车异响"),
        relevance=Relevance(relevant=True, brand="启程汽车", models=("QC7",)),
        classification=Classification(
            kind=kind,
            confidence=0.91,
            cues=(Cue("action", "投诉"), Cue("demand", "退车")),
            demands=("退车",),
            channels=("12315",),
            model_version="test",
        ),
        grading=None if level is None else make_grading(level, deadline),
    )


def add_graded_post(
    store: Store,
    external_id: str,
    *,
    level: str | None = "medium",
    kind: str = "complaint",
    text: str = "QC7 刹车异响，4S店三次都没修好，已投诉12315，要求退车",
    author: str = "车主小王",
    source: str = "weibo-rss",
    url: str | None = None,
    created_at: datetime | None = T0,
    deadline: datetime | None = T0 + timedelta(hours=24),
) -> int:
    """Store a post with one classification and, unless ``level`` is None, a
    grading; return the post id."""
    item = Item(
        source=source,
        platform="weibo",
        external_id=external_id,
        text=text,
        collected_at=(created_at or T0) + timedelta(minutes=5),
        created_at=created_at,
        url=url or f"https://weibo.example/{external_id}",
        author=Author(name=author, followers=1200, verified="personal"),
        engagement=Engagement(likes=15, reposts=7, comments=3),
    )
    [post_id] = store.add_items([item])
    assert post_id is not None
    store.save_assessments([post_id], [make_assessment(kind, level, deadline)])
    return post_id


def regrade(store: Store, post_id: int, level: str, deadline: datetime | None) -> None:
    """Add a newer grading to the post's latest classification."""
    store.save_regradings([(post_id, make_grading(level, deadline))], done=[post_id])


def add_post_alert(store: Store, post_id: int, level: str = "critical") -> int:
    """Store an open alert about a post, with one mail delivery; return its id."""
    key = f"post-{post_id}"
    message = NewMessage(
        reason="new",
        message_id=f"<{key}@fenghuo.localhost>",
        subject=f"【危机】{key}",
        message=f"Message-ID: <{key}@fenghuo.localhost>\r\nSubject: {key}\r\n\r\nbody\r\n",
        deliveries=(NewDelivery("eml", "pr@qicheng.example"),),
    )
    alert = NewAlert(post_id, key, level, "complaint", message.subject, message)
    [alert_id] = store.add_alerts([alert], now=T0)
    assert alert_id is not None
    return alert_id
