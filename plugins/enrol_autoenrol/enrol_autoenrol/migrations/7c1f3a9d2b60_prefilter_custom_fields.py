"""auto-enrol prefilter: room for custom profile fields

The prefilter index now holds equalities on custom profile fields too, named
``profile_field_<shortname>`` (up to 114 characters), so its ``field`` column widens from 20 to
120 characters. Rows already there stay valid: an instance saved before indexes only its standard
fields (a wider set of candidates, never a wrong one) until its next save.

Revision ID: 7c1f3a9d2b60
Revises: 4e2b6b26b499
Create Date: 2026-12-03 15:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "7c1f3a9d2b60"
down_revision = "4e2b6b26b499"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("enrol_autoenrol_prefilter", schema=None) as batch_op:
        batch_op.alter_column(
            "field",
            existing_type=sa.String(length=20),
            type_=sa.String(length=120),
            existing_nullable=False,
        )


def downgrade() -> None:
    # Custom-field pairs do not fit the narrower column: they go (the rules still decide).
    op.execute("DELETE FROM enrol_autoenrol_prefilter WHERE LENGTH(field) > 20")
    with op.batch_alter_table("enrol_autoenrol_prefilter", schema=None) as batch_op:
        batch_op.alter_column(
            "field",
            existing_type=sa.String(length=120),
            type_=sa.String(length=20),
            existing_nullable=False,
        )
