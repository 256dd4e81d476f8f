"""Index open alerts by deadline, for the escalation check every minute.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 07:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_alerts_status_deadline", "alerts", ["status", "deadline"])


def downgrade() -> None:
    op.drop_index("ix_alerts_status_deadline", table_name="alerts")
