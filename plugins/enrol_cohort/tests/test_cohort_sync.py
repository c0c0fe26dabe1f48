"""Cohort sync on a real database (SQLite, and PostgreSQL when ENROLKIT_TEST_POSTGRES_URL is set):
members in, leavers out through the change hooks, the removal action, cohort deletion, the hourly
repair, ownership, groups and the duplicate and availability checks."""

from __future__ import annotations

import enrol_cohort
import pytest
from enrol_cohort.sync import full_sync
from enrolkit.cohorts import add_members, delete_cohort, remove_members
from enrolkit.enrolments import enrol_manually, list_enrolments, unenrol_manually, update_instance
from enrolkit.errors import Refused, SettingsError
from enrolkit.models import (
    CohortMember,
    EnrolInstance,
    Group,
    GroupMember,
    HeldPlan,
    LogEntry,
    RoleAssignment,
)
from enrolkit.testing import SiteFactory
from sqlalchemy import delete, func, insert, select


@pytest.fixture
def csite(any_db, make_runtime):
    """A site with cohort sync loaded, on each database backend."""
    runtime = make_runtime(plugins=(enrol_cohort,), url=any_db)
    with runtime.site() as site:
        yield SiteFactory(site)


def cohort_rows(site, course) -> dict[str, tuple[str, list[str], list[str]]]:
    """username -> (status, roles, groups) of the course's cohort enrolments."""
    return {
        row["username"]: (row["status"], row["roles"], row["groups"])
        for row in list_enrolments(site.site, course)
        if row["method"] == "cohort"
    }


def active(site, course) -> set[str]:
    return {
        name for name, (status, _, _) in cohort_rows(site, course).items() if status == "active"
    }


def test_a_fresh_site_has_cohort_sync_enabled(csite):
    assert csite.method_enabled("cohort")


def test_promotion_cohort_of_three_then_one_joins_and_one_leaves(csite):
    ann, bob, cem, dan = (csite.user(name) for name in ("ann", "bob", "cem", "dan"))
    promo = csite.cohort("promo2026", members=[ann, bob, cem])
    course = csite.course("BIO101")
    csite.instance(course, "cohort", cohort="promo2026")

    student = (["student"], [])
    assert cohort_rows(csite, course) == {n: ("active", *student) for n in ("ann", "bob", "cem")}

    add_members(csite.site, promo, [dan])
    assert active(csite, course) == {"ann", "bob", "cem", "dan"}

    remove_members(csite.site, promo, [bob])
    assert cohort_rows(csite, course) == {n: ("active", *student) for n in ("ann", "cem", "dan")}
    events = csite.session.scalars(
        select(LogEntry.event).where(
            LogEntry.component == "enrol_cohort", LogEntry.user_id == bob.id
        )
    ).all()
    assert events.count("user_unenrolled") == 1 and events.count("role_unassigned") == 1


def test_role_and_several_instances_per_course(csite):
    users = csite.users(2)
    csite.cohort("staff", members=users)
    course = csite.course("C1")
    csite.instance(course, "cohort", cohort="staff", role="teacher")
    csite.instance(course, "cohort", cohort="staff", role="student")
    rows = [r for r in list_enrolments(csite.site, course) if r["username"] == "u1"]
    assert sorted(role for r in rows for role in r["roles"]) == ["student", "teacher"]
    # The same cohort with the same role again is refused, and nothing is created.
    with pytest.raises(SettingsError, match="already synchronised with this role"):
        csite.instance(course, "cohort", cohort="staff", role="teacher")
    assert csite.session.scalar(select(func.count()).select_from(EnrolInstance)) == 2


