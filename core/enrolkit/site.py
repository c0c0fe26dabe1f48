"""The site: a database session, the loaded plugins, and who is acting (the origin).

Every hook receives a ``Site``. It is cheap to make: one per CLI command, web request or task run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from . import clock
from .errors import SettingsError
from .models import Config

if TYPE_CHECKING:
    from .engine import Engine
    from .plugins import Plugins

ORIGINS = ("cli", "web", "api", "cron", "event", "scim")

CORE = "core"
ENABLED_METHODS = "enabled_methods"

#: Key in a session's ``info``: what :meth:`Site.memo` read in the current transaction.
MEMO = "enrolkit_memo"
#: The memo key of the site settings (the ``config`` table).
CONFIG_MEMO = ("config",)
#: Key in a session's ``info``: the transaction open now has written (a flush, a DML statement).
WROTE = "enrolkit_wrote"

T = TypeVar("T")


@event.listens_for(Session, "after_transaction_end")
def _forget_memo_at_the_end(session: Session, transaction) -> None:
    """The end of the outermost transaction lets other writers' changes in: read again."""
    if transaction.parent is None:
        session.info.pop(MEMO, None)
        session.info.pop(WROTE, None)


@event.listens_for(Session, "after_flush")
def _note_a_flush(session: Session, _context) -> None:
    session.info[WROTE] = True


@event.listens_for(Session, "do_orm_execute")
def _note_a_statement(state) -> None:
    if not state.is_select:
        state.session.info[WROTE] = True


@event.listens_for(Session, "after_soft_rollback")
def _forget_memo_on_rollback(session: Session, _previous) -> None:
    """A rollback, of a savepoint too, may undo a change of ours that was memoised."""
    session.info.pop(MEMO, None)


@dataclass
class _Frame:
    """An open transaction or savepoint: whether it is all or nothing, and whether a block
    inside it without a savepoint of its own failed."""

    whole: bool
    failed: bool = False


