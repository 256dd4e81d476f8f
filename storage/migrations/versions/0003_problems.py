"""Add problems, their incidents and the problem and incident of each post.

NOTE: posts assessed before this revision get no problem, because the job
groups posts only as it assesses them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 20:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The grouping chooses the ids of problems and incidents itself. On SQLite an
# INTEGER PRIMARY KEY column is the rowid, so the rows are kept in id order
# without a second index.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Only new tables: SQLite's batch mode would copy and drop tables that
    # others reference, and existing posts need no change.
    _create_problems()
    _create_incidents()
    _create_problem_posts()
    _create_incident_authors()


def downgrade() -> None:
    for table in ("incident_authors", "problem_posts", "incidents", "problems"):
        op.drop_table(table)


def _create_problems() -> None:
    op.create_table(
        "problems",
        sa.Column("id", ID, autoincrement=False, nullable=False),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("term", sa.Text(), nullable=True),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("root_cause", sa.String(16), nullable=True),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("posts", sa.BigInteger(), nullable=False),
        sa.Column("reports", sa.BigInteger(), nullable=False),
        sa.Column("incidents", sa.BigInteger(), nullable=False),
        sa.Column("reporters", sa.BigInteger(), nullable=False),
        sa.Column("first_seen", TIME, nullable=False),
        sa.Column("last_seen", TIME, nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.Column("state_version", sa.Integer(), nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_problems"),
    )


def _create_incidents() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", ID, autoincrement=False, nullable=False),
        sa.Column("problem_id", sa.BigInteger(), nullable=False),
        sa.Column("posts", sa.BigInteger(), nullable=False),
        sa.Column("reports", sa.BigInteger(), nullable=False),
        sa.Column("authors", sa.BigInteger(), nullable=False),
        sa.Column("reporters", sa.BigInteger(), nullable=False),
        sa.Column("first_seen", TIME, nullable=False),
        sa.Column("last_seen", TIME, nullable=False),
        sa.Column("signatures", sa.JSON(), nullable=False),
        sa.Column("state_version", sa.Integer(), nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["problem_id"], ["problems.id"], name="fk_incidents_problem_id_problems"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
    )
    op.create_index("ix_incidents_problem_id", "incidents", ["problem_id"])


def _create_problem_posts() -> None:
    op.create_table(
        "problem_posts",
        sa.Column("post_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("problem_id", sa.BigInteger(), nullable=False),
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.Column("report", sa.Boolean(), nullable=False),
        sa.Column("matched_by", sa.String(16), nullable=False),
        sa.Column("posted_at", TIME, nullable=False),
        sa.Column("assigned_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name="fk_problem_posts_post_id_posts"
        ),
        sa.ForeignKeyConstraint(
            ["problem_id"],
            ["problems.id"],
            name="fk_problem_posts_problem_id_problems",
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name="fk_problem_posts_incident_id_incidents",
        ),
        sa.PrimaryKeyConstraint("post_id", name="pk_problem_posts"),
    )
    op.create_index("ix_problem_posts_problem_id", "problem_posts", ["problem_id"])
    op.create_index("ix_problem_posts_incident_id", "problem_posts", ["incident_id"])
    op.create_index(
        "ix_problem_posts_posted_at_problem_id",
        "problem_posts",
        ["posted_at", "problem_id"],
    )


def _create_incident_authors() -> None:
    op.create_table(
        "incident_authors",
        sa.Column("incident_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("reporter", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name="fk_incident_authors_incident_id_incidents",
        ),
        sa.PrimaryKeyConstraint("incident_id", "author", name="pk_incident_authors"),
    )
