"""Declarative base shared by every table, core and plugins alike."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, MetaData, Text
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from .. import texts

# Stable constraint names so Alembic migrations behave the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: The table options of every table whose ids the log, a setting, a held plan or a message key
#: refers to: on SQLite, AUTOINCREMENT, so a deleted row's id is never given to a new one (the
#: log would mix the two); PostgreSQL's sequences never reuse an id anyway. New such tables use it.
NEVER_REUSED = {"sqlite_autoincrement": True}

#: Unix seconds (Moodle's convention). BigInteger so the schema outlives 2038.
Timestamp = BigInteger


class StoredText(TypeDecorator):
    """A text column that keeps a :class:`~enrolkit.texts.Text` as its message id and
    parameters (:func:`enrolkit.texts.dumps`), so it is shown later in its reader's language;
    reads give the ``Text`` back (its English for the CLI and the API), and rows of plain
    English, stored before, as they are. The schema is a plain ``TEXT``: no migration."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect) -> str | None:
        return None if value is None else texts.dumps(value)

    def process_result_value(self, value: str | None, dialect) -> str | None:
        return None if value is None else texts.loads(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
