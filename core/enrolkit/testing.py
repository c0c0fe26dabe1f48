"""The pytest plugin for enrolkit and its plugin authors (registered under ``pytest11``).

Fixtures:

* ``make_runtime(plugins=..., url=...)``: a :class:`Runtime` on a fresh database with exactly the
  chosen plugins (entry points are not scanned unless ``entry_points=True``).
* ``runtime``: ``make_runtime()`` with every built-in and installed plugin.
* ``site``: a :class:`SiteFactory` (a ``Site`` with helpers that create users, courses, ...).
* ``clock``: set the time (``clock.set("2026-09-01")``, ``clock.advance(3600)``) via ENROLKIT_NOW.
* ``cli``: run ``enrolkit`` commands in-process against the test database.
* ``any_db``: a fresh database URL, parametrised: SQLite, and PostgreSQL too when
  ``ENROLKIT_TEST_POSTGRES_URL`` names a server; ``db_site``: a ``site`` on each of them. A
  module-scoped site per backend: ``params=backends()`` and ``fresh_database_url``.
* ``enrolkit_database_url``: the database of ``runtime``; override it to return ``any_db`` to
  run every test on both backends.
* ``enrolkit_plugins``: the plugins of ``runtime`` (and so of ``site``, ``cli``, ``app``,
  ``run_cron``, ``outbox``). None (the default) loads every installed plugin; override it in a
  test module or conftest to return a tuple of plugin modules, and the site has exactly those
  (and the core's built-ins).
* ``app`` / ``client``: the Flask web app and REST API on ``runtime``, and a test client.
* ``run_cron``: one ``enrolkit cron`` run on ``runtime`` (``force=True``: every task, due or not);
  returns the outcomes by task name and fails the test when a task failed.
* ``outbox``: the mail enrolkit queued (``outbox.messages``, oldest first); ``smtp``: a real SMTP
  server on loopback that ``ENROLKIT_SMTP_URL`` points at, so ``run_cron`` delivers to it
  (``smtp.messages`` are the parsed messages received; needs aiosmtpd).

Helpers: ``statements(bind)``, the SQL statements a block sends (to pin what a request costs).
"""

from __future__ import annotations

import os
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine

from . import clock as _clock
from .models import Base
from .plugins import Plugins
from .runtime import Runtime
from .site import Site

__all__ = [
    "Outbox",
    "SiteFactory",
    "Smtp",
    "Statements",
    "any_db",
    "app",
    "backends",
    "clock",
    "cli",
    "client",
    "db_site",
    "enrolkit_database_url",
    "enrolkit_plugins",
    "fresh_database_url",
    "make_runtime",
    "outbox",
    "run_cron",
    "runtime",
    "site",
    "smtp",
    "statements",
]


def backends() -> list[str]:
    """The database backends tests run on: SQLite and, when ``ENROLKIT_TEST_POSTGRES_URL``
    names a server, PostgreSQL. A fixture wider than a test (one site per module and backend)
    takes them as its ``params`` and makes its database with :func:`fresh_database_url`."""
    return ["sqlite"] + (["postgresql"] if os.environ.get("ENROLKIT_TEST_POSTGRES_URL") else [])


def pytest_generate_tests(metafunc):
    # Tests that ask for ``any_db`` (or ``db_site``) run on SQLite and, when a server is
    # configured, PostgreSQL.
    if "any_db" in metafunc.fixturenames:
        metafunc.parametrize("any_db", backends(), indirect=True)


@pytest.fixture
def any_db(request, tmp_path) -> str:
    """A fresh, empty database URL, once per backend: a SQLite file, and a new PostgreSQL
    database when ``ENROLKIT_TEST_POSTGRES_URL`` names a server (the test runs on each)."""
    return fresh_database_url(request.param, tmp_path)


@pytest.fixture
def db_site(any_db, make_runtime, enrolkit_plugins) -> Iterator[SiteFactory]:
    """A ``site`` on each available database backend, with the plugins of
    ``enrolkit_plugins`` (as ``site`` has)."""
    runtime = _runtime_with(make_runtime, enrolkit_plugins, url=any_db)
    with runtime.site() as site:
        yield SiteFactory(site)


