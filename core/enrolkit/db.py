"""Database set-up: the URL, the engine (SQLite tuned for concurrent use), sessions, the schema."""

from __future__ import annotations

import os
import types
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from .errors import EnrolkitError

#: Tables every enrolkit schema has: a database holding other tables but not these is not ours.
CORE_TABLES = frozenset({"users", "courses", "enrol_instances", "user_enrolments"})


class DatabaseUnusable(EnrolkitError):
    """The database file is damaged, belongs to something else, or cannot be written."""


def home() -> Path:
    """The data home: ``ENROLKIT_HOME`` or ``./instance``."""
    return Path(os.environ.get("ENROLKIT_HOME") or "instance").resolve()


def make_home(folder: Path) -> None:
    """Create ``folder`` (the home, or a database's folder) readable by its owner only: it holds
    the secret key and the database with its password hashes. An existing folder is left as the
    operator set it."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass


def create_private_file(path: Path) -> None:
    """Create an empty file mode 0600 unless it exists: SQLite gives its ``-wal`` and ``-shm``
    files the mode of the database file, so all three stay private whatever the umask."""
    make_home(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def instance_config() -> dict[str, Any]:
    """The settings of ``$ENROLKIT_HOME/config.py`` (its upper-case names), read as Flask's
    ``from_pyfile`` reads it, so the web app and the CLI (which does not load Flask) agree."""
    path = home() / "config.py"
    module = types.ModuleType("config")
    module.__file__ = str(path)
    try:
        source = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return {}
    exec(compile(source, str(path), "exec"), module.__dict__)
    return {key: value for key, value in vars(module).items() if key.isupper()}


def database_url() -> str:
    """``DATABASE_URL`` of ``config.py``, else ``ENROLKIT_DATABASE_URL``, else the SQLite file
    of the data home."""
    url = instance_config().get("DATABASE_URL") or os.environ.get("ENROLKIT_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{home() / 'enrolkit.db'}"


def make_engine(url: str | None = None) -> Engine:
    url = url or database_url()
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            create_private_file(Path(path))
        engine = create_engine(url, connect_args={"timeout": 30})
        _tune_sqlite(engine)
    else:
        # A server that does not answer fails the request (and /healthz) in seconds, instead of
        # holding a web thread for the operating system's TCP timeout.
        try:
            engine = create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})
        except ImportError as exc:  # the driver is an extra: a plain install lacks it
            raise EnrolkitError(driver_missing(url, exc)) from None
    _forget_temp_tables_on_rollback(engine)
    return engine


#: Per URL scheme: the database's name, its driver and the extra that installs the driver
#: (pyproject's optional-dependencies).
DRIVERS = {"postgresql": ("PostgreSQL", "psycopg", "postgres")}


def driver_missing(url: str, exc: ImportError) -> str:
    """What to install when the database's driver cannot be imported."""
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    name, module, extra = DRIVERS.get(scheme, (scheme, exc.name or "its driver", ""))
    install = f"pip install 'enrolkit[{extra}]'" if extra else f"pip install {module}"
    return f"{name} needs the driver {module}, which is not installed: {install}"


def _forget_temp_tables_on_rollback(engine: Engine) -> None:
    """The plan engine creates its temporary tables once per connection; a rollback (of the
    transaction or a savepoint) may have undone that, so it must check again."""
    from .engine import TEMP_TABLES_READY

    @event.listens_for(engine, "rollback")
    def _rollback(conn):
        conn.info.pop(TEMP_TABLES_READY, None)

    @event.listens_for(engine, "rollback_savepoint")
    def _rollback_savepoint(conn, name, context):
        conn.info.pop(TEMP_TABLES_READY, None)


def _tune_sqlite(engine: Engine) -> None:
    """WAL, foreign keys, and real transactions so savepoints and locks work.

    pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; SQLAlchemy documents
    taking it over this way. A transaction opened to write (``Site.atomic``, which sets the
    ``enrolkit_write`` execution option) begins IMMEDIATE: it takes the write lock up front, so
    two processes never fail upgrading a read lock, and the busy timeout makes the second wait.
    Read-only transactions begin DEFERRED and, with WAL, never block a writer.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        write = conn.get_execution_options().get("enrolkit_write")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def insert_new(session: Session, model: Any):
    """``INSERT ... ON CONFLICT DO NOTHING`` on this session's database: a row that another
    transaction inserted meanwhile (the same event sent to two nodes at once) is kept as it is
    instead of failing the request; ``RETURNING`` then names only the rows this one added."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(model).on_conflict_do_nothing()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def upgrade(engine: Engine, plugin_folders: list[str] = ()) -> None:
    """Create or upgrade the schema with Alembic (``enrolkit db upgrade``): the core's
    migrations and every plugin's branch (``register_migrations``), each to its head.

    A database holding another application's tables, or a damaged file, is refused before
    anything is written into it."""
    from alembic import command

    if schema_state(engine) == "foreign":
        raise DatabaseUnusable(damaged_message(where(engine.url)))
    check_intact(engine)
    command.upgrade(alembic_config(engine, plugin_folders), "heads")


