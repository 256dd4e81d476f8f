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
    # Rows written before this revision recorded no competitor models.
    with op.batch_alter_table("classifications") as batch:
        batch.add_column(
            sa.Column(
                "competitor_models",
                sa.JSON(),
                nullable=False,
                server_default=sa.text("'[]'"),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("classifications") as batch:
        batch.drop_column("competitor_models")
