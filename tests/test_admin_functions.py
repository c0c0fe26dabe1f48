"""The core functions behind the web admin's new pages, on SQLite and PostgreSQL: one user
created and deleted, one course saved, several users enrolled from rows."""

from __future__ import annotations

import pytest
from enrolkit import people
from enrolkit.catalog import save_course
from enrolkit.enrolments import enrol_manually
from enrolkit.errors import EnrolkitError
from enrolkit.manual_enrolments import enrol_rows
from enrolkit.models import Course, ProfileData, User, UserEnrolment
from sqlalchemy import func, select


def test_create_and_delete_a_user(db_site):
    site = db_site.site
    user = people.create_user(site, "chloe", {"firstname": "Chloé", "lastname": "B",
                                              "email": "c@example.org",
                                              "profile_field_team": "Blue"})  # fmt: skip
    assert site.session.scalar(select(ProfileData.value).where(ProfileData.user_id == user.id)) == (
        "Blue"
    )
    with pytest.raises(EnrolkitError, match="'chloe' is taken"):
        people.create_user(site, "chloe", {})
    with pytest.raises(EnrolkitError, match="email"):
        people.create_user(site, "dan", {"email": "not an email"})
    assert site.session.scalar(select(User.id).where(User.username == "dan")) is None
    course = db_site.course("C1")
    db_site.cohort("promo", members=[user])
    enrol_manually(site, user, course)
    site.session.commit()
    people.delete_user(site, user)
    site.session.expire_all()
    assert (
        site.session.scalar(
            select(func.count()).select_from(UserEnrolment).where(UserEnrolment.user_id == user.id)
        )
        == 0
    )
    gone = site.session.get(User, user.id)
    assert gone.deleted and gone.suspended
    assert (
        site.session.scalar(
            select(func.count()).select_from(UserEnrolment).where(UserEnrolment.user_id == user.id)
        )
        == 0
    )


def test_save_course_creates_then_updates_and_moves(db_site):
    site = db_site.site
    course, created = save_course(site, {"shortname": "CHEM", "fullname": "Chimie",
                                         "category": "Sciences / Chemistry",
                                         "startdate": "2026-09-01"})  # fmt: skip
    assert created and course.startdate == 1788220800
    again, created = save_course(site, {"shortname": "CHEM", "fullname": "Chimie 2",
                                        "category": "Sciences"})  # fmt: skip
    assert not created and again.id == course.id and again.fullname == "Chimie 2"
    with pytest.raises(EnrolkitError, match="category"):
        save_course(site, {"shortname": "BAD", "category": "A //  / B"})
    assert site.session.scalar(select(Course.id).where(Course.shortname == "BAD")) is None


def test_enrol_rows_enrols_the_good_rows_and_reports_the_others(db_site):
    site = db_site.site
    db_site.course("C1")
    db_site.user("ana")
    db_site.user("ben")
    site.session.commit()
    rows = [(1, {"username": "ana", "course": "C1", "role": "student", "start": "", "end": ""}),
            (2, {"username": "ghost", "course": "C1", "role": "", "start": "", "end": ""}),
            (3, {"username": "ben", "course": "C1", "role": "", "start": "", "end": ""})]  # fmt: skip
    enrolled, updated, errors = enrol_rows(site, rows, "dialog")
    assert (enrolled, updated) == (2, 0)
    assert [(e.line, e.message) for e in errors] == [
        (2, "column username: no user with username 'ghost'")
    ]
