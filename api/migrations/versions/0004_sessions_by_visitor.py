"""an index on chat_sessions.visitor_id: a customer's conversations in the console

Revision ID: 0004_sessions_by_visitor
Revises: 0003_identity
Create Date: 2026-12-06 05:00:00

Additive only. The console's conversation list filters by customer (``customer_id``: the verified
``visitors.external_user_id``, already indexed) and reaches the sessions through ``chat_sessions.visitor_id``.
SQLite had no index there, so one customer's lookup read every session; MySQL/MariaDB had one, made by InnoDB for
the foreign key (named after it), which it drops by itself once this index can back the foreign key instead.

The downgrade gives MySQL that foreign key index back before dropping this one: InnoDB refuses to drop the only
index of a foreign key (error 1553), and the schema is then exactly 0003's again. Upgraded once more, that index is
an ordinary one InnoDB keeps: dropped here, else every session write maintained two equal indexes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_sessions_by_visitor"
down_revision: str | None = "0003_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_chat_sessions_visitor_id"
FK_INDEX = "fk_chat_sessions_visitor_id_visitors"  # the index InnoDB made for the foreign key in 0001


def _mysql_indexes() -> set[str] | None:
    """Names of chat_sessions' indexes on MySQL/MariaDB; None elsewhere."""
    bind = op.get_bind()
    if bind.dialect.name != "mysql":
        return None
    return {str(i["name"]) for i in sa.inspect(bind).get_indexes("chat_sessions")}


def upgrade() -> None:
    op.create_index(INDEX, "chat_sessions", ["visitor_id"], unique=False)
    indexes = _mysql_indexes()
    if indexes is not None and FK_INDEX in indexes:  # one this migration's downgrade made
        op.drop_index(FK_INDEX, table_name="chat_sessions")


def downgrade() -> None:
    indexes = _mysql_indexes()
    if indexes is not None and FK_INDEX not in indexes:
        op.create_index(FK_INDEX, "chat_sessions", ["visitor_id"], unique=False)
    op.drop_index(INDEX, table_name="chat_sessions")
