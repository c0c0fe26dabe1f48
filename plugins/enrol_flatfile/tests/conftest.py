"""Fixtures for the flat-file tests: a site with the method enabled and a drop folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from enrol_flatfile.processor import process
from enrolkit.models import LogEntry, Role, RoleAssignment, UserEnrolment
from enrolkit.testing import SiteFactory
from sqlalchemy import select


class Drop:
    """The drop folder of a test site ($ENROLKIT_HOME/flatfile) and what happened in the site."""

    def __init__(self, site, folder: Path) -> None:
        self.site = site
        self.folder = folder

    def write(self, name: str, text: str, encoding: str = "utf-8") -> Path:
        path = self.folder / name
        path.write_bytes(text.encode(encoding))
        return path

    def process(self, **options) -> list:
        return list(process(self.site, **options))

    def files(self) -> list[str]:
        return sorted(p.name for p in self.folder.iterdir())

    def enrolment(self, user, course) -> UserEnrolment | None:
        from enrolkit.models import EnrolInstance

        return self.site.session.scalar(
            select(UserEnrolment)
            .join(EnrolInstance, EnrolInstance.id == UserEnrolment.instance_id)
            .where(
                UserEnrolment.user_id == user.id,
                EnrolInstance.course_id == course.id,
                EnrolInstance.method == "flatfile",
            )
            .execution_options(populate_existing=True)
        )

    def roles(self, user, course) -> list[str]:
        """Shortnames of the roles the flat-file instance gave ``user`` in ``course``."""
        return sorted(
            self.site.session.scalars(
                select(Role.shortname)
                .join(RoleAssignment, RoleAssignment.role_id == Role.id)
                .where(
                    RoleAssignment.user_id == user.id,
                    RoleAssignment.instanceid == course.id,
                    RoleAssignment.component == "enrol_flatfile",
                )
            )
        )

    def events(self, event: str | None = None) -> list[tuple[str, str, str]]:
        """(event, username, reason) of the flat-file log entries, oldest first."""
        from enrolkit.models import User

        stmt = (
            select(LogEntry.event, User.username, LogEntry.reason)
            .outerjoin(User, User.id == LogEntry.user_id)
            .where(LogEntry.component == "enrol_flatfile")
            .order_by(LogEntry.id)
        )
        if event:
            stmt = stmt.where(LogEntry.event == event)
        return [tuple(row) for row in self.site.session.execute(stmt)]


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("ENROLKIT_HOME", str(tmp_path / "home"))
    (tmp_path / "home" / "flatfile").mkdir(parents=True)
    return tmp_path / "home"


def _drop(site, home: Path) -> Drop:
    with site.atomic():
        site.set_method_enabled("flatfile", True)
    return Drop(site, home / "flatfile")


@pytest.fixture
def drop(site, home, clock) -> Drop:
    return _drop(site, home)


@pytest.fixture
def db_drop(any_db, make_runtime, home, clock):
    """``drop`` on each database backend (SQLite, and PostgreSQL when configured)."""
    runtime = make_runtime(url=any_db, entry_points=True)
    with runtime.site() as site:
        yield _drop(SiteFactory(site), home)
