"""Category enrolments on a real database (SQLite, and PostgreSQL when ENROLKIT_TEST_POSTGRES_URL
is set): a role held in a category enrols, with that role, into the courses of the category and
its subcategories; unassigning unenrols; moved and new courses follow; the hourly repair."""

from __future__ import annotations

import enrol_category
import pytest
from enrol_category.sync import full_sync
from enrolkit import roles
from enrolkit.catalog import import_courses, move_course
from enrolkit.enrolments import add_instance, unenrol_manually, update_instance
from enrolkit.errors import Refused, SettingsError
from enrolkit.models import (
    CATEGORY,
    Course,
    EnrolInstance,
    Role,
    RoleAssignment,
    User,
    UserEnrolment,
)
from enrolkit.testing import SiteFactory
from sqlalchemy import delete, func, select


@pytest.fixture
def runtime(any_db, make_runtime):
    return make_runtime(plugins=(enrol_category,), url=any_db)


@pytest.fixture
def csite(runtime):
    with runtime.site() as site:
        site.set_method_enabled("category", True)
        yield SiteFactory(site)


def enrolled(site) -> dict[tuple[str, str], list[str]]:
    """(course, username) -> roles the category instance gave."""
    rows: dict[tuple[str, str], list[str]] = {}
    for instance in site.session.scalars(select(EnrolInstance).filter_by(method="category")):
        course = instance.course_id
        users = dict(
            site.session.execute(
                select(User.id, User.username)
                .join(UserEnrolment, UserEnrolment.user_id == User.id)
                .where(UserEnrolment.instance_id == instance.id)
            ).all()
        )
        for user_id, username in users.items():
            given = site.session.scalars(
                select(Role.shortname)
                .join(RoleAssignment, RoleAssignment.role_id == Role.id)
                .where(
                    RoleAssignment.component == "enrol_category",
                    RoleAssignment.itemid == instance.id,
                    RoleAssignment.user_id == user_id,
                )
                .order_by(Role.shortname)
            )
            shortname = site.session.scalar(select(Course.shortname).where(Course.id == course))
            rows[shortname, username] = list(given)
    return rows


def assign(site, role, user, path):
    roles.assign(site.site, site.role(role), user, CATEGORY, site.category(path).id)


def unassign(site, role, user, path):
    roles.unassign(site.site, site.role(role), user, CATEGORY, site.category(path).id)


def test_disabled_by_default_and_never_added_by_hand(runtime):
    with runtime.site() as site:
        factory = SiteFactory(site)
        assert not site.method_enabled("category")
        site.set_method_enabled("category", True)
        with pytest.raises(Refused, match="creates its instances itself"):
            add_instance(site, factory.course("C1"), "category", {})


def test_a_category_role_enrols_into_the_courses_of_a_subcategory(csite):
    csite.course("SCI1", category="Sciences")
    csite.course("PHY1", category="Sciences / Physics")
    csite.course("QM1", category="Sciences / Physics / Quantum")
    csite.course("ART1", category="Arts")
    ann = csite.user("ann")
    assign(csite, "student", ann, "Sciences / Physics")
    assert enrolled(csite) == {("PHY1", "ann"): ["student"], ("QM1", "ann"): ["student"]}
    # One instance per course with someone to enrol.
    assert csite.session.scalar(select(func.count()).select_from(EnrolInstance)) == 2

    unassign(csite, "student", ann, "Sciences / Physics")
    assert enrolled(csite) == {}


def test_only_the_synchronised_roles_count(csite):
    csite.course("PHY1", category="Sciences / Physics")
    ann, bob = csite.users(2)
    assign(csite, "teacher", ann, "Sciences")
    assign(csite, "manager", bob, "Sciences")
    assert enrolled(csite) == {}
    csite.set_method_settings("category", {"roles": "student, teacher"})
    assert csite.method_settings("category")["roles"] == ["student", "teacher"]
    full_sync(csite.site)
    assert enrolled(csite) == {("PHY1", "u1"): ["teacher"]}
    assign(csite, "student", ann, "Sciences / Physics")
    assert enrolled(csite) == {("PHY1", "u1"): ["student", "teacher"]}
    unassign(csite, "teacher", ann, "Sciences")
    assert enrolled(csite) == {("PHY1", "u1"): ["student"]}
    with pytest.raises(SettingsError, match="not a role shortname"):
        csite.set_method_settings("category", {"roles": "student;teacher"})


def test_moved_and_new_courses_follow(csite, tmp_path):
    ann = csite.user("ann")
    assign(csite, "student", ann, "Sciences")
    course = csite.course("LOST", category="Arts")
    assert enrolled(csite) == {}
    move_course(csite.site, course, csite.category("Sciences / Biology"))
    assert enrolled(csite) == {("LOST", "ann"): ["student"]}
    move_course(csite.site, course, csite.category("Arts"))
    assert enrolled(csite) == {}

    csv = tmp_path / "courses.csv"
    csv.write_text("shortname,fullname,category\nNEW1,New course,Sciences / Chemistry\n")
    import_courses(csite.site, csv)
    assert enrolled(csite) == {("NEW1", "ann"): ["student"]}


def test_manual_unenrol_is_refused(csite):
    course = csite.course("PHY1", category="Sciences")
    ann = csite.user("ann")
    assign(csite, "student", ann, "Sciences")
    with pytest.raises(Refused, match="unassign that role in the category instead"):
        unenrol_manually(csite.site, ann, course)


def test_full_sync_catches_up(csite):
    csite.course("PHY1", category="Sciences / Physics")
    ann, bob = csite.users(2)
    csite.set_method_enabled("category", False)
    assign(csite, "student", ann, "Sciences")
    assign(csite, "student", bob, "Sciences / Physics")
    assert "disabled" in full_sync(csite.site) and enrolled(csite) == {}

    csite.set_method_enabled("category", True)
    assert full_sync(csite.site) == (
        "1 instance(s) created; 1 instance(s) checked, 1 re-synced: 2 enrolled, 2 roles_added"
    )
    assert set(enrolled(csite)) == {("PHY1", "u1"), ("PHY1", "u2")}
    csite.session.execute(delete(RoleAssignment).where(RoleAssignment.user_id == bob.id))
    csite.session.commit()
    assert full_sync(csite.site) == (
        "0 instance(s) created; 1 instance(s) checked, 1 re-synced: 1 unenrolled"
    )
    assert full_sync(csite.site) == "0 instance(s) created; 1 instance(s) checked, 0 re-synced"
    assert csite.plugins.tasks["category_sync"].component == "enrol_category"


def test_a_disabled_instance_is_left_alone_until_enabled(csite):
    course = csite.course("PHY1", category="Sciences")
    ann, bob = csite.users(2)
    assign(csite, "student", ann, "Sciences")
    instance = csite.session.scalar(select(EnrolInstance).filter_by(method="category"))
    update_instance(csite.site, instance, {"enabled": "off"})
    assign(csite, "student", bob, "Sciences")
    assert set(enrolled(csite)) == {("PHY1", "u1")}
    update_instance(csite.site, instance, {"enabled": "on"})
    assert set(enrolled(csite)) == {("PHY1", "u1"), ("PHY1", "u2")}
    assert course.id == instance.course_id
