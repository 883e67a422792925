"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24 12:30:34.195392
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

import api.db.models

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "admin_users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", api.db.models.UtcDateTime(), nullable=True),
        sa.Column("created_at", api.db.models.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_users")),
        sa.UniqueConstraint("username", name=op.f("uq_admin_users_username")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", api.db.models.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
        mysql_engine="InnoDB",
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_created_at"), ["created_at"], unique=False)

    op.create_table(
        "demo_orders",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=64), nullable=False),
        sa.Column("carrier", sa.String(length=64), nullable=True),
        sa.Column("tracking_no", sa.String(length=64), nullable=True),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("refund_deadline", sa.String(length=32), nullable=True),
        sa.Column("updated_at", api.db.models.UtcDateTime(), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_demo_orders")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "faq_categories",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_faq_categories")),
        sa.UniqueConstraint("name", name=op.f("uq_faq_categories_name")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("rating", sa.String(length=8), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", api.db.models.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
        mysql_engine="InnoDB",
    )
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feedback_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_feedback_message_id"), ["message_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_feedback_session_id"), ["session_id"], unique=False)

    op.create_table(
        "response_templates",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("variants", sa.JSON(), nullable=False),
        sa.Column("updated_at", api.db.models.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_response_templates")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "visitors",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("external_user_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", api.db.models.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visitors")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
        mysql_engine="InnoDB",
    )
    with op.batch_alter_table("visitors", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_visitors_external_user_id"), ["external_user_id"], unique=False)

    op.create_table(
        "chat_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("visitor_id", sa.String(length=64), nullable=True),
        sa.Column("started_at", api.db.models.UtcDateTime(), nullable=False),
        sa.Column("last_at", api.db.models.UtcDateTime(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("rating_comment", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["visitor_id"],
            ["visitors.id"],
            name=op.f("fk_chat_sessions_visitor_id_visitors"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_sessions")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
        mysql_engine="InnoDB",
    )
    with op.batch_alter_table("chat_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_chat_sessions_started_at", ["started_at"], unique=False)

    op.create_table(
        "faqs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("question", sa.String(length=512), nullable=False),
        sa.Column("answer", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=True),
        sa.Column("intent", sa.String(length=64), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", api.db.models.UtcDateTime(), nullable=False),
        sa.Column("updated_at", api.db.models.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["faq_categories.id"],
            name=op.f("fk_faqs_category_id_faq_categories"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_faqs")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
        mysql_engine="InnoDB",
    )
    with op.batch_alter_table("faqs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_faqs_category_id"), ["category_id"], unique=False)

    op.create_table(
        "handoff_tickets",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("agent_username", sa.String(length=64), nullable=True),
        sa.Column("last_message", sa.Text(), nullable=True),
        sa.Column("created_at", api.db.models.UtcDateTime(), nullable=False),
        sa.Column("taken_at", api.db.models.UtcDateTime(), nullable=True),
        sa.Column("closed_at", api.db.models.UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["admin_users.id"],
            name=op.f("fk_handoff_tickets_agent_id_admin_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_tickets")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
        mysql_engine="InnoDB",
    )
    with op.batch_alter_table("handoff_tickets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_handoff_tickets_session_id"), ["session_id"], unique=False)
        batch_op.create_index("ix_handoff_tickets_status", ["status", "created_at"], unique=False)

    op.create_table(
        "faq_similar",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("faq_id", sa.String(length=64), nullable=False),
        sa.Column("question", sa.String(length=512), nullable=False),
        sa.ForeignKeyConstraint(
            ["faq_id"], ["faqs.id"], name=op.f("fk_faq_similar_faq_id_faqs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_faq_similar")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
        mysql_engine="InnoDB",
    )
    with op.batch_alter_table("faq_similar", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_faq_similar_faq_id"), ["faq_id"], unique=False)

    op.create_table(
        "messages",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("text", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=False),
        sa.Column("intent", sa.String(length=64), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("reply_type", sa.String(length=16), nullable=True),
        sa.Column("faq_id", sa.String(length=64), nullable=True),
        sa.Column("candidates", sa.JSON(), nullable=True),
        sa.Column("suggestions", sa.JSON(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("created_at", api.db.models.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["chat_sessions.id"],
            name=op.f("fk_messages_session_id_chat_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
        mysql_engine="InnoDB",
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_created_at", ["created_at"], unique=False)
        batch_op.create_index("ix_messages_session_created", ["session_id", "created_at"], unique=False)


def downgrade() -> None:
    # Dropping a table drops its indexes; children before parents.
    op.drop_table("messages")
    op.drop_table("faq_similar")
    op.drop_table("handoff_tickets")
    op.drop_table("faqs")
    op.drop_table("chat_sessions")
    op.drop_table("visitors")
    op.drop_table("response_templates")
    op.drop_table("feedback")
    op.drop_table("faq_categories")
    op.drop_table("demo_orders")
    op.drop_table("audit_log")
    op.drop_table("admin_users")
