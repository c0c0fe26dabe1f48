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


with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
