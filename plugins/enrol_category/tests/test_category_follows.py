"""Issue 16, items 2 and 10, for category enrolments, from the command line on SQLite and
PostgreSQL: a change of the synchronised roles and a moved category reach the courses at once;
a course where nobody qualifies loses its instance; an unknown role name is refused."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def runtime(any_db, make_runtime):
    return make_runtime(entry_points=True, url=any_db)


def ok(result):
    assert result.exit_code == 0, result.output
    return result


def category_rows(cli, course):
    listing = json.loads(ok(cli("enrolment", "list", course, "--json")).stdout)
    return {(r["username"], tuple(r["roles"])) for r in listing if r["method"] == "category"}


def instances(cli, course):
    listing = json.loads(ok(cli("instance", "list", course, "--json")).stdout)
    return [i["method"] for i in listing]


def test_roles_setting_and_moved_categories_follow_at_once(cli, site):
    site.users(2)
    site.course("PHY1", category="Sciences / Physics")
    site.course("ART1", category="Arts")
    site.session.commit()
    ok(cli("method", "enable", "category"))
    ok(cli("role", "assign", "student", "u1", "--category", "Sciences"))
    ok(cli("role", "assign", "teacher", "u2", "--category", "Sciences"))
    assert category_rows(cli, "PHY1") == {("u1", ("student",))}

    ok(cli("method", "set", "category", "roles=student,teacher"))
    assert category_rows(cli, "PHY1") == {("u1", ("student",)), ("u2", ("teacher",))}
    result = cli("method", "set", "category", "roles=student,profesor")
    assert result.exit_code != 0 and "no role profesor" in result.stderr
    assert "profesor" not in ok(cli("method", "list", "--json")).stdout

    # Physics moves under Arts: its course leaves the Sciences holders at once, and the now
    # useless instance goes, as in Moodle.
    ok(cli("category", "move", "Sciences / Physics", "--to", "Arts"))
    assert category_rows(cli, "PHY1") == set()
    assert instances(cli, "PHY1") == []
    ok(cli("category", "move", "Arts / Physics", "--to", "Sciences"))
    assert category_rows(cli, "PHY1") == {("u1", ("student",)), ("u2", ("teacher",))}

    # No role synchronised: nobody qualifies, every course loses its instance.
    ok(cli("method", "set", "category", "roles="))
    assert category_rows(cli, "PHY1") == set() and instances(cli, "PHY1") == []
    assert "0 re-synced" in ok(cli("task", "run", "category_sync")).stdout


def test_an_instance_goes_when_its_last_holder_does(cli, site):
    site.users(1)
    site.course("PHY1", category="Sciences")
    site.session.commit()
    ok(cli("method", "enable", "category"))
    ok(cli("role", "assign", "student", "u1", "--category", "Sciences"))
    assert instances(cli, "PHY1") == ["category"]
    ok(cli("role", "unassign", "student", "u1", "--category", "Sciences"))
    assert instances(cli, "PHY1") == []
    log = ok(cli("log", "--course", "PHY1", "--event", "enrol_instance_deleted")).stdout
    assert "Category enrolments" in log
