"""Note when the full text of a post that a listing cut short was looked up.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 00:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("posts", sa.Column("text_checked_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("posts", "text_checked_at")
