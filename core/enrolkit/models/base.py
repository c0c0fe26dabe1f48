"""Declarative base shared by every table, core and plugins alike."""

from __future__ import annotations

from sqlalchemy import BigInteger, MetaData
from sqlalchemy.orm import DeclarativeBase

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


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
