"""Record scheduled runs of a source that did not happen.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 22:25:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "source_skips",
        sa.Column("id", ID, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("skipped_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_source_skips"),
    )
    op.create_index(
        "ix_source_skips_source_skipped_at", "source_skips", ["source", "skipped_at"]
    )


def downgrade() -> None:
    op.drop_table("source_skips")
