"""Cohort membership changes through the service every entrance uses (``enrolkit.cohorts``): what
changes and what the log says, on each backend (on PostgreSQL the change and its log are one
statement)."""

from __future__ import annotations

from enrolkit import cohorts, lookup
from enrolkit.clock import now as clock_now
from enrolkit.models import CohortMember, LogEntry
from sqlalchemy import select


def _logged(site) -> list[tuple]:
    rows = site.session.execute(
        select(LogEntry.event, LogEntry.user_id, LogEntry.origin, LogEntry.reason, LogEntry.time)
        .where(LogEntry.event.like("cohort_member_%"))
        .order_by(LogEntry.id)
    )
    return [tuple(row) for row in rows]


def test_each_member_really_added_or_removed_is_logged_once(db_site, clock):
    site = db_site
    clock.set("2026-09-01T08:00:00Z")
    ann, bob, eve = site.user("ann"), site.user("bob"), site.user("eve")
    site.cohort("promo", members=[bob])
    site.session.commit()
    site.origin = "api"
    now = clock_now()
    cohort, users = lookup.cohort_and_users(site.session, "promo", ["ann", "bob", "ann"])
    assert cohorts.add_members(site, cohort, users) == [ann.id]  # bob was in: skipped
    assert cohorts.add_members(site, cohort, users) == []  # sent again: nothing to do
    assert cohorts.remove_members(site, cohort, [eve, bob]) == [bob.id]  # eve was not in
    members = site.session.scalars(select(CohortMember.user_id).order_by(CohortMember.user_id))
    assert members.all() == [ann.id]
    assert _logged(site) == [
        ("cohort_member_added", ann.id, "api", "cohort promo", now),
        ("cohort_member_removed", bob.id, "api", "cohort promo", now),
    ]
