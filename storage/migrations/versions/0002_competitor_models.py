"""Keep apart the competitors' models that a post names.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 19:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN: SQLite's batch mode would copy and drop the table,
    # which other tables reference. Earlier rows recorded no competitor models.
    op.add_column(
        "classifications",
        sa.Column(
            "competitor_models",
            sa.JSON(),
            nullable=False,
            server_default=sa.text("'[]'"),
        ),
    )


def downgrade() -> None:
    op.drop_column("classifications", "competitor_models")
