"""Issue 16, item 8: the course-completed settings ``keepgroup`` (same-named groups in the
target) and ``unenrol_source`` (leave the completed course), from the command line on SQLite and
PostgreSQL."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def runtime(any_db, make_runtime):
    return make_runtime(entry_points=True, url=any_db)


def ok(result):
    assert result.exit_code == 0, result.output
    return result


def enrolments(cli, course):
    rows = json.loads(ok(cli("enrolment", "list", course, "--json")).stdout)
    return {(r["username"], r["method"]): tuple(r["groups"]) for r in rows}


def test_keepgroup_and_unenrol_source(cli, site):
    site.users(3)
    for name in ("A", "B", "C"):
        site.course(name)
    site.session.commit()
    ok(cli("method", "enable", "completion"))
    for user in ("u1", "u2", "u3"):
        ok(cli("enrolment", "add", user, "A"))
    for group in ("Red", "Blue"):
        ok(cli("group", "add", "A", group))
    ok(cli("group", "enrol", "A", "Red", "u1"))
    ok(cli("group", "enrol", "A", "Blue", "u1", "u2"))
    ok(cli("group", "add", "B", "Red"))  # B has no Blue: it is not created
    ok(cli("group", "add", "C", "Red"))

    ok(cli("instance", "add", "B", "completion", "source=A", "unenrol_source=on"))
    ok(cli("instance", "add", "C", "completion", "source=A", "keepgroup=off"))
    ok(cli("course", "complete", "u1", "A"))
    ok(cli("course", "complete", "u2", "A"))

    assert enrolments(cli, "B") == {("u1", "completion"): ("Red",), ("u2", "completion"): ()}
    assert enrolments(cli, "C") == {("u1", "completion"): (), ("u2", "completion"): ()}
    assert enrolments(cli, "A") == {("u3", "manual"): ()}
    log = json.loads(ok(cli("log", "--course", "A", "--event", "user_unenrolled", "--json")).stdout)
    assert {e["reason"] for e in log} == {"unenrol_source: enrolled in B after completing A"}


def test_deleting_the_completed_course_deletes_the_instances_waiting_for_it(cli, site):
    """As Moodle's listener does: an instance whose source is gone could never act again."""
    site.users(1)
    site.course("A")
    site.course("B")
    site.session.commit()
    ok(cli("method", "enable", "completion"))
    ok(cli("instance", "add", "B", "completion", "source=A"))
    ok(cli("course", "complete", "u1", "A"))
    assert set(enrolments(cli, "B")) == {("u1", "completion")}
    ok(cli("course", "delete", "A"))
    assert json.loads(ok(cli("instance", "list", "B", "--json")).stdout) == []
    assert enrolments(cli, "B") == {}