def test_a_member_joins_and_leaves_every_course_the_cohort_feeds(csite):
    """One membership change syncs all the cohort's instances (one engine batch), each with its
    own role and group; a disabled one syncs nothing."""
    ann, bob = csite.users(2)
    promo = csite.cohort("promo", members=[ann])
    c1, c2, c3 = csite.course("C1"), csite.course("C2"), csite.course("C3")
    csite.instance(c1, "cohort", cohort="promo")
    csite.instance(c2, "cohort", cohort="promo", role="teacher", group="new")
    csite.instance(c3, "cohort", cohort="promo", enabled=False)
    add_members(csite.site, promo, [bob])
    assert cohort_rows(csite, c1)["u2"] == ("active", ["student"], [])
    assert cohort_rows(csite, c2)["u2"] == ("active", ["teacher"], ["promo cohort"])
    assert cohort_rows(csite, c3) == {}
    remove_members(csite.site, promo, [ann])
    assert active(csite, c1) == active(csite, c2) == {"u2"}


def test_changing_the_role_moves_the_owned_role(csite):
    csite.cohort("staff", members=csite.users(3))
    course = csite.course("C1")
    instance = csite.instance(course, "cohort", cohort="staff")
    update_instance(csite.site, instance, {"role": "teacher"})
    assert {r[1][0] for r in cohort_rows(csite, course).values()} == {"teacher"}
    owned = csite.session.scalar(
        select(func.count()).where(
            RoleAssignment.component == "enrol_cohort", RoleAssignment.itemid == instance.id
        )
    )
    assert owned == 3


def test_cohorts_available_to_a_course(csite):
    csite.cohort("site-wide", members=csite.users(1))
    csite.cohort("sciences", category="Sciences")
    csite.cohort("arts", category="Arts")
    course = csite.course("PHY1", category="Sciences / Physics")
    csite.instance(course, "cohort", cohort="site-wide")
    csite.instance(course, "cohort", cohort="sciences")
    with pytest.raises(SettingsError, match="cohort arts belongs to another category"):
        csite.instance(course, "cohort", cohort="arts")
    with pytest.raises(SettingsError, match="no cohort with idnumber 'ghost'"):
        csite.instance(course, "cohort", cohort="ghost")


def test_group_new_is_created_owned_and_numbered(csite):
    users = csite.users(2)
    csite.cohort("alpha", members=users)
    course = csite.course("C1")
    csite.session.add(Group(course_id=course.id, name="alpha cohort"))
    csite.session.flush()
    instance = csite.instance(course, "cohort", cohort="alpha", group="new")
    group = csite.session.scalar(select(Group).where(Group.itemid == instance.id))
    assert (group.name, group.component) == ("alpha cohort (2)", "enrol_cohort")
    assert instance.settings["group"] == "alpha cohort (2)"
    assert {r[2] == ["alpha cohort (2)"] for r in cohort_rows(csite, course).values()} == {True}


def test_existing_group_and_a_missing_one(csite):
    csite.cohort("alpha", members=csite.users(2))
    course = csite.course("C1")
    csite.session.add(Group(course_id=course.id, name="Tutorial A"))
    csite.session.flush()
    with pytest.raises(SettingsError, match="C1 has no group 'Tutorial B'"):
        csite.instance(course, "cohort", cohort="alpha", group="Tutorial B")
    instance = csite.instance(course, "cohort", cohort="alpha", group="Tutorial A")
    members = csite.session.scalars(
        select(GroupMember.component).where(GroupMember.itemid == instance.id)
    ).all()
    assert members == ["enrol_cohort", "enrol_cohort"]


@pytest.mark.parametrize(
    ("removal", "status", "roles"),
    [("unenrol", None, None), ("suspend", "suspended", ["student"]), ("suspend_noroles", "suspended", [])],
)  # fmt: skip
def test_removal_action(csite, removal, status, roles):
    csite.set_method_settings("cohort", {"removal": removal})
    ann, bob = csite.users(2)
    promo = csite.cohort("promo", members=[ann, bob])
    course = csite.course("C1")
    csite.instance(course, "cohort", cohort="promo")
    remove_members(csite.site, promo, [bob])
    left = cohort_rows(csite, course).get("u2")
    assert left == ((status, roles, []) if status else None)
    add_members(csite.site, promo, [bob])
    assert cohort_rows(csite, course)["u2"] == ("active", ["student"], [])


