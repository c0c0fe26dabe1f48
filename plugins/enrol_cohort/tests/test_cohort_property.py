"""A property: whatever happens to a cohort (members joining and leaving through the hooks, changes
made behind cohort sync's back then repaired by the hourly task, manual enrolments and refused
manual unenrolments and role removals), after each step the course's cohort enrolments are the
cohort's members: active, with the instance's role and group; leavers get the removal action."""

from __future__ import annotations

import itertools

import enrol_cohort
import pytest
from enrol_cohort.sync import full_sync
from enrolkit import roles
from enrolkit.cohorts import add_members, remove_members
from enrolkit.enrolments import enrol_manually, unenrol_manually
from enrolkit.errors import EnrolkitError
from enrolkit.models import (
    ACTIVE,
    COURSE,
    CohortMember,
    EnrolInstance,
    Group,
    GroupMember,
    Role,
    RoleAssignment,
    User,
    UserEnrolment,
)
from enrolkit.testing import SiteFactory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, insert, select

USERS = 6
user_index = st.integers(0, USERS - 1)
step = st.one_of(
    st.tuples(st.sampled_from(["join", "leave", "join unseen", "leave unseen"]), user_index),
    st.tuples(st.sampled_from(["enrol by hand", "unenrol by hand", "remove role"]), user_index),
    st.tuples(st.just("sync"), st.just(0)),
)
examples = itertools.count()


@pytest.fixture
def csite(any_db, make_runtime):
    runtime = make_runtime(plugins=(enrol_cohort,), url=any_db)
    with runtime.site() as site:
        yield SiteFactory(site)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    removal=st.sampled_from(["unenrol", "suspend", "suspend_noroles"]),
    initial=st.sets(user_index),
    steps=st.lists(step, max_size=14),
)
def test_cohort_enrolments_follow_the_members(csite, removal, initial, steps):
    site = csite.site
    n = next(examples)
    csite.set_method_settings("cohort", {"removal": removal})
    users = csite.users(USERS, prefix=f"e{n}u")
    cohort = csite.cohort(f"e{n}", members=[users[i] for i in initial])
    course = csite.course(f"E{n}")
    csite.instance(course, "cohort", cohort=f"e{n}", group="new")
    student = csite.role("student")
    group = f"e{n} cohort"
    members = {users[i].username for i in initial}
    ever = set(members)

    for action, i in steps:
        user = users[i]
        if action == "join":
            add_members(site, cohort, [user])
            members.add(user.username)
        elif action == "leave":
            remove_members(site, cohort, [user])
            members.discard(user.username)
        elif action in ("join unseen", "leave unseen"):
            # A change no hook reports; the hourly task must repair it.
            with site.atomic():
                gone = delete(CohortMember).where(
                    CohortMember.cohort_id == cohort.id, CohortMember.user_id == user.id
                )
                site.session.execute(gone)
                if action == "join unseen":
                    row = {"cohort_id": cohort.id, "user_id": user.id}
                    site.session.execute(insert(CohortMember), [row])
                    members.add(user.username)
                else:
                    members.discard(user.username)
            full_sync(site)
        elif action == "enrol by hand":
            enrol_manually(site, user, course)
        elif action == "unenrol by hand":
            try:
                unenrol_manually(site, user, course)
                # Only a leaver's suspended enrolment may go by hand (Moodle's "Unenrol
                # suspended users"): the instance owns nothing of theirs any more.
                ever.discard(user.username)
            except EnrolkitError as refusal:
                # Refused for a cohort enrolment; or the user is not enrolled at all.
                assert "remove the user from the cohort" in str(refusal) or "not enrolled" in str(
                    refusal
                )
        elif action == "remove role":
            try:
                roles.unassign(site, student, user, COURSE, course.id)
            except EnrolkitError as refusal:  # owned by cohort sync or the manual instance
                assert "remove it at its source" in str(refusal)
        else:
            full_sync(site)
        ever |= members
        check(csite, course, members, ever, removal, group)


def check(csite, course, members, ever, removal, group):
    """Read the instance's enrolments, owned roles and owned groups back from the tables."""
    instance = csite.session.scalar(
        select(EnrolInstance).where(EnrolInstance.course_id == course.id, EnrolInstance.method == "cohort")
    )  # fmt: skip
    owned = {"component": "enrol_cohort", "itemid": instance.id}
    roles_of = dict(
        csite.session.execute(
            select(RoleAssignment.user_id, Role.shortname)
            .join(Role, Role.id == RoleAssignment.role_id)
            .filter_by(**owned)
        ).all()
    )
    groups_of = dict(
        csite.session.execute(
            select(GroupMember.user_id, Group.name)
            .join(Group, Group.id == GroupMember.group_id)
            .where(GroupMember.component == "enrol_cohort", GroupMember.itemid == instance.id)
        ).all()
    )
    rows = {
        username: (
            "active" if status == ACTIVE else "suspended",
            roles_of.get(user_id),
            groups_of.get(user_id),
        )
        for user_id, username, status in csite.session.execute(
            select(User.id, User.username, UserEnrolment.status)
            .join(UserEnrolment, UserEnrolment.user_id == User.id)
            .where(UserEnrolment.instance_id == instance.id)
        )
    }
    expected = {name: ("active", "student", group) for name in members}
    leavers = ever - members
    if removal == "suspend":
        expected |= {name: ("suspended", "student", group) for name in leavers}
    elif removal == "suspend_noroles":
        expected |= {name: ("suspended", None, group) for name in leavers}
    assert rows == expected
    assert len(roles_of) == csite.session.scalar(
        select(func.count()).select_from(RoleAssignment).filter_by(**owned)
    )
