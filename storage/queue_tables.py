"""The tables of the review queue: one row per queued post, and its labels.

They are kept by the store in the same transaction as the gradings and
classifications they come from (see :mod:`storage.queue_index`). They share
the metadata of :mod:`storage.tables`, which imports this module.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .tables import Base
from .web_tables import post_reviews

# Bytes of a queue sort key: level rank (1), deadline (8), inverted risk (1),
# inverted post time (8), inverted post id (8).
SORT_KEY_LENGTH = 26


class QueueEntry(Base):
    """A post in the review queue, with the columns its filters and order read.

    A post is here when its latest grading belongs to its latest
    classification and is medium or critical, or marks a grievance as high
    risk. ``sort_key`` encodes the queue order (see
    :func:`storage.queue.sort_key`), so that one index serves the order and a
    page starts with ``sort_key > last key shown``. ``risk`` is the sum of the
    four factor scores (0 to 12). ``posted_at`` is the post's time, or its
    collection time when the source gave none.
    """

    __tablename__ = "review_queue"
    __table_args__ = (
        Index(None, "sort_key", unique=True),
        Index(None, "level", "sort_key"),
        Index(None, "kind", "sort_key"),
        Index(None, "source", "sort_key"),
        Index(None, "problem_id", "sort_key"),
        Index(None, "posted_at"),
    )

    post_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("posts.id"), primary_key=True, autoincrement=False
    )
    sort_key: Mapped[bytes] = mapped_column(LargeBinary(SORT_KEY_LENGTH))
    grading_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("gradings.id"))
    level: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(64))
    problem_id: Mapped[int | None] = mapped_column(BigInteger)
    risk: Mapped[int] = mapped_column(Integer)
    high_risk: Mapped[bool]
    posted_at: Mapped[datetime]
    deadline: Mapped[datetime | None]


class QueueLabel(Base):
    """A brand or model named by a queued post, for the queue's filters.

    ``facet`` is "brand" for the monitored brand and each competitor, and
    "model" for each car model, the brand's or a competitor's. ``sort_key``
    repeats the post's queue key, so that a filter on a label reads its posts
    in queue order from this table's primary key.
    """

    __tablename__ = "review_queue_labels"
    __table_args__ = (Index(None, "post_id"),)

    facet: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(Text, primary_key=True)
    sort_key: Mapped[bytes] = mapped_column(
        LargeBinary(SORT_KEY_LENGTH), primary_key=True
    )
    post_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("posts.id"))


review_queue = QueueEntry.__table__
review_queue_labels = QueueLabel.__table__

# The queue's assignee filter counts a user's reviews through this index.
Index("ix_post_reviews_assignee", post_reviews.c.assignee)
