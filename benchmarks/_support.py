"""What the benchmarks share: the databases they run on and the baselines they are measured against.

Backends: every benchmark runs on a fresh SQLite file and, when ``ENROLKIT_TEST_POSTGRES_URL``
names a server (as ``make test`` and ``make bench`` set it through ``scripts/postgres.sh``), on a
fresh database of that server, dropped afterwards. ``--url URL`` runs on that server only.

Baselines: the rows a timed enrolkit operation wrote (enrolments, role assignments, log rows, and
group memberships where asked) are written again into empty copies of their tables (same columns,
keys, indexes, foreign keys and defaults), in one transaction each way, so that each figure can be
set beside the bare database write of the same rows:

- ``raw``: one ``executemany`` INSERT of the enrolments and role assignments (no log), the
  parameter lists built before the clock starts: the baseline the benchmarks have always shown;
- ``set``: the set-based limit (issue 15), every written row including the log rows: one
  ``INSERT ... SELECT`` per table, computed by the server, for rows derived from what the database
  holds; for rows that come from a file, ``COPY`` on PostgreSQL (psycopg 3's ``cursor.copy()``)
  and, on SQLite, its closest equivalent, one ``executemany`` per table in one transaction.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from enrolkit.models import Base
from enrolkit.models.enrolment import LOG_XACT_DEFAULT
from sqlalchemy import Engine, MetaData, Table, create_engine, func, insert, select, text, true

PG_ENV = "ENROLKIT_TEST_POSTGRES_URL"


# --- databases ------------------------------------------------------------------------------


def servers(url: str | None) -> list[str | None]:
    """Where to run: ``url`` alone when given; else SQLite (``None``) and, when the environment
    names a PostgreSQL server, that server."""
    if url:
        return [url]
    postgres = os.environ.get(PG_ENV)
    return [None, postgres] if postgres else [None]


def backend(url: str | None) -> str:
    """``sqlite`` or ``postgresql``: the name figures are recorded under."""
    return (url or "sqlite").split(":", 1)[0].split("+", 1)[0]


@contextmanager
def fresh_database(server: str | None, folder: Path, name: str = "bench") -> Iterator[str]:
    """The URL of a new empty database: a SQLite file in ``folder`` (``server`` None), or a new
    database on the PostgreSQL ``server``, dropped (even if the benchmark fails) on exit."""
    if not server:
        yield f"sqlite:///{folder / f'{name}.db'}"
        return
    if not server.startswith("postgresql"):
        yield server
        return
    database = f"ek_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        server.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    try:
        yield server.rsplit("/", 1)[0] + "/" + database
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{database}" WITH (FORCE)'))
        admin.dispose()


# --- baselines ------------------------------------------------------------------------------

#: What an engine apply writes, in the order it writes it.
WRITTEN = ("user_enrolments", "role_assignments", "log")
#: What the executemany baseline writes (as it always has: no log).
RAW = ("user_enrolments", "role_assignments")
#: Tables the copies' foreign keys point to.
REFERENCED = ("users", "roles", "courses", "enrol_instances", "groups")


@dataclass(frozen=True)
class Measured:
    """The two baselines of one operation, in seconds, and what they wrote."""

    raw: float
    set: float
    set_kind: str
    rows: dict[str, int]

    def ratios(self, seconds: float) -> str:
        """The operation's time against both baselines, for a printed line."""
        return (
            f"{seconds / self.raw:.2f}x raw ({self.raw:.2f} s), {seconds / self.set:.2f}x "
            f"set-based ({self.set_kind}, {sum(self.rows.values()):,} rows, {self.set:.2f} s)"
        )


