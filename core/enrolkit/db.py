"""Database set-up: the URL, the engine (SQLite tuned for concurrent use), sessions, the schema."""

from __future__ import annotations

import os
import types
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


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
        engine = create_engine(url, pool_pre_ping=True)
    _forget_temp_tables_on_rollback(engine)
    return engine


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


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def upgrade(engine: Engine, plugin_folders: list[str] = ()) -> None:
    """Create or upgrade the schema with Alembic (``enrolkit db upgrade``): the core's
    migrations and every plugin's branch (``register_migrations``), each to its head."""
    from alembic import command

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
