"""visitor identity for the agent console: visitors.verified, handoff_tickets.customer_id

Revision ID: 0003_identity
Revises: 0002_admin
Create Date: 2026-12-06 12:00:00

Additive only. Agents must see whether the shop vouched for the visitor they talk to (api.identity):
``visitors.verified`` says ``external_user_id`` was verified. Existing rows get false: before the signature
check, ``external_user_id`` held whatever id the widget sent, so they are shown as anonymous visitors, never as
a customer nobody checked. ``handoff_tickets.customer_id``: the verified id when the ticket was opened (existing
tickets: NULL, anonymous).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_identity"
down_revision: str | None = "0002_admin"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("visitors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("verified", sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table("handoff_tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("customer_id", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("handoff_tickets", schema=None) as batch_op:
        batch_op.drop_column("customer_id")
    with op.batch_alter_table("visitors", schema=None) as batch_op:
        batch_op.drop_column("verified")
