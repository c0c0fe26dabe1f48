"""users.timezone (each user's own time zone) and profile_fields.description

Revision ID: 0006_user_timezone
Revises: c16a7d0e1f2b
Create Date: 2026-12-03 18:50:00

A user reads and types dates in their own IANA time zone; '' (every existing user) means the
site's, as Moodle's "server time zone" (``99``) does. A custom profile field gets the description
Moodle's form shows under it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_user_timezone"
down_revision = "c16a7d0e1f2b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("timezone", sa.String(64), server_default="", nullable=False))
    with op.batch_alter_table("profile_fields") as batch:
        batch.add_column(sa.Column("description", sa.Text(), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("profile_fields") as batch:
        batch.drop_column("description")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("timezone")
