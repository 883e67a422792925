"""admin console: KB revision counter, published index builds, unanswered-question clusters

Revision ID: 0002_admin
Revises: 0001
Create Date: 2026-11-24 12:40:00

Additive only: three new tables, no change to existing ones.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import api.db.models

revision: str = "0002_admin"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MYSQL: dict[str, Any] = {
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
    "mysql_engine": "InnoDB",
}


def upgrade() -> None:
    kb_state = op.create_table(
        "kb_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", api.db.models.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_state")),
        **_MYSQL,
    )
    op.bulk_insert(kb_state, [{"id": 1, "revision": 0, "updated_at": api.db.models.utcnow()}])
    op.create_table(
        "kb_index_builds",
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("kb_revision", sa.Integer(), nullable=False),
        sa.Column("faq_count", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("index_type", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("created_at", api.db.models.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_kb_index_builds")),
        **_MYSQL,
    )
    op.create_table(
        "unanswered_clusters",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("representative", sa.String(length=512), nullable=False),
        sa.Column("questions", sa.JSON(), nullable=False),
        sa.Column("message_ids", sa.JSON(), nullable=False),
        sa.Column("suggested_faq_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", api.db.models.UtcDateTime(), nullable=False),
        sa.Column("accepted_at", api.db.models.UtcDateTime(), nullable=True),
        sa.Column("accepted_by", sa.String(length=64), nullable=True),
        sa.Column("faq_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unanswered_clusters")),
        **_MYSQL,
    )
    with op.batch_alter_table("unanswered_clusters", schema=None) as batch_op:
        batch_op.create_index("ix_unanswered_clusters_status", ["status", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("unanswered_clusters", schema=None) as batch_op:
        batch_op.drop_index("ix_unanswered_clusters_status")
    op.drop_table("unanswered_clusters")
    op.drop_table("kb_index_builds")
    op.drop_table("kb_state")
