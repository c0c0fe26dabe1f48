"""The Alembic migrations build exactly the schema the models describe, on every backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from enrolkit import db
from enrolkit.models import Base


def test_migrations_match_the_models(any_db):
    engine = db.make_engine(any_db)
    try:
        db.upgrade(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
        assert diff == [], f"models and migrations differ; generate a migration: {diff}"
        db.upgrade(engine)  # a second upgrade is a no-op
    finally:
        engine.dispose()


def test_sqlite_runs_with_wal_and_foreign_keys(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()
