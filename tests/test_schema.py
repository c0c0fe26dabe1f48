"""The Alembic migrations build exactly the schema the models describe, on every backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from enrolkit import db
from enrolkit.models import Base
from enrolkit.plugins import Plugins
from enrolkit.runtime import Runtime


def test_migrations_match_the_models(any_db):
    # Every installed plugin loads, so its tables are on Base and its migrations registered.
    plugins = Plugins()
    plugins.load_all()  # the plugins' modules import their code (and models) on first use
    runtime = Runtime(any_db, plugins)
    try:
        runtime.upgrade()
        with runtime.db.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
        assert diff == [], f"models and migrations differ; generate a migration: {diff}"
        runtime.upgrade()  # a second upgrade is a no-op
    finally:
        runtime.dispose()


def test_sqlite_runs_with_wal_and_foreign_keys(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


PLUGIN_MIGRATION = """
from alembic import op
import sqlalchemy as sa

revision = "ekt0001"
down_revision = None
branch_labels = ("ektest_branch",)
depends_on = "0001"


def upgrade():
    op.create_table("ektest_things", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id")))


def downgrade():
    op.drop_table("ektest_things")
"""


def test_hook_register_migrations_upgrades_a_plugin_branch(tmp_path, make_runtime):
    """A plugin's own migrations run with ``enrolkit db upgrade``, after the core's."""
    import enrolkit

    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "ekt0001_things.py").write_text(PLUGIN_MIGRATION)

    class Plugin:
        @enrolkit.hookimpl
        def register_migrations(self, register):
            register(folder)

    from sqlalchemy import inspect

    runtime = Runtime(
        f"sqlite:///{tmp_path / 'site.db'}", Plugins(entry_points=False, extra=(Plugin(),))
    )
    try:
        runtime.upgrade()
        tables = set(inspect(runtime.db).get_table_names())
        assert {"ektest_things", "users", "enrol_instances"} <= tables
        with runtime.db.connect() as conn:
            versions = {
                row[0] for row in conn.exec_driver_sql("SELECT version_num FROM alembic_version")
            }
        assert "ekt0001" in versions
    finally:
        runtime.dispose()
