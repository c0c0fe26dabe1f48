"""Alembic environment: the engine comes from ``enrolkit.db.alembic_config``."""

from alembic import context
from enrolkit.models import Base

engine = context.config.attributes["engine"]
# When autogenerating one branch (scripts/make_migration.py), only that branch's tables count.
only_tables = context.config.attributes.get("only_tables")


def include_object(obj, name, type_, reflected, compare_to):
    if only_tables is None:
        return True
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return table is not None and table.name in only_tables


def run(connection, sqlite: bool) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=sqlite,
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
            if broken:
                raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")
    connection.commit()


with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if not sqlite:
        run(connection, sqlite)
    else:
        # A batch migration rebuilds a table: dropping the old one must not cascade to, or be
        # refused by, the rows that refer to it. SQLite ignores this pragma inside a transaction,
        # so it is set on the driver's connection before the migration's transaction begins.
        driver = connection.connection.driver_connection
        driver.execute("PRAGMA foreign_keys=OFF")
        try:
            run(connection, sqlite)
        finally:
            driver.execute("PRAGMA foreign_keys=ON")
