"""Loading many plain rows into one table in the current transaction, the fastest way the
database offers: ``COPY ... FROM STDIN`` on PostgreSQL (psycopg 3), a driver-level executemany
elsewhere. For rows that come from outside (a flat file's lines), where an ORM insert's per-row
work would cost more than the database's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence, Sized

from sqlalchemy.orm import Session

#: Rows per executemany call where COPY is not available.
CHUNK = 5000


def insert_rows(
    session: Session,
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence],
    *,
    copy_from: int = 0,
) -> None:
    """Insert ``rows`` (tuples in the order of ``columns``) into ``table``, inside the session's
    transaction. ``table`` and ``columns`` are the caller's own names, never user input.

    ``copy_from``: when ``rows`` has a length, PostgreSQL gets them by COPY only above that many
    (COPY's set-up costs more than one INSERT for a handful of rows); a stream always goes by COPY.
    """
    connection = session.connection()
    names = f"{table} ({', '.join(columns)})"
    small = isinstance(rows, Sized) and len(rows) <= copy_from
    if connection.dialect.name == "postgresql" and not small:
        with (
            connection.connection.cursor() as cursor,
            cursor.copy(f"COPY {names} FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return
    marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    statement = f"INSERT INTO {names} VALUES ({', '.join(marker for _ in columns)})"
    batch: list[Sequence] = []
    for row in rows:
        batch.append(tuple(row))
        if len(batch) >= CHUNK:
            connection.exec_driver_sql(statement, batch)
            batch = []
    if batch:
        connection.exec_driver_sql(statement, batch)


__all__ = ["insert_rows"]