def fresh_database_url(backend: str, tmp_path: Path) -> str:
    """A new empty database: a SQLite file in ``tmp_path``, or a new PostgreSQL database on the
    server named by ``ENROLKIT_TEST_POSTGRES_URL``."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    server = os.environ["ENROLKIT_TEST_POSTGRES_URL"]
    name = f"ek_{uuid.uuid4().hex[:12]}"
    admin = create_engine(_psycopg(server), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return server.rsplit("/", 1)[0] + "/" + name


def _psycopg(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


class SiteFactory:
    """A :class:`Site` plus factories for the objects tests need. Attribute access falls through
    to the site (``factory.session``, ``factory.engine``, ...)."""

    def __init__(self, site: Site) -> None:
        self.site = site

    def __getattr__(self, name):
        return getattr(self.site, name)

    def user(self, username: str, **fields):
        from .models import User

        fields.setdefault("email", f"{username}@example.org")
        fields.setdefault("firstname", username.capitalize())
        fields.setdefault("lastname", "Test")
        user = User(username=username, timecreated=_clock.now(), **fields)
        self.site.session.add(user)
        self.site.session.flush()
        return user

    def users(self, count: int, prefix: str = "u", **fields):
        return [self.user(f"{prefix}{i}", **fields) for i in range(1, count + 1)]

    def category(self, path: str):
        from .catalog import ensure_category

        return ensure_category(self.site, path)

    def course(self, shortname: str, category: str | None = None, **fields):
        from .models import Course

        fields.setdefault("fullname", f"Course {shortname}")
        cat = self.category(category).id if category else None
        course = Course(shortname=shortname, category_id=cat, timecreated=_clock.now(), **fields)
        self.site.session.add(course)
        self.site.session.flush()
        return course

    def cohort(self, idnumber: str, members=(), category: str | None = None):
        from .models import Cohort, CohortMember

        cat = self.category(category).id if category else None
        cohort = Cohort(idnumber=idnumber, name=idnumber, category_id=cat)
        self.site.session.add(cohort)
        self.site.session.flush()
        for user in members:
            self.site.session.add(CohortMember(cohort_id=cohort.id, user_id=user.id))
        self.site.session.flush()
        return cohort

    def role(self, shortname: str):
        from . import lookup

        return lookup.role(self.site.session, shortname)

    def instance(self, course, method: str = "manual", **settings):
        from .enrolments import add_instance

        if not self.site.method_enabled(method):
            self.site.set_method_enabled(method, True)
        raw = {key: str(value) for key, value in settings.items()}
        return add_instance(self.site, course, method, raw).instance


@pytest.fixture
def make_runtime(tmp_path) -> Iterator:
    """``make_runtime(plugins=(), url=None, entry_points=False, disable=())``: a new
    :class:`~enrolkit.runtime.Runtime` on a fresh database (a SQLite file in ``tmp_path`` unless
    ``url`` is given) with exactly ``plugins`` and the core's built-ins, plus the installed ones
    with ``entry_points=True``. For a test that needs a second site; disposed at the end."""
    made: list[Runtime] = []

    def make(
        plugins: tuple = (),
        url: str | None = None,
        entry_points: bool = False,
        disable: tuple[str, ...] = (),
    ) -> Runtime:
        url = url or f"sqlite:///{tmp_path / f'site{len(made)}.db'}"
        loaded = Plugins(entry_points=entry_points, extra=tuple(plugins), disable=disable)
        loaded.load_all()  # a plugin's mistake fails the test at once, as it stops the web app
        runtime = Runtime(url, loaded)
        Base.metadata.create_all(runtime.db)
        runtime.bootstrap()
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.dispose()


@pytest.fixture
def enrolkit_plugins() -> tuple | None:
    """The plugins ``runtime`` loads: None for every installed one (entry points). Override it
    to return a tuple of plugin modules for a site with exactly those."""
    return None


def _runtime_with(make_runtime, plugins: tuple | None, url: str | None = None) -> Runtime:
    if plugins is None:
        return make_runtime(entry_points=True, url=url)
    return make_runtime(plugins=tuple(plugins), url=url)


@pytest.fixture
def enrolkit_database_url() -> str | None:
    """The database of ``runtime``: None (the default) for a fresh SQLite file. Override it to
    return ``any_db`` and every test using ``site``, ``cli``, ``run_cron``, ... runs on SQLite and,
    when ``ENROLKIT_TEST_POSTGRES_URL`` names a server, on PostgreSQL too."""
    return None


@pytest.fixture
def runtime(make_runtime, enrolkit_plugins, enrolkit_database_url) -> Runtime:
    """The test's :class:`~enrolkit.runtime.Runtime`: a fresh database (``enrolkit_database_url``)
    with the plugins of ``enrolkit_plugins``; ``site``, ``cli``, ``app``, ``run_cron`` and
    ``outbox`` share it."""
    return _runtime_with(make_runtime, enrolkit_plugins, url=enrolkit_database_url)


@pytest.fixture
def site(runtime) -> Iterator[SiteFactory]:
    """A :class:`SiteFactory` on ``runtime``: the ``Site`` (``site.site``, ``site.session``,
    ``site.engine``, ...) plus factories (``site.user("ann")``, ``site.course("C1")``,
    ``site.instance(course, "manual")``, ...). Factories flush without committing: ``cli``,
    ``run_cron`` and ``outbox`` commit it first; wrap writes in ``with site.atomic():`` before
    other readers (the web ``client``)."""
    with runtime.site() as site:
        yield SiteFactory(site)


class Clock:
    """Pins ``clock.now()`` through ``ENROLKIT_NOW`` (so subprocesses see the same time)."""

    def __init__(self, monkeypatch) -> None:
        self.monkeypatch = monkeypatch

    def set(self, when: str | int) -> int:
        seconds = _clock.parse_time(when)
        self.monkeypatch.setenv("ENROLKIT_NOW", str(seconds))
        return seconds

    def advance(self, seconds: int) -> int:
        return self.set(_clock.now() + seconds)

    def now(self) -> int:
        return _clock.now()


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """The site's time, pinned at 2026-09-01 08:00 UTC: ``clock.set("2026-10-01")``,
    ``clock.advance(3600)``, ``clock.now()``. Set through ``ENROLKIT_NOW``, so subprocesses
    see the same time."""
    clock = Clock(monkeypatch)
    clock.set("2026-09-01T08:00:00Z")
    return clock


@pytest.fixture
def cli(request, runtime):
    """Run an ``enrolkit`` command in-process on ``runtime``: ``cli("user", "login", "jean")``
    returns click's ``Result`` (``exit_code``, ``output``). The test's ``site`` is committed
    before the command (so the command sees what the test made) and expired after it (so the
    test's next read sees what the command wrote)."""

    def run(*args: str, input: str | None = None):
        _settle(request)
        try:
            return run_cli(runtime, *args, input=input)
        finally:
            _settle(request)

    return run


def run_cli(runtime: Runtime, *args: str, input: str | None = None):
    """Run an ``enrolkit`` command in-process on ``runtime`` (its plugins' commands included):
    what the ``cli`` fixture does, for a test that makes its own runtime."""
    from click.testing import CliRunner

    from .cli import cli as group
    from .cli import commands  # noqa: F401
    from .cli.output import CliState

    runtime.plugins.register_commands(cli=group)
    return CliRunner().invoke(group, list(args), obj=CliState(runtime=runtime), input=input)


@pytest.fixture
def app(runtime):
    """The web app and the REST API (``create_app``) on ``runtime``, in testing mode."""
    from .web import create_app

    return create_app({"TESTING": True}, runtime=runtime)


@pytest.fixture
def client(app):
    """A Flask test client of ``app``: ``client.get("/api/v1/...")``, ``client.post(...)``.
    Commit the test's writes first (``with site.atomic():``) so its requests see them."""
    return app.test_client()


def _settle(request) -> SiteFactory | None:
    """Commit what the test's ``site`` fixture holds, so other connections (the cron runner,
    a fresh read) see it; its next query then sees what they wrote."""
    if "site" not in request.fixturenames:
        return None
    factory = request.getfixturevalue("site")
    factory.session.commit()
    factory.session.expire_all()
    return factory


@pytest.fixture
def run_cron(request):
    """``run_cron(force=False, runtime=None, check=True)``: one cron run (on ``runtime`` unless
    given); returns ``{task name: TaskRun}``. With ``check`` a failed task fails the test."""
    from .tasks import FAILED, Runner

    def run(force: bool = False, runtime: Runtime | None = None, check: bool = True) -> dict:
        runtime = runtime or request.getfixturevalue("runtime")
        _settle(request)
        outcomes = {run.name: run for run in Runner(runtime).cron(force=force)}
        _settle(request)
        failed = [run.line() for run in outcomes.values() if run.status == FAILED]
        if check and failed:
            pytest.fail("cron run failed: " + "; ".join(failed))
        return outcomes

    return run


class Outbox:
    """The mail outbox of a runtime, read afresh on each access."""

    def __init__(self, request, runtime: Runtime) -> None:
        self.request = request
        self.runtime = runtime

    @property
    def messages(self) -> list:
        """Every queued, sent or failed message (``MailMessage`` rows), oldest first."""
        from sqlalchemy import select

        from .models import MailMessage

        _settle(self.request)
        with self.runtime.site() as site:
            return list(site.session.scalars(select(MailMessage).order_by(MailMessage.id)))

    def to(self, address: str) -> list:
        return [message for message in self.messages if message.to == address]


@pytest.fixture
def outbox(request, runtime) -> Outbox:
    """The mail queued on ``runtime``: ``outbox.messages`` (``MailMessage`` rows, oldest first)
    and ``outbox.to(address)``; each read commits the test's ``site`` first."""
    return Outbox(request, runtime)


class Smtp:
    """A real SMTP server (aiosmtpd) on loopback; ``messages`` holds what it received."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):
        from email import message_from_bytes, policy

        self.messages.append(message_from_bytes(envelope.original_content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def smtp(monkeypatch) -> Iterator[Smtp]:
    """Start the server and point ``ENROLKIT_SMTP_URL`` at it; ``run_cron(force=True)`` (or the
    ``deliver_mail`` task) then delivers the outbox to it."""
    import socket

    controller_module = pytest.importorskip("aiosmtpd.controller", reason="smtp needs aiosmtpd")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = Smtp()
    controller = controller_module.Controller(
        handler, hostname="127.0.0.1", port=port, server_hostname="localhost"
    )
    controller.start()
    monkeypatch.setenv("ENROLKIT_SMTP_URL", f"smtp://127.0.0.1:{port}?from=enrolkit@example.org")
    try:
        yield handler
    finally:
        controller.stop()


class Statements(list):
    """The SQL statements sent while a :func:`statements` block ran, in order. Its text (what
    an ``assert len(found) <= n`` failure shows) lists them by kind, most frequent first, so
    the query that grew is named."""

    def __str__(self) -> str:
        kinds = Counter(re.sub(r"\s+", " ", statement).strip()[:110] for statement in self)
        lines = [f"{count:4d}  {kind}" for kind, count in kinds.most_common()]
        return f"{len(self)} statements:\n" + "\n".join(lines)

    __repr__ = __str__


@contextmanager
def statements(bind: Engine | Connection) -> Iterator[Statements]:
    """Record every statement sent through ``bind`` (a site's ``session.get_bind()`` or a
    runtime's ``db``) inside the block: a test can pin how many queries a login or a cohort
    change costs, and a change that adds a query per enrolment fails it. An ``executemany``
    counts once: it is one call to the driver."""
    found = Statements()

    def seen(_conn, _cursor, statement, _parameters, _context, _executemany) -> None:
        found.append(statement)

    target = bind.engine if isinstance(bind, Connection) else bind
    event.listen(target, "before_cursor_execute", seen)
    try:
        yield found
    finally:
        event.remove(target, "before_cursor_execute", seen)
