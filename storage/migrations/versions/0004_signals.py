"""Add the early-warning signals that the alert stage reads.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "signals",
        sa.Column("id", ID, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("subject", sa.String(16), nullable=False),
        sa.Column("post_id", sa.BigInteger(), nullable=True),
        sa.Column("problem_id", sa.BigInteger(), nullable=True),
        sa.Column("level", sa.String(16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("occurred_at", TIME, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.CheckConstraint(
            "kind IN ('critical', 'viral', 'escalation', 'burst')",
            name="ck_signals_kind",
        ),
        sa.CheckConstraint(
            "subject IN ('post', 'problem', 'brand')", name="ck_signals_subject"
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name="fk_signals_post_id_posts"
        ),
        sa.ForeignKeyConstraint(
            ["problem_id"], ["problems.id"], name="fk_signals_problem_id_problems"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_signals"),
        sa.UniqueConstraint("key", name="uq_signals_key"),
    )
    op.create_index("ix_signals_created_at", "signals", ["created_at"])
    op.create_index("ix_signals_post_id", "signals", ["post_id"])
    op.create_index(
        "ix_signals_subject_problem_id_occurred_at",
        "signals",
        ["subject", "problem_id", "occurred_at"],
    )


def downgrade() -> None:
    op.drop_table("signals")
