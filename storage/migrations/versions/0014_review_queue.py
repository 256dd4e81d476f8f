"""Keep the review queue in its own table and index posts for full-text search.

The queue page sorted every queued grading on each request, which does not
scale to a million posts. The queue's assignee filter reads reviews by
assignee, so that column gets an index. The queue table holds one row per queued post with
a sort key and the filter columns, and the labels table the brands and models
named. The search index holds each post's terms (character bigrams of Chinese
text and Latin words), in an FTS5 table on SQLite and a GIN-indexed tsvector
column on PostgreSQL. Existing posts are indexed here.

The backfill calls the store's own functions (storage.queue_index and
storage.search), so it fills the tables as the store of this revision does.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage import search
from storage.queue_index import refresh_queue

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = sa.DateTime(timezone=True)
KEY = sa.LargeBinary(26)
BACKFILL_CHUNK = 1000


def upgrade() -> None:
    _create_queue_tables()
    connection = op.get_bind()
    search.create_search_table(connection)
    _fill_queue(connection)
    _fill_search(connection)


def _create_queue_tables() -> None:
    op.create_table(
        "review_queue",
        sa.Column("post_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("sort_key", KEY, nullable=False),
        sa.Column("grading_id", sa.BigInteger(), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("problem_id", sa.BigInteger(), nullable=True),
        sa.Column("risk", sa.Integer(), nullable=False),
        sa.Column("high_risk", sa.Boolean(), nullable=False),
        sa.Column("posted_at", TIME, nullable=False),
        sa.Column("deadline", TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["grading_id"], ["gradings.id"], name="fk_review_queue_grading_id_gradings"
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name="fk_review_queue_post_id_posts"
        ),
        sa.PrimaryKeyConstraint("post_id", name="pk_review_queue"),
    )
    op.create_index(
        "ix_review_queue_sort_key", "review_queue", ["sort_key"], unique=True
    )
    for column in ("level", "kind", "source", "problem_id"):
        op.create_index(
            f"ix_review_queue_{column}_sort_key", "review_queue", [column, "sort_key"]
        )
    op.create_index("ix_review_queue_posted_at", "review_queue", ["posted_at"])
    op.create_table(
        "review_queue_labels",
        sa.Column("facet", sa.String(16), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("sort_key", KEY, nullable=False),
        sa.Column("post_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name="fk_review_queue_labels_post_id_posts"
        ),
        sa.PrimaryKeyConstraint(
            "facet", "value", "sort_key", name="pk_review_queue_labels"
        ),
    )
    op.create_index(
        "ix_review_queue_labels_post_id", "review_queue_labels", ["post_id"]
    )
    op.create_index("ix_post_reviews_assignee", "post_reviews", ["assignee"])


def _fill_queue(connection: sa.Connection) -> None:
    gradings = sa.table("gradings", sa.column("post_id", sa.BigInteger()))
    last = 0
    while True:
        post_ids = list(
            connection.execute(
                sa.select(gradings.c.post_id)
                .where(gradings.c.post_id > last)
                .group_by(gradings.c.post_id)
                .order_by(gradings.c.post_id)
                .limit(BACKFILL_CHUNK)
            ).scalars()
        )
        if not post_ids:
            return
        refresh_queue(connection, post_ids)
        last = post_ids[-1]


def _fill_search(connection: sa.Connection) -> None:
    posts = sa.table(
        "posts",
        sa.column("id", sa.BigInteger()),
        sa.column("title", sa.Text()),
        sa.column("text", sa.Text()),
    )
    last = 0
    while True:
        rows = connection.execute(
            sa.select(posts.c.id, posts.c.title, posts.c.text)
            .where(posts.c.id > last)
            .order_by(posts.c.id)
            .limit(BACKFILL_CHUNK)
        ).all()
        if not rows:
            return
        search.index_posts(connection, [tuple(row) for row in rows])
        last = rows[-1].id


def downgrade() -> None:
    op.execute(f"DROP TABLE {search.SEARCH_TABLE}")
    op.drop_index("ix_post_reviews_assignee", table_name="post_reviews")
    op.drop_index("ix_review_queue_labels_post_id", table_name="review_queue_labels")
    op.drop_table("review_queue_labels")
    op.drop_index("ix_review_queue_posted_at", table_name="review_queue")
    for column in ("problem_id", "source", "kind", "level"):
        op.drop_index(f"ix_review_queue_{column}_sort_key", table_name="review_queue")
    op.drop_index("ix_review_queue_sort_key", table_name="review_queue")
    op.drop_table("review_queue")
