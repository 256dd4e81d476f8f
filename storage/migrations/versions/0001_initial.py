"""Create the tables for posts, assessments, alerts and collector state.

Revision ID: 0001
Revises:
Create Date: 2026-12-04 16:26:38
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite gives automatic ids only to a column declared INTEGER PRIMARY KEY.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    _create_posts()
    _create_assessments()
    _create_alerts()
    _create_collector_state()


def downgrade() -> None:
    for table in (
        "alert_deliveries",
        "alerts",
        "gradings",
        "classifications",
        "engagement_snapshots",
        "posts",
        "source_runs",
        "collector_cursors",
    ):
        op.drop_table(table)


def _create_posts() -> None:
    op.create_table(
        "posts",
        sa.Column("id", ID, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("external_id", sa.String(512), nullable=False),
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("lang", sa.Text(), nullable=True),
        sa.Column("author_name", sa.Text(), nullable=True),
        sa.Column("author_id", sa.Text(), nullable=True),
        sa.Column("author_followers", sa.BigInteger(), nullable=True),
        sa.Column("author_verified", sa.Text(), nullable=False),
        sa.Column("author_role", sa.Text(), nullable=True),
        sa.Column("created_at", TIME, nullable=True),
        sa.Column("collected_at", TIME, nullable=False),
        sa.Column("last_seen_at", TIME, nullable=False),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_posts"),
        sa.UniqueConstraint(
            "source", "external_id", name="uq_posts_source_external_id"
        ),
    )
    op.create_index("ix_posts_created_at", "posts", ["created_at"])

    op.create_table(
        "engagement_snapshots",
        sa.Column("id", ID, nullable=False),
        sa.Column("post_id", sa.BigInteger(), nullable=False),
        sa.Column("taken_at", TIME, nullable=False),
        sa.Column("likes", sa.BigInteger(), nullable=False),
        sa.Column("reposts", sa.BigInteger(), nullable=False),
        sa.Column("comments", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name="fk_engagement_snapshots_post_id_posts"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_engagement_snapshots"),
    )
    op.create_index(
        "ix_engagement_snapshots_post_id_id",
        "engagement_snapshots",
        ["post_id", "id"],
    )


def _create_assessments() -> None:
    op.create_table(
        "classifications",
        sa.Column("id", ID, nullable=False),
        sa.Column("post_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("confidence", sa.Double(), nullable=False),
        sa.Column("cues", sa.JSON(), nullable=False),
        sa.Column("demands", sa.JSON(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("root_cause", sa.String(16), nullable=True),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("relevant", sa.Boolean(), nullable=False),
        sa.Column("brand", sa.Text(), nullable=True),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("competitors", sa.JSON(), nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name="fk_classifications_post_id_posts"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_classifications"),
    )
    op.create_index(
        "ix_classifications_post_id_id", "classifications", ["post_id", "id"]
    )

    op.create_table(
        "gradings",
        sa.Column("id", ID, nullable=False),
        sa.Column("post_id", sa.BigInteger(), nullable=False),
        sa.Column("classification_id", sa.BigInteger(), nullable=False),
        sa.Column("customer_loss", sa.Integer(), nullable=False),
        sa.Column("company_fault", sa.Integer(), nullable=False),
        sa.Column("public_impact", sa.Integer(), nullable=False),
        sa.Column("customer_identity", sa.Integer(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("strategy", sa.String(32), nullable=False),
        sa.Column("safety", sa.Boolean(), nullable=False),
        sa.Column("high_risk", sa.Boolean(), nullable=False),
        sa.Column("deadline", TIME, nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["classification_id"],
            ["classifications.id"],
            name="fk_gradings_classification_id_classifications",
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name="fk_gradings_post_id_posts"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_gradings"),
    )
    op.create_index("ix_gradings_classification_id", "gradings", ["classification_id"])
    op.create_index("ix_gradings_post_id_id", "gradings", ["post_id", "id"])


def _create_alerts() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", ID, nullable=False),
        sa.Column("post_id", sa.BigInteger(), nullable=True),
        sa.Column("dedup_key", sa.String(255), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("last_attempt_at", TIME, nullable=True),
        sa.Column("sent_at", TIME, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed')", name="ck_alerts_status"
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name="fk_alerts_post_id_posts"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
        sa.UniqueConstraint("dedup_key", name="uq_alerts_dedup_key"),
        sa.UniqueConstraint("message_id", name="uq_alerts_message_id"),
    )
    op.create_index("ix_alerts_status_created_at", "alerts", ["status", "created_at"])

    op.create_table(
        "alert_deliveries",
        sa.Column("id", ID, nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("attempted_at", TIME, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "status IN ('sent', 'failed')", name="ck_alert_deliveries_status"
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name="fk_alert_deliveries_alert_id_alerts"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_alert_deliveries"),
    )
    op.create_index("ix_alert_deliveries_alert_id", "alert_deliveries", ["alert_id"])


def _create_collector_state() -> None:
    op.create_table(
        "collector_cursors",
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("source", name="pk_collector_cursors"),
    )

    op.create_table(
        "source_runs",
        sa.Column("id", ID, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("finished_at", TIME, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("fetched", sa.Integer(), nullable=False),
        sa.Column("new", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("bad", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'ok', 'partial', 'failed')",
            name="ck_source_runs_status",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_source_runs"),
    )
    op.create_index("ix_source_runs_source_id", "source_runs", ["source", "id"])
