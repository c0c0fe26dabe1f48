"""session version on users: logout, a new password and suspension end sessions server-side

(The failed-login limit counts in ``rate_limits``, made by 0002_templates; this revision no
longer makes a table of its own for it.)

Revision ID: 0003_sessions
Revises: 0002_templates
Create Date: 2026-12-03 12:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_sessions"
down_revision = "0002_templates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("session_version", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_version")
