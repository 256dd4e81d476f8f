"""Store one row per platform and native post id, across sources.

Adds ``posts.identity_key``, unique. A row whose external id is a native id,
``<platform>:<id>`` as the feed collector writes it or any id on the platform
reddit, is keyed ``native:<platform>:<id>``. Every other row keeps its
source's scope, ``source:<source>:<external_id>``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 09:00:00
"""

import logging
import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

logger = logging.getLogger(__name__)

# The platform names that storage.rows.post_key scopes native ids by, copied
# so that this migration keeps giving the same keys if that module changes.
PLATFORM_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,39}")
UPDATE_CHUNK = 500

posts = sa.table(
    "posts",
    sa.column("id", sa.BigInteger),
    sa.column("identity_key", sa.String),
    sa.column("source", sa.String),
    sa.column("platform", sa.String),
    sa.column("external_id", sa.String),
)


def upgrade() -> None:
    # Plain ADD COLUMN, as in 0005: posts is referenced by other tables. The
    # empty default lets the existing rows take the column until their keys
    # are set below.
    op.add_column(
        "posts",
        sa.Column(
            "identity_key", sa.String(600), nullable=False, server_default=sa.text("''")
        ),
    )
    connection = op.get_bind()
    source_key = sa.literal("source:", sa.String) + posts.c.source + ":"
    connection.execute(
        posts.update().values(identity_key=source_key + posts.c.external_id)
    )
    _set_native_keys(connection)
    op.create_index("ix_posts_identity_key", "posts", ["identity_key"], unique=True)
    if connection.dialect.name != "sqlite":
        # SQLite cannot drop a column default without copying the table. The
        # store writes a key in every insert, so it never relies on the default.
        op.alter_column("posts", "identity_key", server_default=None)


def _set_native_keys(connection: sa.Connection) -> None:
    """Key the rows that show a native id by platform, the oldest row first.

    A post that two sources stored before this revision has two rows. The
    oldest gets the platform key and the others keep their source's key, so
    that nothing that refers to them (assessments, problems, alerts) moves.
    """
    prefix = posts.c.platform + ":"
    candidates = (
        sa.select(posts.c.id, posts.c.platform, posts.c.external_id)
        .where(
            sa.or_(
                posts.c.platform == "reddit",
                sa.func.substr(posts.c.external_id, 1, sa.func.length(prefix))
                == prefix,
            )
        )
        .order_by(posts.c.id)
    )
    keyed: set[str] = set()
    updates: list[dict[str, object]] = []
    duplicates = 0
    for post_id, platform, external_id in connection.execute(candidates):
        name = platform.lower()
        if name == "unknown" or not PLATFORM_NAME.fullmatch(name):
            continue
        key = f"native:{name}:{external_id.removeprefix(platform + ':')}"
        if key in keyed:
            duplicates += 1
            continue
        keyed.add(key)
        updates.append({"b_id": post_id, "b_key": key})

    statement = (
        posts.update()
        .where(posts.c.id == sa.bindparam("b_id"))
        .values(identity_key=sa.bindparam("b_key"))
    )
    for start in range(0, len(updates), UPDATE_CHUNK):
        connection.execute(statement, updates[start : start + UPDATE_CHUNK])
    if duplicates:
        logger.warning("posts stored by several sources kept apart rows=%s", duplicates)


def downgrade() -> None:
    op.drop_index("ix_posts_identity_key", table_name="posts")
    op.drop_column("posts", "identity_key")
