"""Keep an incident's alert state and the review state of posts; index gradings.

An alert now covers one incident, and each later post of the incident is
compared with what the alert's last message said: its level and kind (already
stored), the incident's reach and number of owners, and whether a viral
forecast was sent. Analysts assign and close posts on the review page, and
the digests read gradings by time.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Plain ADD COLUMN, which SQLite supports: a batch copy of the alerts
    # table would break the foreign keys of its messages.
    op.add_column("alerts", sa.Column("incident_id", sa.BigInteger(), nullable=True))
    op.add_column("alerts", sa.Column("root_cause", sa.String(16), nullable=True))
    op.add_column(
        "alerts",
        sa.Column(
            "reach", sa.BigInteger(), server_default=sa.text("0"), nullable=False
        ),
    )
    op.add_column(
        "alerts",
        sa.Column("owners", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column(
        "alerts",
        sa.Column(
            "viral", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
    )
    op.add_column("alerts", sa.Column("last_message_at", TIME, nullable=True))
    op.create_index("ix_gradings_created_at", "gradings", ["created_at"])
    _create_post_reviews()


def _create_post_reviews() -> None:
    op.create_table(
        "post_reviews",
        sa.Column("post_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("assignee", sa.String(64), nullable=True),
        sa.Column("resolution", sa.String(16), nullable=True),
        sa.Column("satisfied", sa.Boolean(), nullable=True),
        sa.Column("closed_at", TIME, nullable=True),
        sa.Column("closed_by", sa.String(64), nullable=True),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'assigned', 'closed')", name="ck_post_reviews_status"
        ),
        sa.CheckConstraint(
            "resolution IS NULL OR resolution IN "
            "('handled', 'no_action', 'false_alarm', 'duplicate')",
            name="ck_post_reviews_resolution",
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name="fk_post_reviews_post_id_posts"
        ),
        sa.PrimaryKeyConstraint("post_id", name="pk_post_reviews"),
    )
    op.create_index(
        "ix_post_reviews_status_assignee", "post_reviews", ["status", "assignee"]
    )


def downgrade() -> None:
    op.drop_index("ix_post_reviews_status_assignee", table_name="post_reviews")
    op.drop_table("post_reviews")
    op.drop_index("ix_gradings_created_at", table_name="gradings")
    for column in (
        "last_message_at",
        "viral",
        "owners",
        "reach",
        "root_cause",
        "incident_id",
    ):
        op.drop_column("alerts", column)