def test_manual_unenrol_is_refused_with_where_to_act(csite):
    ann = csite.user("ann")
    csite.cohort("promo", members=[ann])
    course = csite.course("C1")
    csite.instance(course, "cohort", cohort="promo")
    with pytest.raises(Refused, match="remove the user from the cohort instead"):
        unenrol_manually(csite.site, ann, course)
    assert active(csite, course) == {"ann"}
    # A manual enrolment beside it is the manual method's to remove, once the cohort one is gone.
    enrol_manually(csite.site, ann, course)
    with pytest.raises(Refused):
        unenrol_manually(csite.site, ann, course)
    manual_id = next(
        r["instance"] for r in list_enrolments(csite.site, course) if r["method"] == "manual"
    )
    unenrol_manually(csite.site, ann, course, manual_id)
    assert active(csite, course) == {"ann"}


def test_deleting_the_cohort_removes_the_instance(csite):
    promo = csite.cohort("promo", members=csite.users(3))
    course = csite.course("C1")
    csite.instance(course, "cohort", cohort="promo", group="new")
    delete_cohort(csite.site, promo)
    assert cohort_rows(csite, course) == {}
    assert csite.session.scalar(select(func.count()).select_from(EnrolInstance)) == 0
    assert csite.session.scalar(select(func.count()).select_from(Group)) == 0


def test_deleting_the_cohort_under_suspend_keeps_suspended_enrolments(csite):
    """In every course the cohort feeds (the instances are suspended as one batch)."""
    csite.set_method_settings("cohort", {"removal": "suspend"})
    promo = csite.cohort("promo", members=csite.users(3))
    courses = [csite.course("C1"), csite.course("C2")]
    instances = [csite.instance(course, "cohort", cohort="promo") for course in courses]
    delete_cohort(csite.site, promo)
    suspended = ("suspended", ["student"], [])
    for course, instance in zip(courses, instances, strict=True):
        assert cohort_rows(csite, course) == {name: suspended for name in ("u1", "u2", "u3")}
        assert not csite.session.get(EnrolInstance, instance.id).enabled


def test_full_sync_repairs_changes_made_behind_its_back(csite):
    users = csite.users(6)
    promo = csite.cohort("promo", members=users[:4])
    course = csite.course("C1")
    instance = csite.instance(course, "cohort", cohort="promo")
    # Straight in the database: no hook fires.
    csite.session.execute(
        delete(CohortMember).where(CohortMember.cohort_id == promo.id, CohortMember.user_id == users[0].id)
    )  # fmt: skip
    csite.session.execute(
        insert(CohortMember), [{"cohort_id": promo.id, "user_id": u.id} for u in users[4:]]
    )
    csite.session.execute(
        delete(RoleAssignment).where(
            RoleAssignment.itemid == instance.id, RoleAssignment.user_id == users[1].id
        )
    )
    csite.session.commit()
    assert active(csite, course) == {"u1", "u2", "u3", "u4"}

    result = full_sync(csite.site)
    assert (
        result
        == "1 instance(s) checked, 1 re-synced: 2 enrolled, 1 unenrolled, 3 roles_added, 1 roles_removed"
    )
    assert cohort_rows(csite, course) == {
        f"u{i}": ("active", ["student"], []) for i in (2, 3, 4, 5, 6)
    }
    assert full_sync(csite.site) == "1 instance(s) checked, 0 re-synced"


def test_full_sync_of_several_drifted_instances_holds_one_and_repairs_the_others(csite):
    """The stale instances are re-synced together (one engine batch): the guard still decides
    per instance, so the one that would lose most of its users is held and the others apply."""
    users = csite.users(15)
    small = csite.cohort("small", members=users[:2])
    big = csite.cohort("big", members=users)
    courses = [csite.course(name) for name in ("A", "B", "C")]
    for course, cohort in zip(courses, ("small", "big", "small"), strict=True):
        csite.instance(course, "cohort", cohort=cohort)
    # Straight in the database: no hook fires. A and C gain a member; B loses 12 of 15.
    csite.session.execute(insert(CohortMember), [{"cohort_id": small.id, "user_id": users[2].id}])
    csite.session.execute(
        delete(CohortMember).where(
            CohortMember.cohort_id == big.id, CohortMember.user_id.in_([u.id for u in users[:12]])
        )
    )
    csite.session.commit()

    result = full_sync(csite.site)

    held = csite.session.scalar(select(HeldPlan))
    assert result == (
        f"3 instance(s) checked, 2 re-synced: 2 enrolled, 2 roles_added; "
        f"held as plan {held.id} (would unenrol 12)"
    )
    assert active(csite, courses[0]) == active(csite, courses[2]) == {"u1", "u2", "u3"}
    assert len(active(csite, courses[1])) == 15


