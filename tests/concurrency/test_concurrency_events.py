"""Issue 18: the same event sent to two nodes at the same instant (a double click, a load
balancer's retry) gives the same final state, success to both callers and one log entry per
real change. Before: enrol-me and a first course view answered 422 with PostgreSQL's
unique-violation text, a cohort add 409, and a cohort remove logged twice.

Each race is fired several times (different users) with both requests released by a barrier,
one to each node."""

from __future__ import annotations

import itertools

import pytest
from concurrency_nodes import Cluster, factory, race
from enrolkit.models import CohortMember, LogEntry, UserEnrolment
from sqlalchemy import func, select

PAIRS = 4
_names = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}{next(_names)}"


def count(cluster: Cluster, statement) -> int:
    with cluster.site() as site:
        return site.session.scalar(statement)


def logged(cluster: Cluster, event: str, user_id: int, **where) -> int:
    statement = select(func.count()).where(LogEntry.event == event, LogEntry.user_id == user_id)
    for name, value in where.items():
        statement = statement.where(getattr(LogEntry, name) == value)
    return count(cluster, statement)


def enrolments(cluster: Cluster, user_id: int, instance_id: int) -> int:
    return count(
        cluster,
        select(func.count()).where(
            UserEnrolment.user_id == user_id, UserEnrolment.instance_id == instance_id
        ),
    )


def both(cluster: Cluster, path: str, body: dict):
    """The same request to both nodes at once."""
    first, second = cluster.nodes
    return race(lambda: cluster.post(first, path, body), lambda: cluster.post(second, path, body))


def assert_no_leak(*answers) -> None:
    """Success, and nothing of the database's own words anywhere."""
    for answer in answers:
        assert answer.status == 200, answer.body
        text = str(answer.body).lower()
        assert "duplicate key" not in text and "unique" not in text and "psycopg" not in text


def autoenrol_course(cluster: Cluster, mode: str) -> tuple[str, int, list]:
    """A course with an auto-enrol instance in ``mode`` (no rule: everyone qualifies) and
    users who are not enrolled yet."""
    with cluster.site() as site, site.atomic():
        f = factory(site)
        course = f.course(unique("AE"))
        instance = f.instance(course, "autoenrol", mode=mode)
        users = [(u.id, u.username) for u in f.users(PAIRS, prefix=unique("ae"))]
        return course.shortname, instance.id, users


@pytest.mark.parametrize("mode,path", [("confirm", "enrol-me"), ("view", "course-view")])
def test_the_same_enrolling_event_twice_at_once_enrols_once(cluster, mode, path):
    """Enrol-me (confirm mode) and a first course view (view mode) sent to both nodes."""
    course, instance_id, users = autoenrol_course(cluster, mode)
    for user_id, username in users:
        answers = both(cluster, f"/api/v1/events/{path}", {"username": username, "course": course})
        assert_no_leak(*answers)
        assert [a.body["decision"] for a in answers] == ["granted", "granted"]
        assert enrolments(cluster, user_id, instance_id) == 1
        assert logged(cluster, "user_enrolled", user_id, instance_id=instance_id) == 1
        assert logged(cluster, "role_assigned", user_id, instance_id=instance_id) == 1


def cohort_course(cluster: Cluster, members: int, others: int):
    """A cohort synced into a course, with ``members`` members enrolled through it and
    ``others`` users outside it."""
    with cluster.site() as site, site.atomic():
        f = factory(site)
        prefix = unique("co")
        inside = f.users(members, prefix=prefix + "m")
        outside = f.users(others, prefix=prefix + "o")
        cohort = f.cohort(prefix, members=inside)
        course = f.course(prefix.upper())
        instance = f.instance(course, "cohort", cohort=cohort.idnumber)
        as_pairs = [(u.id, u.username) for u in inside], [(u.id, u.username) for u in outside]
        return cohort.id, cohort.idnumber, instance.id, *as_pairs


def members(cluster: Cluster, cohort_id: int, user_id: int) -> int:
    return count(
        cluster,
        select(func.count()).where(
            CohortMember.cohort_id == cohort_id, CohortMember.user_id == user_id
        ),
    )


def test_the_same_cohort_add_twice_at_once_adds_logs_and_enrols_once(cluster):
    cohort_id, idnumber, instance_id, _, outside = cohort_course(cluster, 0, PAIRS)
    for user_id, username in outside:
        answers = both(cluster, f"/api/v1/cohorts/{idnumber}/members", {"usernames": [username]})
        assert_no_leak(*answers)
        assert sorted(a.body["added"] for a in answers) == [[], [username]]
        assert members(cluster, cohort_id, user_id) == 1
        assert logged(cluster, "cohort_member_added", user_id) == 1
        assert enrolments(cluster, user_id, instance_id) == 1
        assert logged(cluster, "user_enrolled", user_id, instance_id=instance_id) == 1


def test_the_same_cohort_remove_twice_at_once_removes_logs_and_unenrols_once(cluster):
    cohort_id, idnumber, instance_id, inside, _ = cohort_course(cluster, PAIRS, 0)
    for user_id, username in inside:
        answers = both(
            cluster, f"/api/v1/cohorts/{idnumber}/members/remove", {"usernames": [username]}
        )
        assert_no_leak(*answers)
        assert sorted(a.body["removed"] for a in answers) == [[], [username]]
        assert members(cluster, cohort_id, user_id) == 0
        assert logged(cluster, "cohort_member_removed", user_id) == 1
        assert enrolments(cluster, user_id, instance_id) == 0
        assert logged(cluster, "user_unenrolled", user_id, instance_id=instance_id) == 1


def test_the_same_completion_twice_at_once_is_recorded_once(cluster):
    with cluster.site() as site, site.atomic():
        f = factory(site)
        course = f.course(unique("DONE"), enablecompletion=True)
        users = [(u.id, u.username) for u in f.users(PAIRS, prefix=unique("cp"))]
        shortname, course_id = course.shortname, course.id
    for user_id, username in users:
        answers = both(
            cluster, "/api/v1/events/completion", {"username": username, "course": shortname}
        )
        assert_no_leak(*answers)
        assert sorted(a.body["recorded"] for a in answers) == [False, True]
        assert logged(cluster, "course_completed", user_id, course_id=course_id) == 1


def test_the_same_login_twice_at_once_enrols_once(cluster):
    """Two logins are two real events (two log entries); the enrolment they bring is one."""
    _, instance_id, users = autoenrol_course(cluster, "login")
    for user_id, username in users:
        answers = both(cluster, "/api/v1/events/login", {"username": username})
        assert_no_leak(*answers)
        assert logged(cluster, "user_loggedin", user_id) == 2
        assert enrolments(cluster, user_id, instance_id) == 1
        assert logged(cluster, "user_enrolled", user_id, instance_id=instance_id) == 1
