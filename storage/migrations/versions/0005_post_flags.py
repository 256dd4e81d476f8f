"""Record posts whose time was estimated and when a post was seen removed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 22:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN: SQLite's batch mode would copy and drop the posts
    # table, which other tables reference. Earlier posts had readable times as
    # far as the store knows, and none was seen removed.
    op.add_column(
        "posts",
        sa.Column(
            "time_estimated",
            sa.Boolean(),
            nullable=False,
            server_default=sa.text("false"),
        ),
    )
    op.add_column(
        "posts", sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("posts", "removed_at")
    op.drop_column("posts", "time_estimated")
