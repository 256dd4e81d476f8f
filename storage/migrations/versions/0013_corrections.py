"""Keep analysts' corrections of kinds and levels, and their notes on posts.

A correction is a label with who gave it and when, read back by
``python pipeline.py train``. Confirming a value stores a correction that
keeps it.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "corrections",
        sa.Column("id", ID, nullable=False),
        sa.Column("post_id", sa.BigInteger(), nullable=False),
        sa.Column("field", sa.String(16), nullable=False),
        sa.Column("old_value", sa.String(16), nullable=True),
        sa.Column("new_value", sa.String(16), nullable=False),
        sa.Column("corrected_by", sa.String(64), nullable=False),
        sa.Column("corrected_at", TIME, nullable=False),
        sa.CheckConstraint(
            "(field = 'kind' AND new_value IN ('irrelevant', 'neutral', 'praise', "
            "'grievance', 'complaint')) OR (field = 'level' AND new_value IN "
            "('normal', 'medium', 'critical'))",
            name="ck_corrections_new_value",
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name="fk_corrections_post_id_posts"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_corrections"),
    )
    op.create_index("ix_corrections_post_id_field", "corrections", ["post_id", "field"])
    op.create_table(
        "post_notes",
        sa.Column("id", ID, nullable=False),
        sa.Column("post_id", sa.BigInteger(), nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name="fk_post_notes_post_id_posts"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_post_notes"),
    )
    op.create_index("ix_post_notes_post_id", "post_notes", ["post_id"])


def downgrade() -> None:
    op.drop_index("ix_post_notes_post_id", table_name="post_notes")
    op.drop_table("post_notes")
    op.drop_index("ix_corrections_post_id_field", table_name="corrections")
    op.drop_table("corrections")
