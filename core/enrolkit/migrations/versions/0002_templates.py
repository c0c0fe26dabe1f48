"""user-written templates: rendered by the mail task, previews rate-limited

A welcome message is queued as its template and variables and rendered by the delivery task,
so no user-written template runs inside the transaction of the enrolment it announces; and
``rate_limits`` counts template previews per user.

Revision ID: 0002_templates
Revises: 0001
Create Date: 2026-12-03 12:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_templates"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("template", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("variables", sa.Text(), nullable=True))
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_limits")),
    )


def downgrade() -> None:
    op.drop_table("rate_limits")
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.drop_column("variables")
        batch_op.drop_column("template")