class Baselines:
    """Empty copies of the written tables, and the timed writes of the same rows into them.

    Call :meth:`mark` before the operation and :meth:`measure` after it, with no transaction of
    the benchmark's own session left open (commit it first: on SQLite it would hold the lock)."""

    def __init__(self, db: Engine, tables: tuple[str, ...] = WRITTEN) -> None:
        self.db = db
        self.tables = tables
        metadata = MetaData()
        for name in REFERENCED:
            Base.metadata.tables[name].to_metadata(metadata)
        self.pairs: list[tuple[Table, Table]] = []
        for name in tables:
            source = Base.metadata.tables[name]
            copy = source.to_metadata(metadata, name=f"baseline_{name}")
            for number, item in enumerate((*copy.indexes, *copy.constraints)):
                if item.name:  # unique, and short: PostgreSQL cuts names at 63 characters
                    item.name = f"baseline_{name}_{number}"
            self.pairs.append((source, copy))
        metadata.create_all(db, tables=[copy for _, copy in self.pairs])
        if db.dialect.name == "postgresql" and "log" in tables:
            with db.begin() as conn:  # each log row stamped with its transaction, as the real one
                conn.exec_driver_sql(LOG_XACT_DEFAULT.replace("TABLE log", "TABLE baseline_log"))

    def mark(self) -> dict[str, int]:
        """Where each table ends now: the rows written after this are the operation's."""
        marks = {}
        with self.db.connect() as conn:
            for source, _ in self.pairs:
                if "id" in source.c:
                    marks[source.name] = conn.scalar(select(func.max(source.c.id))) or 0
                else:  # no id (group_members): the operation must start from an empty table
                    count = conn.scalar(text(f"SELECT COUNT(*) FROM {source.name}"))
                    assert count == 0, f"{source.name} must be empty before the operation"
                    marks[source.name] = 0
        return marks

    def measure(self, marks: dict[str, int], *, from_file: bool = False) -> Measured:
        """Write the rows written since ``marks`` again, both ways; the copies are emptied after
        each, so one run can measure several operations."""
        rows = self._written(marks)
        counts = {name: len(rows[name]) for name in self.tables}
        raw = self._timed(lambda conn: self._executemany(conn, rows, RAW))
        self._check(raw, {name: counts[name] if name in RAW else 0 for name in self.tables})
        if not from_file:
            kind = "INSERT ... SELECT"
            written = self._timed(lambda conn: self._insert_select(conn, marks))
        elif self.db.dialect.name == "postgresql":
            kind = "COPY"
            written = self._timed(lambda conn: self._copy(conn, rows))
        else:
            kind = "executemany, all tables"
            written = self._timed(lambda conn: self._executemany(conn, rows, self.tables))
        self._check(written, counts)
        return Measured(raw[0], written[0], kind, counts)

    @staticmethod
    def _check(written: tuple[float, dict[str, int]], expected: dict[str, int]) -> None:
        """A baseline that wrote other rows than the operation would be no baseline."""
        if written[1] != expected:
            raise AssertionError(f"the baseline wrote {written[1]}, not {expected}")

    def _columns(self, table: Table) -> list[str]:
        # The id is the copy's own; the log's transaction stamp comes from its default.
        return [column.name for column in table.columns if column.name not in ("id", "xact")]

    def _where(self, source: Table, marks: dict[str, int]):
        return source.c.id > marks[source.name] if "id" in source.c else true()

    def _written(self, marks: dict[str, int]) -> dict[str, list[dict]]:
        rows = {}
        with self.db.connect() as conn:
            for source, _ in self.pairs:
                columns = [source.c[name] for name in self._columns(source)]
                query = select(*columns).where(self._where(source, marks))
                rows[source.name] = [dict(row._mapping) for row in conn.execute(query)]
        return rows

    def _timed(self, write) -> tuple[float, dict[str, int]]:
        """Seconds to ``write`` and commit, and the rows it left in each copy (then removed)."""
        started = time.perf_counter()
        with self.db.begin() as conn:
            write(conn)
        seconds = time.perf_counter() - started
        with self.db.begin() as conn:
            counts = {}
            for source, copy in self.pairs:
                counts[source.name] = conn.scalar(select(func.count()).select_from(copy))
                conn.execute(copy.delete())
        return seconds, counts

    def _executemany(self, conn, rows: dict[str, list[dict]], tables: tuple[str, ...]) -> None:
        for source, copy in self.pairs:
            if source.name in tables and rows[source.name]:
                conn.execute(insert(copy), rows[source.name])

    def _insert_select(self, conn, marks: dict[str, int]) -> None:
        for source, copy in self.pairs:
            names = self._columns(source)
            query = select(*(source.c[name] for name in names)).where(self._where(source, marks))
            conn.execute(insert(copy).from_select(names, query))

    def _copy(self, conn, rows: dict[str, list[dict]]) -> None:
        cursor = conn.connection.driver_connection.cursor()
        for source, copy in self.pairs:
            names = self._columns(source)
            statement = f"COPY {copy.name} ({', '.join(names)}) FROM STDIN"
            with cursor.copy(statement) as stream:
                for row in rows[source.name]:
                    stream.write_row([row[name] for name in names])