def test_full_sync_removes_owned_roles_and_groups_left_without_an_enrolment(csite):
    """A crash or a race (issue 18) left cohort-owned student roles and group memberships of
    users the instance no longer enrols: nobody may remove them by hand (they are owned), so
    the hourly sync must, and log it."""
    users = csite.users(3)
    csite.cohort("promo", members=users[:1])
    course = csite.course("C1")
    group = Group(course_id=course.id, name="Promo", timecreated=0)
    csite.session.add(group)
    csite.session.flush()
    instance = csite.instance(course, "cohort", cohort="promo", group="Promo")
    student = csite.role("student")
    orphans = users[1:]
    csite.session.execute(
        insert(RoleAssignment),
        [
            {"role_id": student.id, "user_id": u.id, "contextlevel": 50, "instanceid": course.id,
             "component": "enrol_cohort", "itemid": instance.id, "timemodified": 0}
            for u in orphans
        ],
    )  # fmt: skip
    csite.session.execute(
        insert(GroupMember),
        [
            {"group_id": group.id, "user_id": u.id, "component": "enrol_cohort",
             "itemid": instance.id, "timeadded": 0}
            for u in orphans
        ],
    )  # fmt: skip
    csite.session.commit()

    result = full_sync(csite.site)

    assert result == "1 instance(s) checked, 1 re-synced: 2 roles_removed, 2 groups_removed"
    owned_roles = csite.session.scalars(
        select(RoleAssignment.user_id).where(RoleAssignment.itemid == instance.id)
    ).all()
    owned_groups = csite.session.scalars(
        select(GroupMember.user_id).where(GroupMember.itemid == instance.id)
    ).all()
    assert owned_roles == owned_groups == [users[0].id]
    logged = csite.session.scalars(
        select(LogEntry.event).where(LogEntry.user_id.in_([u.id for u in orphans]))
    ).all()
    assert sorted(logged) == ["group_member_removed"] * 2 + ["role_unassigned"] * 2
    assert full_sync(csite.site) == "1 instance(s) checked, 0 re-synced"


def test_full_sync_task_is_registered_hourly(csite):
    task = csite.plugins.tasks["cohort_sync"]
    assert (task.component, task.schedule.split()[1:]) == ("enrol_cohort", ["*", "*", "*", "*"])


def test_disabled_method_does_nothing(csite):
    users = csite.users(2)
    promo = csite.cohort("promo", members=users[:1])
    course = csite.course("C1")
    csite.instance(course, "cohort", cohort="promo")
    csite.set_method_enabled("cohort", False)
    add_members(csite.site, promo, users[1:])
    assert active(csite, course) == {"u1"}
    assert "disabled" in full_sync(csite.site)


def test_mass_removal_is_held_by_the_guard(csite):
    users = csite.users(15)
    promo = csite.cohort("promo", members=users)
    course = csite.course("C1")
    csite.instance(course, "cohort", cohort="promo")
    remove_members(csite.site, promo, users[:12])
    assert len(active(csite, course)) == 15
    held = csite.session.scalar(select(HeldPlan))
    assert held.status == "held" and held.summary["unenrolled"] == 12
    csite.engine.approve(held.id)
    assert active(csite, course) == {"u13", "u14", "u15"}


def test_deleted_users_are_not_enrolled(csite):
    ann, bob = csite.users(2)
    bob.deleted = True
    csite.cohort("promo", members=[ann, bob])
    course = csite.course("C1")
    csite.instance(course, "cohort", cohort="promo")
    assert active(csite, course) == {"u1"}
