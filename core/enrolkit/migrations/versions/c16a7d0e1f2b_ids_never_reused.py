"""ids never reused on SQLite: AUTOINCREMENT on the tables the log and settings refer to

Revision ID: c16a7d0e1f2b
Revises: 0005_log_xact
Create Date: 2026-12-03 13:30:00

SQLite gives a new row the largest id + 1, so after deleting the newest instance the next one got
its id and the log mixed the two. AUTOINCREMENT (``models.base.NEVER_REUSED``) never gives an id
twice (the webhook subscriptions too: the log names them by id). SQLite cannot add it to a table, so each table is rebuilt (Alembic's batch mode), with
foreign keys off for the rebuild (``migrations/env.py``). PostgreSQL's sequences never reuse an
id: nothing to do there.
"""

from alembic import op

revision = "c16a7d0e1f2b"
down_revision = "0005_log_xact"
branch_labels = None
depends_on = None

#: Parents before children, so each rebuilt table's foreign keys name rebuilt tables.
TABLES = (
    "users",
    "categories",
    "courses",
    "roles",
    "groups",
    "cohorts",
    "enrol_instances",
    "held_plans",
    "log",
    "webhook_subscriptions",
)


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in TABLES:
        with op.batch_alter_table(
            name, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