@dataclass
class Site:
    session: Session
    plugins: Plugins
    #: Where the current change comes from: cli, web, api, cron, event or scim.
    origin: str = "cli"
    #: Username of the person acting, when there is one.
    actor: str = ""
    #: The address this site is served at, when a web request opened it: links in messages use
    #: it while no ``site_url`` is configured (rather than a made-up host and port).
    serving_url: str = ""
    #: The open transaction and savepoints (:meth:`atomic`), innermost last.
    _frames: list[_Frame] = field(default_factory=list, repr=False)

    @cached_property
    def engine(self) -> Engine:
        from .engine import Engine

        return Engine(self)

    def now(self) -> int:
        return clock.now()

    # --- transactions ---------------------------------------------------------------------

    @contextmanager
    def atomic(self, *, whole: bool = False, savepoint: bool = True) -> Iterator[None]:
        """One transaction: the outermost block commits (or rolls back on error); inner blocks
        are savepoints, so a failing inner block undoes only itself.

        ``whole`` says that nothing inside the block goes on after a failure: the block is all
        or nothing (a request's change and the plans it applies). Work inside it that would
        take a savepoint only to undo itself alone may then skip it (:attr:`all_or_nothing`;
        the engine's batch does, saving two of a small batch's round trips).

        ``savepoint=False`` (an inner block only) takes no savepoint: a failure inside fails the
        enclosing transaction or savepoint. If its error is caught and the enclosing block goes
        on, that block refuses to commit and is rolled back: nothing is ever half-applied."""
        if self._frames and not savepoint:
            try:
                yield
            except BaseException:
                self._frames[-1].failed = True
                raise
            return
        self._frames.append(_Frame(whole))
        try:
            if len(self._frames) == 1:
                self._begin_write()
                try:
                    yield
                    self._refuse_failed()
                    self.session.commit()
                except BaseException:
                    self.session.rollback()
                    raise
            else:
                with self.session.begin_nested():
                    yield
                    self._refuse_failed()
        finally:
            self._frames.pop()

    @property
    def all_or_nothing(self) -> bool:
        """Whether the innermost open transaction or savepoint was opened with ``whole``."""
        return bool(self._frames) and self._frames[-1].whole

    def _refuse_failed(self) -> None:
        if self._frames[-1].failed:
            raise RuntimeError(
                "a block without a savepoint failed in this transaction and its error was"
                " caught: the transaction is rolled back rather than committed half-done"
            )

    def in_atomic(self) -> bool:
        """Whether a write transaction (:meth:`atomic`) is open: work done now commits with it."""
        return bool(self._frames)

    def _begin_write(self) -> None:
        """Start a write transaction. A read transaction still open (autobegun by a query) is
        ended first, keeping what it flushed, so the write one can take SQLite's lock up front.

        On PostgreSQL a read transaction that wrote nothing simply goes on as the write one:
        there is no lock to take up front, each statement reads what is committed (READ
        COMMITTED), and a request (token and names looked up, then the change) saves a commit,
        a pool check-out with its ping, and a BEGIN: three round trips."""
        if self.session.in_transaction():
            if self._goes_on_writing():
                return
            self.session.commit()
        self.session.connection(execution_options={"enrolkit_write": True})

    def _goes_on_writing(self) -> bool:
        return (
            not self.session.info.get(WROTE)
            and self.session.get_bind().dialect.name == "postgresql"
        )

    # --- what a transaction reads many times ---------------------------------------------

    def memo(self, key: tuple, read: Callable[[], T]) -> T:
        """``read()``, once per transaction and key: site settings and webhook subscriptions,
        which one request (a login enrolling into ten courses) would otherwise read once per
        plan. Forgotten at commit and rollback; a writer of what is memoised calls
        :meth:`forget`."""
        found = self.session.info.setdefault(MEMO, {})
        if key not in found:
            found[key] = read()
        return found[key]

    def forget(self, key: tuple) -> None:
        self.session.info.get(MEMO, {}).pop(key, None)

    # --- settings -----------------------------------------------------------------------

    def get_config(self, component: str, name: str, default: Any = None) -> Any:
        stored = self._config(component).get(name)
        return default if stored is None else json.loads(stored)

    def set_config(self, component: str, name: str, value: Any) -> None:
        row = self.session.get(Config, (component, name))
        encoded = json.dumps(value)
        if row is None:
            self.session.add(Config(component=component, name=name, value=encoded))
        else:
            row.value = encoded
        self.session.flush()
        self.forget(CONFIG_MEMO)

    def _config(self, component: str) -> dict[str, str]:
        """A component's stored settings, as JSON text by name. The whole table (a few rows per
        component) is read in one query per transaction: a login reads the core's settings and
        two or three methods'."""

        def read() -> dict[str, dict[str, str]]:
            found: dict[str, dict[str, str]] = {}
            for row in self.session.execute(select(Config.component, Config.name, Config.value)):
                found.setdefault(row.component, {})[row.name] = row.value
            return found

        return self.memo(CONFIG_MEMO, read).get(component, {})

    def stored_method_settings(self, name: str) -> dict:
        """A method's site settings as stored, unchecked: what a settings form shows when a
        stored value no longer passes the schema (a rule added since), so it can be fixed."""
        component = self.plugins.method(name).component
        return {key: json.loads(value) for key, value in self._config(component).items()}

    def method_settings(self, name: str) -> dict:
        """A method's site settings: stored values over the schema's defaults."""
        from marshmallow import ValidationError

        method = self.plugins.method(name)
        stored = self.stored_method_settings(name)
        if method.site_schema is None:
            return stored
        schema = method.site_schema()
        known = {key: value for key, value in stored.items() if key in schema.fields}
        try:
            return schema.load(known)
        except ValidationError as exc:  # stored values predating a schema change
            raise SettingsError(exc.messages, where=f"stored site settings of {name}") from None

    def set_method_settings(self, name: str, raw: dict[str, Any]) -> dict:
        """Validate ``raw`` (strings from the CLI or a form) and store it; return all settings."""
        from marshmallow import ValidationError

        method = self.plugins.method(name)
        if method.site_schema is None:
            raise SettingsError(
                {key: ["this method has no site settings"] for key in raw},
                where=f"site settings of {name}",
            )
        schema = method.site_schema(partial=True)
        try:
            loaded = schema.load(raw)
        except ValidationError as exc:
            raise SettingsError(exc.messages, where=f"site settings of {name}") from None
        self._check_roles(name, schema, loaded)
        dumped = method.site_schema().dump(loaded)
        with self.atomic():
            try:
                before = self.method_settings(name)
            except SettingsError:  # a stored value a newer rule refuses: this save fixes it
                before = {}
            for key in loaded:
                self.set_config(method.component, key, dumped.get(key, loaded[key]))
            after = self.method_settings(name)
            changed = tuple(key for key in loaded if before.get(key) != after.get(key))
            if changed:
                self.plugins.method_settings_changed(site=self, method=name, names=changed)
        return after

    def _check_roles(self, name: str, schema, loaded: dict) -> None:
        """Every role a ``RoleList`` setting names exists: a misspelt role would otherwise
        synchronise nothing, silently."""
        from .fields import RoleList
        from .models import Role

        known = set(self.session.scalars(select(Role.shortname)))
        errors = {
            key: [
                f"no role {', '.join(sorted(unknown))}; "
                f"roles on this site: {', '.join(sorted(known))}"
            ]
            for key, field_ in schema.fields.items()
            if isinstance(field_, RoleList) and key in loaded
            for unknown in [set(loaded[key]) - known]
            if unknown
        }
        if errors:
            raise SettingsError(errors, where=f"site settings of {name}")

    # --- which methods are on -----------------------------------------------------------

    def enabled_methods(self) -> list[str]:
        """Enabled methods in the site's order. A fresh site gets each method's default."""
        stored = self.get_config(CORE, ENABLED_METHODS)
        if stored is None:
            return [name for name, m in self.plugins.methods.items() if m.enabled_by_default]
        return [name for name in stored if name in self.plugins.methods]

    def set_method_enabled(self, name: str, enabled: bool) -> None:
        method = self.plugins.method(name)
        was = self.enabled_methods()
        current = [n for n in was if n != name]
        if enabled:
            current.append(name)
        self.set_config(CORE, ENABLED_METHODS, current)
        if enabled and name not in was:
            method.site_enabled(self)

    def method_enabled(self, name: str) -> bool:
        return name in self.enabled_methods()
