"""Adding an instance with --backfill enrols the source's past completers, in one plan."""

from __future__ import annotations

import pytest
from completion_helpers import enrolled, listing, ok, refused
from enrolkit import access, lookup
from enrolkit import clock as times
from enrolkit.enrolments import add_instance, delete_instance, list_enrolments
from enrolkit.errors import Refused
from enrolkit.models import Group, MailMessage
from sqlalchemy import func, select

DAY = 86_400


def completers(site, clock):
    """u1, u2 completed A long ago; u3 too, but was deleted since; u4 completed and is in B by
    hand already; u5 completed yesterday; u6 completed before the instance's window."""
    users = site.users(6)
    source = site.course("A")
    site.course("B")
    site.course("C")
    site.session.commit()
    dates = ["2026-01-10", "2026-03-01", "2026-04-01", "2026-05-01", None, "2025-12-01"]
    for user, when in zip(users, dates, strict=True):
        moment = times.parse_time(when) if when else clock.now() - DAY
        access.complete_course(site, user, source, moment)
    with site.atomic():
        users[2].deleted = True
    return users


def test_backfill_dry_run_shows_who_then_enrols_them(cli, site, clock):
    completers(site, clock)
    ok(cli("enrolment", "add", "u4", "B"))
    ok(cli("method", "enable", "completion"))
    ok(cli("cron"))  # the site's cron runs every minute
    add = ("instance", "add", "B", "completion", "source=A", f"delay={2 * DAY}")
    add += ("enrolstart=2026-01-01", "--backfill")

    dry = ok(cli(*add, "--dry-run"))
    assert dry.stdout.splitlines() == [
        "would change: 2 enrolled, 2 roles_added",
        "enrol u1",
        "enrol u2",
        "enrol u5 at 2026-09-02T08:00:00Z",
    ]
    assert listing(cli, "instance", "list", "B")[1:] == []  # only the manual instance
    assert listing(cli, "mail", "list") == []

    result = ok(cli(*add))
    assert "2 enrolled, 2 roles_added" in result.stderr
    assert "1 enrolment change(s) scheduled for later" in result.stderr
    rows = enrolled(cli, "B")
    assert set(rows) == {"u1", "u2"}
    assert {row["timestart"] for row in rows.values()} == {clock.now()}
    manual = listing(cli, "enrolment", "list", "B")
    assert [(r["username"], r["method"]) for r in manual if r["username"] == "u4"] == [
        ("u4", "manual")
    ]
    assert sorted(m["to"] for m in listing(cli, "mail", "list")) == [
        "u1@example.org",
        "u2@example.org",
    ]

    clock.advance(DAY)
    ok(cli("cron"))
    assert set(enrolled(cli, "B")) == {"u1", "u2", "u5"}
    assert len(listing(cli, "mail", "list")) == 3


def test_backfill_is_refused_by_methods_without_one(cli, site):
    site.course("C")
    site.session.commit()
    refused(cli("instance", "add", "C", "manual", "--backfill"), "has nothing to backfill")
    assert listing(cli, "instance", "list", "C") == []


def test_backfill_with_a_group_a_duration_and_welcomes(completion_site, clock):
    site = completion_site
    completers(site, clock)
    target = lookup.course(site.session, "B")
    settings = {"source": "A", "group": "From A", "duration": str(30 * DAY)}

    result = add_instance(site, target, "completion", settings, backfill=True)

    now = clock.now()
    rows = list_enrolments(site, target)
    assert [row["username"] for row in rows] == ["u1", "u2", "u4", "u5", "u6"]
    assert {(r["timestart"], r["timeend"], tuple(r["groups"])) for r in rows} == {
        (now, now + 30 * DAY, ("From A",))
    }
    assert site.session.scalar(select(func.count()).select_from(MailMessage)) == 5
    with pytest.raises(Refused, match="already has enrolments"):
        site.plugins.method("completion").backfill(site, result.instance)


def test_an_existing_group_is_used_and_a_missing_one_is_created(completion_site):
    site = completion_site
    jean = site.user("jean")
    source = site.course("A")
    target = site.course("B")
    with site.atomic():
        site.session.add(Group(course_id=target.id, name="Existing"))
    kept = site.instance(target, "completion", source="A", group="Existing")
    made = site.instance(target, "completion", source="A", group="Made on demand")
    site.session.commit()

    access.complete_course(site, jean, source, site.now())

    assert [row["groups"] for row in list_enrolments(site, target)] == [
        ["Existing"],
        ["Made on demand"],
    ]
    delete_instance(site, kept)
    delete_instance(site, made)
    names = site.session.scalars(select(Group.name).where(Group.course_id == target.id)).all()
    assert names == ["Existing"]  # the group the instance created goes with it