def alembic_config(engine: Engine, plugin_folders: list[str] = ()):
    from alembic.config import Config

    here = Path(__file__).parent / "migrations"
    config = Config()
    config.set_main_option("script_location", str(here))
    # Alembic splits this option on the separator; os.pathsep is safe for any path.
    config.set_main_option("path_separator", "os")
    config.set_main_option(
        "version_locations", os.pathsep.join([str(here / "versions"), *plugin_folders])
    )
    config.attributes["engine"] = engine
    return config


# --- what a user is told when the database itself is the problem ------------------------------


def where(url: URL) -> str:
    """The database as a person names it: the SQLite file's path, or the server and database
    (never the password)."""
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    return url.render_as_string(hide_password=True)


def damaged_message(place: str) -> str:
    """The one message for a database that is not usable as enrolkit's (``place``: see
    :func:`where`)."""
    return (
        f"the database at {place} is damaged or is not an enrolkit database; restore it "
        "from a backup, or point ENROLKIT_HOME or ENROLKIT_DATABASE_URL at an enrolkit database"
    )


def schema_state(engine: Engine) -> str:
    """``empty`` (no tables: ``db upgrade`` may create the schema), ``enrolkit``, or ``foreign``
    (another application's tables, or a schema too broken to be ours)."""
    tables = set(inspect(engine).get_table_names())
    if not tables:
        return "empty"
    return "enrolkit" if CORE_TABLES <= tables else "foreign"


def check_intact(engine: Engine) -> None:
    """Refuse a damaged SQLite file before a bulk write (``db upgrade``, the imports): SQLite
    only notices a broken page when a statement reaches it, which may be halfway through an
    import. ``PRAGMA quick_check`` reads every page (about a second per few hundred MB).
    PostgreSQL checks its own pages; nothing to do there."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        rows = [row[0] for row in conn.exec_driver_sql("PRAGMA quick_check")]
    if rows != ["ok"]:
        raise DatabaseUnusable(damaged_message(where(engine.url)))


#: SQLite's and PostgreSQL's words for each problem that lies with the database, not the request.
_DAMAGED = ("file is not a database", "database disk image is malformed", "malformed database")
_READ_ONLY = (
    "attempt to write a readonly database",
    "readonly database",
    "unable to open database file",
    "read-only transaction",
    "permission denied",
    "disk i/o error",
    "database or disk is full",
)
_NO_SCHEMA = ("no such table", "does not exist")
_BUSY = ("database is locked", "deadlock detected", "could not serialize", "lock timeout")


def describe(exc: SQLAlchemyError, engine: Engine | None = None) -> str:
    """One line for a person: what is wrong with the database and what to do. Never the SQL
    statement or its parameters (SQLAlchemy's ``str(exc)`` carries both): only the first line
    of the driver's own message."""
    return problem(exc, engine) or f"database error: {_first_line(exc)}"


def problem(exc: SQLAlchemyError, engine: Engine | None = None) -> str | None:
    """The message for an error that lies with the database itself (damaged, another
    application's, unreachable, read-only, without a schema), None for any other. ``engine``
    names the database and tells a missing schema from another application's."""
    lowered = _message(exc).lower()
    first = _first_line(exc)
    place = where(engine.url) if engine is not None else "the configured URL"
    if any(word in lowered for word in _DAMAGED):
        return damaged_message(place)
    if "connection" in lowered or "could not connect" in lowered:
        return f"cannot connect to the database at {place}: {first}"
    if any(word in lowered for word in _READ_ONLY):
        return (
            f"cannot write to the database at {place}: {first}; check the permissions of the "
            "database and of the folder that holds it"
        )
    if any(word in lowered for word in _NO_SCHEMA):
        if engine is not None and _state_or_none(engine) == "foreign":
            return damaged_message(place)
        return "the database has no schema yet; run: enrolkit db upgrade"
    return None


def busy(exc: SQLAlchemyError) -> bool:
    """A lock wait that timed out, a deadlock or a serialisation failure: trying again later
    may succeed (the CLI exits 75, EX_TEMPFAIL)."""
    lowered = _message(exc).lower()
    return any(word in lowered for word in _BUSY)


def _message(exc: SQLAlchemyError) -> str:
    original = getattr(exc, "orig", None)
    return (str(original) if original is not None else str(exc)).strip()


def _first_line(exc: SQLAlchemyError) -> str:
    message = _message(exc)
    return message.splitlines()[0] if message else type(exc).__name__


def _state_or_none(engine: Engine) -> str | None:
    try:
        return schema_state(engine)
    except SQLAlchemyError:
        return None
