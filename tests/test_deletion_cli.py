"""Issue 16, item 6: ``enrolkit course delete`` and ``enrolkit category delete`` with Moodle's
choice for the content (move it, or delete it), on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def runtime(any_db, make_runtime):
    return make_runtime(entry_points=True, url=any_db)


def ok(result):
    assert result.exit_code == 0, result.output
    return result


def courses_in(site, path):
    from enrolkit import lookup
    from enrolkit.models import Course
    from sqlalchemy import select

    site.session.rollback()
    category = lookup.category(site.session, path)
    return sorted(site.session.scalars(select(Course.shortname).filter_by(category_id=category.id)))


def test_course_delete_takes_enrolments_groups_and_roles(cli, site):
    site.users(2)
    site.course("C1")
    site.session.commit()
    ok(cli("enrolment", "add", "u1", "C1"))
    ok(cli("enrolment", "add", "u2", "C1", "--role", "teacher"))
    ok(cli("group", "add", "C1", "Lab"))
    ok(cli("group", "enrol", "C1", "Lab", "u1"))
    assert "2 enrolment(s) removed" in ok(cli("course", "delete", "C1")).stdout
    log = json.loads(ok(cli("log", "--event", "course_deleted", "--json")).stdout)
    assert [e["reason"] for e in log] == ["C1"]
    missing = cli("course", "delete", "C1")
    assert missing.exit_code == 1 and "no course with shortname 'C1'" in missing.stderr


def test_category_delete_moves_or_deletes_its_content(cli, site):
    site.cohort("sci", members=site.users(1), category="Sciences")
    site.course("PHY1", category="Sciences / Physics")
    site.course("SCI0", category="Sciences")
    site.course("ART1", category="Arts")
    site.session.commit()
    ok(cli("method", "enable", "category"))
    ok(cli("role", "assign", "student", "u1", "--category", "Sciences"))

    refused = cli("category", "delete", "Sciences")
    assert refused.exit_code == 1
    assert "not empty (1 subcategories, 1 courses, 1 cohorts)" in refused.stderr
    assert "--move-to PATH" in refused.stderr and "--delete-content" in refused.stderr
    refused = cli("category", "delete", "Sciences", "--move-to", "Sciences / Physics")
    assert refused.exit_code == 1 and "cannot move the content" in refused.stderr

    out = ok(cli("category", "delete", "Sciences", "--move-to", "Arts")).stdout
    assert "1 subcategories, 1 courses and 1 cohorts moved to Arts" in out
    assert courses_in(site, "Arts") == ["ART1", "SCI0"]
    assert courses_in(site, "Arts / Physics") == ["PHY1"]
    # The category role went with the category, and so did the enrolments it gave.
    rows = json.loads(ok(cli("enrolment", "list", "SCI0", "--json")).stdout)
    assert rows == []

    out = ok(cli("category", "delete", "Arts", "--delete-content")).stdout
    assert "Arts deleted with 1 subcategories, 3 courses, 1 cohorts" in out
    gone = cli("course", "view", "u1", "PHY1")
    assert gone.exit_code == 1 and "no course with shortname 'PHY1'" in gone.stderr
