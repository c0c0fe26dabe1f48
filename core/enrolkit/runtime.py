"""A running enrolkit: one database engine and one set of loaded plugins, shared by the CLI, the
web app, the API and the cron runner. ``runtime.site()`` opens a :class:`Site` for one unit of work.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine as DbEngine

from . import db
from .plugins import Plugins
from .site import Site


class Runtime:
    def __init__(self, url: str | None = None, plugins: Plugins | None = None) -> None:
        self.url = url or db.database_url()
        self.db: DbEngine = db.make_engine(self.url)
        self.sessions = db.session_factory(self.db)
        self.plugins = plugins if plugins is not None else Plugins()

    @contextmanager
    def site(self, origin: str = "cli", actor: str = "") -> Iterator[Site]:
        session = self.sessions()
        try:
            yield Site(session=session, plugins=self.plugins, origin=origin, actor=actor)
        finally:
            session.close()

    def upgrade(self) -> None:
        """Create or upgrade the schema, then the rows every site needs (preset roles)."""
        db.upgrade(self.db, self.plugins.migration_folders())
        self.bootstrap()

    def bootstrap(self) -> None:
        from .roles import ensure_presets

        with self.site() as site, site.atomic():
            ensure_presets(site)

    def dispose(self) -> None:
        self.db.dispose()
