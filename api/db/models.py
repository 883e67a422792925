"""SQLAlchemy 2 models. The same Alembic migrations create them on SQLite (embedded) and MySQL (utf8mb4).

Times are stored as naive UTC and read back as aware UTC (``UtcDateTime``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    false,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
MYSQL_TABLE = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}
# LONGTEXT on MySQL for free text (TEXT caps at 64 KB); plain TEXT elsewhere.
LongText = Text().with_variant(mysql.LONGTEXT(), "mysql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Visitor(Base):
    __tablename__ = "visitors"
    __table_args__ = (MYSQL_TABLE,)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    external_user_id: Mapped[str | None] = mapped_column(String(128), index=True)
    # The shop's signature vouched for external_user_id (api.identity). Rows written before the check existed hold
    # whatever id the widget claimed: false, so the console shows them as anonymous visitors.
    verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ChatSession(Base):
    __tablename__ = "chat_sessions"
    __table_args__ = (Index("ix_chat_sessions_started_at", "started_at"), MYSQL_TABLE)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Indexed (0004): the console lists one customer's sessions through their visitor rows. MySQL had an index here
    # already (InnoDB makes one for the foreign key); SQLite had none and read every session.
    visitor_id: Mapped[str | None] = mapped_column(ForeignKey("visitors.id", ondelete="SET NULL"), index=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    rating: Mapped[int | None] = mapped_column(Integer)
    rating_comment: Mapped[str | None] = mapped_column(Text)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_session_created", "session_id", "created_at"),
        Index("ix_messages_created_at", "created_at"),
        MYSQL_TABLE,
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # idempotency key from the API
    session_id: Mapped[str] = mapped_column(ForeignKey("chat_sessions.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(8))  # user | bot | agent
    text: Mapped[str] = mapped_column(LongText)  # PII-masked
    intent: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None] = mapped_column(Float)
    reply_type: Mapped[str | None] = mapped_column(String(16))
    faq_id: Mapped[str | None] = mapped_column(String(64))
    candidates: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    suggestions: Mapped[list[str] | None] = mapped_column(JSON)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class FaqCategory(Base):
    __tablename__ = "faq_categories"
    __table_args__ = (MYSQL_TABLE,)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)


class Faq(Base):
    __tablename__ = "faqs"
    __table_args__ = (MYSQL_TABLE,)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    question: Mapped[str] = mapped_column(String(512))
    answer: Mapped[str] = mapped_column(LongText)
    category_id: Mapped[int | None] = mapped_column(
        ForeignKey("faq_categories.id", ondelete="SET NULL"), index=True
    )
    intent: Mapped[str | None] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)  # bumped on every edit
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    category: Mapped[FaqCategory | None] = relationship(lazy="joined")
    similar: Mapped[list[FaqSimilar]] = relationship(
        back_populates="faq", cascade="all, delete-orphan", lazy="selectin", order_by="FaqSimilar.id"
    )


class FaqSimilar(Base):
    __tablename__ = "faq_similar"
    __table_args__ = (MYSQL_TABLE,)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    faq_id: Mapped[str] = mapped_column(ForeignKey("faqs.id", ondelete="CASCADE"), index=True)
    question: Mapped[str] = mapped_column(String(512))
    faq: Mapped[Faq] = relationship(back_populates="similar")


class ResponseTemplate(Base):
    __tablename__ = "response_templates"
    __table_args__ = (MYSQL_TABLE,)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # "intent:greeting" | "dialog:clarify"
    variants: Mapped[list[str]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class Feedback(Base):
    __tablename__ = "feedback"
    __table_args__ = (MYSQL_TABLE,)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(64), index=True)
    message_id: Mapped[str] = mapped_column(String(40), index=True)
    rating: Mapped[str] = mapped_column(String(8))  # "up" | "down" | "1".."5"
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)


class HandoffTicket(Base):
    __tablename__ = "handoff_tickets"
    __table_args__ = (Index("ix_handoff_tickets_status", "status", "created_at"), MYSQL_TABLE)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default="waiting")  # waiting | active | closed
    reason: Mapped[str | None] = mapped_column(String(32))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("admin_users.id", ondelete="SET NULL"))
    agent_username: Mapped[str | None] = mapped_column(String(64))
    last_message: Mapped[str | None] = mapped_column(Text)
    # The shop's verified id of the visitor when the ticket was opened (Session.verified_user_id), None: anonymous.
    # On the ticket itself: the agents' queue shows it at once, before the writer lands the visitor's row.
    customer_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    taken_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AdminUser(Base):
    __tablename__ = "admin_users"
    __table_args__ = (MYSQL_TABLE,)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))  # admin | agent
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class AuditLog(Base):
    __tablename__ = "audit_log"
    __table_args__ = (MYSQL_TABLE,)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)


class DemoOrder(Base):
    __tablename__ = "demo_orders"
    __table_args__ = (MYSQL_TABLE,)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(64))
    carrier: Mapped[str | None] = mapped_column(String(64))
    tracking_no: Mapped[str | None] = mapped_column(String(64))
    items: Mapped[list[Any]] = mapped_column(JSON)
    refund_deadline: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)


# ---- Admin console tables (owner: admin API engineer; migration 0002_admin) -------------------------------
class KbState(Base):
    """One row (id=1): ``revision`` is bumped in the same transaction as every FAQ change."""

    __tablename__ = "kb_state"
    __table_args__ = (MYSQL_TABLE,)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class KbIndexBuild(Base):
    """Index versions published from the console and the KB revision each was built from."""

    __tablename__ = "kb_index_builds"
    __table_args__ = (MYSQL_TABLE,)
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    kb_revision: Mapped[int] = mapped_column(Integer)
    faq_count: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    index_type: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class UnansweredCluster(Base):
    """A mined cluster of unanswered questions, kept so the console can accept it by id."""

    __tablename__ = "unanswered_clusters"
    __table_args__ = (Index("ix_unanswered_clusters_status", "status", "created_at"), MYSQL_TABLE)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # hash of the member message ids
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | accepted
    representative: Mapped[str] = mapped_column(String(512))
    questions: Mapped[list[str]] = mapped_column(JSON)
    message_ids: Mapped[list[str]] = mapped_column(JSON)
    suggested_faq_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    accepted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    accepted_by: Mapped[str | None] = mapped_column(String(64))
    faq_id: Mapped[str | None] = mapped_column(String(64))
