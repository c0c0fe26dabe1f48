"""The engine on a real database (SQLite, and PostgreSQL when ENROLKIT_TEST_POSTGRES_URL is set):
what a plan leaves in user_enrolments, role_assignments, group_members and the log, and what its
Outcome reports. Everything is checked by reading the tables back."""

from __future__ import annotations

import pytest
from enrolkit import KEEP, SUSPEND, SUSPEND_NOROLES, UNENROL, Change, EnrolMethod, Plan, hookimpl
from enrolkit import engine as engine_module
from enrolkit.changes import RoleChange
from enrolkit.enrolments import enrol_manually, unenrol_manually
from enrolkit.errors import EnrolkitError, Refused
from enrolkit.models import (
    ACTIVE,
    COURSE,
    SUSPENDED,
    Base,
    EnrolInstance,
    Group,
    GroupMember,
    HeldPlan,
    LogEntry,
    RoleAssignment,
    User,
    UserEnrolment,
)
from enrolkit.testing import SiteFactory
from sqlalchemy import func, insert, literal, null, select, text

T1, T2, T3 = 1_790_000_000, 1_800_000_000, 1_810_000_000


class SourceMethod(EnrolMethod):
    """A synced method whose enrolments only its source may remove (like cohort sync)."""

    name = "src"
    title = "Test source"
    manual_unenrol = False


class Boom(Exception):
    pass


class SourcePlugin:
    """Registers the test method and records (or, when ``fail`` is set, breaks) change hooks."""

    def __init__(self) -> None:
        self.enrolments: list = []
        self.roles: list = []
        self.fail = False

    @hookimpl
    def register_methods(self, register):
        register(SourceMethod())

    @hookimpl
    def enrolments_changed(self, site, changes):
        if self.fail:
            raise Boom("hook failed after the writes")
        self.enrolments.append(changes)

    @hookimpl
    def role_assignments_changed(self, site, changes):
        self.roles.append(changes)


@pytest.fixture
def plugin() -> SourcePlugin:
    return SourcePlugin()


@pytest.fixture
def site(any_db, make_runtime, plugin, clock):
    """Like ``db_site`` (every backend), with the test plugin loaded and the clock pinned."""
    runtime = make_runtime(plugins=(plugin,), url=any_db)
    with runtime.site() as site:
        yield SiteFactory(site)


@pytest.fixture
def course(site):
    return site.course("c1")


@pytest.fixture
def src(site, course):
    return site.instance(course, "src")


# --- reading the tables back ------------------------------------------------------------------


def enrolments(site, instance) -> dict[int, tuple[int, int, int]]:
    rows = site.session.execute(
        select(
            UserEnrolment.user_id,
            UserEnrolment.status,
            UserEnrolment.timestart,
            UserEnrolment.timeend,
        ).where(UserEnrolment.instance_id == instance.id)
    )
    return {user_id: (status, start, end) for user_id, status, start, end in rows}


def roles(site, course=None) -> set[tuple[int, int, str, int]]:
    """(user, role, owner component, owner item) of role assignments in courses (or one)."""
    stmt = select(
        RoleAssignment.user_id,
        RoleAssignment.role_id,
        RoleAssignment.component,
        RoleAssignment.itemid,
    ).where(RoleAssignment.contextlevel == COURSE)
    if course is not None:
        stmt = stmt.where(RoleAssignment.instanceid == course.id)
    return set(site.session.execute(stmt))


def members(site) -> set[tuple[int, int, str, int]]:
    """(group, user, owner component, owner item) of every group membership."""
    stmt = select(
        GroupMember.group_id, GroupMember.user_id, GroupMember.component, GroupMember.itemid
    )
    return set(site.session.execute(stmt))


def events(site, instance=None) -> list[tuple[str, int | None]]:
    """(event, user) of the log rows about users."""
    stmt = (
        select(LogEntry.event, LogEntry.user_id)
        .where(LogEntry.user_id.is_not(None))
        .order_by(LogEntry.event, LogEntry.user_id)
    )
    if instance is not None:
        stmt = stmt.where(LogEntry.instance_id == instance.id)
    return list(site.session.execute(stmt))


def snapshot(site) -> dict[str, list]:
    """Every row of every table, in a stable order."""
    site.session.expire_all()
    return {
        table.name: sorted(map(tuple, site.session.execute(select(table))), key=repr)
        for table in Base.metadata.sorted_tables
    }


def desired(users, role=None, start=0, end=0, status=ACTIVE, group=None) -> list[tuple]:
    return [(user.id, role, start, end, status, group) for user in users]


def ids(users) -> list[int]:
    return sorted(user.id for user in users)


def unowned_role(site, user, role, course):
    site.session.add(
        RoleAssignment(role_id=role.id, user_id=user.id, contextlevel=COURSE, instanceid=course.id)
    )
    site.session.flush()


def group(site, course, name):
    found = Group(course_id=course.id, name=name)
    site.session.add(found)
    site.session.flush()
    return found


# --- enrol, update, suspend, unenrol ----------------------------------------------------------


def test_desired_state_enrols_with_role_and_dates(site, course, src):
    users = site.users(3)
    student = site.role("student")
    selection = select(
        User.id.label("user_id"),
        literal(student.id).label("role_id"),
        literal(T1).label("timestart"),
        literal(T2).label("timeend"),
        literal(ACTIVE).label("status"),
        null().label("group_id"),
    ).where(User.id.in_(ids(users)))

    outcome = site.engine.apply(Plan(src.id, reason="cohort sync", desired=selection))

    assert outcome.enrolled == ids(users)
    assert outcome.counts() == {
        **dict.fromkeys(outcome.counts(), 0),
        "enrolled": 3,
        "roles_added": 3,
    }
    assert enrolments(site, src) == {u.id: (ACTIVE, T1, T2) for u in users}
    assert roles(site) == {(u.id, student.id, "enrol_src", src.id) for u in users}
    assert events(site, src) == sorted(
        [("user_enrolled", u.id) for u in users] + [("role_assigned", u.id) for u in users]
    )
    reasons = site.session.scalars(
        select(LogEntry.reason).where(LogEntry.instance_id == src.id, LogEntry.user_id.is_not(None))
    ).all()
    assert len(reasons) == 6 and all(reason.endswith("cohort sync") for reason in reasons)


def test_reapply_touches_only_changed_rows_and_noop_changes_nothing(site, course, src, clock):
    users = site.users(3)
    student = site.role("student")
    rows = desired(users, student.id, T1, T2)
    site.engine.apply(Plan(src.id, reason="sync", desired=rows))
    created = clock.now()
    clock.advance(3600)

    before = snapshot(site)
    noop = site.engine.apply(Plan(src.id, reason="sync", desired=rows))
    assert not noop.changed
    assert snapshot(site) == before

    rows[1] = (users[1].id, student.id, T1, T3, ACTIVE, None)
    rows[2] = (users[2].id, student.id, T1, T2, SUSPENDED, None)
    outcome = site.engine.apply(Plan(src.id, reason="sync", desired=rows))

    assert (outcome.updated, outcome.suspended) == ([users[1].id], [users[2].id])
    assert not outcome.enrolled and not outcome.unenrolled and not outcome.roles_added
    assert enrolments(site, src) == {
        users[0].id: (ACTIVE, T1, T2),
        users[1].id: (ACTIVE, T1, T3),
        users[2].id: (SUSPENDED, T1, T2),
    }
    modified = dict(
        site.session.execute(
            select(UserEnrolment.user_id, UserEnrolment.timemodified).where(
                UserEnrolment.instance_id == src.id
            )
        ).all()
    )
    assert modified == {users[0].id: created, users[1].id: clock.now(), users[2].id: clock.now()}
    new_log = site.session.execute(
        select(LogEntry.event, LogEntry.user_id, LogEntry.reason).where(
            LogEntry.time == clock.now()
        )
    ).all()
    assert sorted(new_log) == [
        ("user_enrolment_updated", users[1].id, "sync"),
        ("user_enrolment_updated", users[2].id, "suspended: sync"),
    ]
    # Suspension keeps the roles the instance gave.
    assert roles(site) == {(u.id, student.id, "enrol_src", src.id) for u in users}


def test_desired_state_adds_and_removes_users_in_one_plan(site, course, src):
    u1, u2, u3, u4 = site.users(4)
    student = site.role("student")
    site.engine.apply(Plan(src.id, reason="sync", desired=desired([u1, u2, u3], student.id)))

    outcome = site.engine.apply(
        Plan(src.id, reason="sync", desired=desired([u2, u3, u4], student.id), removal=UNENROL)
    )

    assert (outcome.enrolled, outcome.unenrolled) == ([u4.id], [u1.id])
    assert (outcome.roles_added, outcome.roles_removed) == (1, 1)
    assert set(enrolments(site, src)) == {u2.id, u3.id, u4.id}
    assert roles(site) == {(u.id, student.id, "enrol_src", src.id) for u in (u2, u3, u4)}


def test_a_desired_state_limited_to_some_users_leaves_the_others_alone(site, course, src):
    u1, u2, u3, u4 = site.users(4)
    student, teacher = site.role("student"), site.role("teacher")
    site.engine.apply(Plan(src.id, reason="sync", desired=desired([u1, u2, u3], student.id)))
    # The source now holds u2 (as teacher), u3 and u4; only u2, u3 and u4 are said to have changed,
    # so u1, although missing from the selection, is neither added nor removed.
    source = desired([u2], teacher.id) + desired([u3, u4], student.id)

    outcome = site.engine.apply(
        Plan(
            src.id, reason="members changed", desired=source, users=[u2.id, u4.id], removal=UNENROL
        )
    )

    assert (outcome.enrolled, outcome.unenrolled) == ([u4.id], [])
    assert set(enrolments(site, src)) == {u1.id, u2.id, u3.id, u4.id}
    assert roles(site) == {
        (u1.id, student.id, "enrol_src", src.id),
        (u2.id, teacher.id, "enrol_src", src.id),
        (u3.id, student.id, "enrol_src", src.id),
        (u4.id, student.id, "enrol_src", src.id),
    }
    # A user in scope but no longer selected gets the removal action; others stay.
    left = site.engine.apply(
        Plan(src.id, reason="left", desired=source, users=[u1.id], removal=UNENROL)
    )
    assert left.unenrolled == [u1.id]
    assert set(enrolments(site, src)) == {u2.id, u3.id, u4.id}


def test_a_held_plan_limited_to_some_users_stays_limited_when_approved(site, src, twenty):
    scope = ids(twenty[:12])
    outcome = site.engine.apply(
        Plan(src.id, reason="twelve left", desired=desired(twenty[12:]), users=scope)
    )
    assert outcome.held_plan_id and outcome.unenrolled == scope

    site.engine.approve(outcome.held_plan_id)

    assert set(enrolments(site, src)) == set(ids(twenty[12:]))


def test_roles_match_the_desired_set_exactly(site, course, src):
    (user,) = site.users(1)
    student, teacher, manager = site.role("student"), site.role("teacher"), site.role("manager")
    both = [(user.id, student.id, 0, 0, ACTIVE, None), (user.id, teacher.id, 0, 0, ACTIVE, None)]
    outcome = site.engine.apply(Plan(src.id, reason="sync", desired=both))
    assert outcome.roles_added == 2
    assert roles(site) == {(user.id, r.id, "enrol_src", src.id) for r in (student, teacher)}

    outcome = site.engine.apply(Plan(src.id, reason="sync", desired=desired([user], manager.id)))

    assert (outcome.roles_added, outcome.roles_removed) == (1, 2)
    assert not outcome.updated
    assert roles(site) == {(user.id, manager.id, "enrol_src", src.id)}
    assert events(site, src)[-3:] == [
        ("role_unassigned", user.id),
        ("role_unassigned", user.id),
        ("user_enrolled", user.id),
    ]


def test_a_plan_leaves_roles_owned_elsewhere_or_unowned_alone(site, course, src):
    """A role the instance drops stays where someone else (another instance, or nobody) gave the
    same role to the same user."""
    user, other_user = site.users(2)
    student, teacher = site.role("student"), site.role("teacher")
    manual = site.instance(course)
    enrol_manually(site, user, course, role=student)
    unowned_role(site, user, student, course)
    unowned_role(site, other_user, student, course)
    site.engine.apply(Plan(src.id, reason="sync", desired=desired([user], student.id)))
    theirs = {
        (user.id, student.id, "enrol_manual", manual.id),
        (user.id, student.id, "", 0),
        (other_user.id, student.id, "", 0),
    }
    assert roles(site) == theirs | {(user.id, student.id, "enrol_src", src.id)}

    outcome = site.engine.apply(Plan(src.id, reason="sync", desired=desired([user], teacher.id)))

    assert (outcome.roles_added, outcome.roles_removed) == (1, 1)
    assert roles(site) == theirs | {(user.id, teacher.id, "enrol_src", src.id)}

    site.engine.apply(Plan(src.id, reason="sync", desired=[], removal=UNENROL, guard=False))
    # Still enrolled manually: the unowned role is not this instance's to take.
    assert roles(site) == theirs


def test_owned_group_memberships_follow_the_desired_state(site, course, src):
    u1, u2, u3 = site.users(3)
    g1, g2 = group(site, course, "G1"), group(site, course, "G2")
    site.session.add(GroupMember(group_id=g1.id, user_id=u3.id))  # unowned
    site.session.add(GroupMember(group_id=g2.id, user_id=u3.id, component="enrol_x", itemid=99))
    site.session.flush()
    outcome = site.engine.apply(
        Plan(
            src.id,
            reason="sync",
            desired=desired([u1, u2], group=g1.id) + desired([u3], group=g1.id),
        )
    )
    assert outcome.groups_added == 2  # u3 is already in G1, unowned: it stays so
    mine = ("enrol_src", src.id)
    theirs = {(g1.id, u3.id, "", 0), (g2.id, u3.id, "enrol_x", 99)}
    assert members(site) == theirs | {(g1.id, u1.id, *mine), (g1.id, u2.id, *mine)}

    outcome = site.engine.apply(
        Plan(src.id, reason="sync", desired=desired([u1], group=g2.id) + desired([u2, u3]))
    )

    assert (outcome.groups_added, outcome.groups_removed) == (1, 2)
    assert not outcome.updated and not outcome.enrolled
    assert members(site) == theirs | {(g2.id, u1.id, *mine)}
    assert ("group_member_removed", u2.id) in events(site, src)


# --- explicit changes -------------------------------------------------------------------------


def test_explicit_changes_enrol_suspend_and_unenrol(site, course, src):
    u1, u2, u3 = site.users(3)
    student = site.role("student")
    assert src.role_id == student.id
    outcome = site.engine.apply(
        Plan(src.id, reason="file", changes=[Change(u.id, timestart=T1) for u in (u1, u2, u3)])
    )
    assert outcome.enrolled == ids([u1, u2, u3])
    assert enrolments(site, src) == {u.id: (ACTIVE, T1, 0) for u in (u1, u2, u3)}
    assert roles(site) == {(u.id, student.id, "enrol_src", src.id) for u in (u1, u2, u3)}

    outcome = site.engine.apply(
        Plan(
            src.id,
            reason="file",
            changes=[
                Change(u1.id, op="suspend", reason="left"),
                Change(u2.id, op="unenrol"),
                Change(u3.id, timeend=T2),  # dates given replace, dates not given stay
            ],
        )
    )

    assert (outcome.suspended, outcome.unenrolled, outcome.updated) == ([u1.id], [u2.id], [u3.id])
    assert outcome.roles_removed == 1
    assert enrolments(site, src) == {u1.id: (SUSPENDED, T1, 0), u3.id: (ACTIVE, T1, T2)}
    assert roles(site) == {(u.id, student.id, "enrol_src", src.id) for u in (u1, u3)}
    reasons = dict(
        site.session.execute(
            select(LogEntry.user_id, LogEntry.reason).where(
                LogEntry.event == "user_enrolment_updated", LogEntry.user_id == u1.id
            )
        ).all()
    )
    assert reasons == {u1.id: "suspended: left"}


def test_explicit_changes_collapse_to_the_last_op_per_user(site, course, src):
    u1, u2, u3 = site.users(3)
    student, teacher = site.role("student"), site.role("teacher")
    site.engine.apply(Plan(src.id, reason="file", changes=[Change(u1.id), Change(u2.id)]))

    outcome = site.engine.apply(
        Plan(
            src.id,
            reason="file",
            changes=[
                Change(u1.id, timestart=T1),
                Change(u1.id, op="unenrol"),
                Change(u2.id, op="unenrol"),
                Change(u2.id, timestart=T2),
                Change(u3.id, role_id=teacher.id),
                Change(u3.id, op="suspend"),
                Change(u3.id, role_id=teacher.id, timeend=T3),
            ],
        )
    )

    assert (outcome.unenrolled, outcome.updated, outcome.enrolled) == ([u1.id], [u2.id], [u3.id])
    assert not outcome.suspended
    assert enrolments(site, src) == {u2.id: (ACTIVE, T2, 0), u3.id: (ACTIVE, 0, T3)}
    assert roles(site) == {
        (u2.id, student.id, "enrol_src", src.id),
        (u3.id, teacher.id, "enrol_src", src.id),
    }


def test_explicit_remove_applies_the_removal_action(site, course, src):
    u1, u2 = site.users(2)
    site.engine.apply(Plan(src.id, reason="file", changes=[Change(u1.id), Change(u2.id)]))
    remove = [Change(u1.id, op="remove")]

    kept = site.engine.apply(Plan(src.id, reason="file", changes=remove, removal=KEEP))
    suspended = site.engine.apply(Plan(src.id, reason="file", changes=remove, removal=SUSPEND))

    assert not kept.changed and suspended.suspended == [u1.id]
    assert enrolments(site, src) == {u1.id: (SUSPENDED, 0, 0), u2.id: (ACTIVE, 0, 0)}
    assert len(roles(site)) == 2


def test_explicit_changes_touch_nobody_else(site, course, src):
    u1, u2 = site.users(2)
    site.engine.apply(
        Plan(src.id, reason="sync", desired=desired([u1, u2], site.role("student").id))
    )
    before = roles(site), enrolments(site, src)

    outcome = site.engine.apply(
        Plan(
            src.id,
            reason="one",
            changes=[Change(u1.id, op="unassign", role_id=site.role("student").id)],
        )
    )

    assert outcome.roles_removed == 1 and not outcome.unenrolled
    assert enrolments(site, src) == before[1]
    assert roles(site) == {r for r in before[0] if r[0] == u2.id}


# --- the last enrolment in a course -----------------------------------------------------------


def test_last_enrolment_in_the_course_removes_unowned_roles_and_groups(site, course, src):
    user, bystander = site.users(2)
    teacher = site.role("teacher")
    other_course = site.course("c2")
    g1 = group(site, course, "G1")
    other_group = group(site, other_course, "H1")
    site.instance(course)
    enrol_manually(site, user, course)
    for who in (user, bystander):
        unowned_role(site, who, teacher, course)
        site.session.add(GroupMember(group_id=g1.id, user_id=who.id))
    unowned_role(site, user, teacher, other_course)
    site.session.add(GroupMember(group_id=other_group.id, user_id=user.id))
    site.session.flush()
    site.engine.apply(Plan(src.id, reason="sync", desired=desired([user, bystander])))

    site.engine.apply(Plan(src.id, reason="sync", desired=[], removal=UNENROL, guard=False))
    # The manual enrolment remains, so do the unowned role and group of user; bystander had
    # only the src enrolment and loses both.
    assert (user.id, teacher.id, "", 0) in roles(site, course)
    assert (bystander.id, teacher.id, "", 0) not in roles(site, course)
    assert (g1.id, user.id, "", 0) in members(site)
    assert (g1.id, bystander.id, "", 0) not in members(site)

    unenrol_manually(site, user, course)

    assert (user.id, teacher.id, "", 0) not in roles(site, course)
    assert (g1.id, user.id, "", 0) not in members(site)
    # Another course is untouched.
    assert site.session.scalar(
        select(RoleAssignment.id).where(
            RoleAssignment.user_id == user.id, RoleAssignment.instanceid == other_course.id
        )
    )
    assert (other_group.id, user.id, "", 0) in members(site)
    removed = [event for event in events(site) if event[1] == bystander.id]
    assert ("role_unassigned", bystander.id) in removed
    assert ("group_member_removed", bystander.id) in removed


# --- manual unenrol and ownership -------------------------------------------------------------


def test_manual_unenrol_is_refused_where_the_method_owns_the_enrolment(site, course, src):
    (user,) = site.users(1)
    site.instance(course)
    enrol_manually(site, user, course)
    site.engine.apply(Plan(src.id, reason="sync", desired=desired([user], site.role("student").id)))
    site.session.commit()
    before = snapshot(site)

    with pytest.raises(Refused) as refused:
        unenrol_manually(site, user, course)

    message = str(refused.value)
    assert f"cannot unenrol u1 from {course.shortname}" in message
    assert "belongs to Test source;" in message  # named, not by its id
    assert "change its source instead" in message
    assert snapshot(site) == before

    with pytest.raises(Refused):
        unenrol_manually(site, user, course, instance_id=src.id)
    assert snapshot(site) == before


def test_manual_enrol_and_unenrol(site, course):
    (user,) = site.users(1)
    teacher = site.role("teacher")

    outcome = enrol_manually(site, user, course, role=teacher, timestart=T1, timeend=T2)

    assert outcome.enrolled == [user.id] and outcome.roles_added == 1
    instance_id = site.session.scalar(select(UserEnrolment.instance_id))
    assert enrolments(site, site.session.get(EnrolInstance, instance_id)) == {
        user.id: (ACTIVE, T1, T2)
    }
    assert roles(site) == {(user.id, teacher.id, "enrol_manual", instance_id)}
    (outcome,) = unenrol_manually(site, user, course)
    assert outcome.unenrolled == [user.id]
    assert not site.session.scalar(select(UserEnrolment.id)) and not roles(site)


# --- removal actions --------------------------------------------------------------------------


@pytest.mark.parametrize("action", [UNENROL, SUSPEND, SUSPEND_NOROLES, KEEP])
def test_removal_action_for_users_leaving_a_desired_state(site, course, src, action):
    stay, leave = site.users(2)
    student = site.role("student")
    g1 = group(site, course, "G1")
    site.set_config("enrol_src", "removal", action)
    site.engine.apply(
        Plan(src.id, reason="sync", desired=desired([stay, leave], student.id, group=g1.id))
    )

    outcome = site.engine.apply(
        Plan(src.id, reason="sync", desired=desired([stay], student.id, group=g1.id))
    )

    mine = ("enrol_src", src.id)
    left = {
        "enrolment": enrolments(site, src).get(leave.id),
        "role": (leave.id, student.id, *mine) in roles(site),
        "group": (g1.id, leave.id, *mine) in members(site),
    }
    expected = {
        UNENROL: {"enrolment": None, "role": False, "group": False},
        SUSPEND: {"enrolment": (SUSPENDED, 0, 0), "role": True, "group": True},
        SUSPEND_NOROLES: {"enrolment": (SUSPENDED, 0, 0), "role": False, "group": True},
        KEEP: {"enrolment": (ACTIVE, 0, 0), "role": True, "group": True},
    }[action]
    assert left == expected
    assert outcome.unenrolled == ([leave.id] if action == UNENROL else [])
    assert outcome.suspended == ([leave.id] if action in (SUSPEND, SUSPEND_NOROLES) else [])
    assert outcome.roles_removed == (1 if action in (UNENROL, SUSPEND_NOROLES) else 0)
    assert enrolments(site, src)[stay.id] == (ACTIVE, 0, 0)

    # A suspended user who comes back is reactivated.
    outcome = site.engine.apply(
        Plan(src.id, reason="sync", desired=desired([stay, leave], student.id, group=g1.id))
    )
    assert enrolments(site, src)[leave.id] == (ACTIVE, 0, 0)
    assert (leave.id, student.id, *mine) in roles(site)
    assert (g1.id, leave.id, *mine) in members(site)


# --- dry run ----------------------------------------------------------------------------------


def test_dry_run_writes_nothing_and_reports_the_diff(site, course, src):
    u1, u2, u3 = site.users(3)
    student, teacher = site.role("student"), site.role("teacher")
    site.engine.apply(Plan(src.id, reason="sync", desired=desired([u1, u2], student.id, T1)))
    site.session.commit()
    before = snapshot(site)
    plan = Plan(
        src.id,
        reason="sync",
        desired=desired([u2], teacher.id, T2) + desired([u3], student.id),
        removal=SUSPEND,
    )

    outcome = site.engine.apply(plan, dry_run=True)

    assert snapshot(site) == before
    assert outcome.dry_run
    assert (outcome.enrolled, outcome.updated, outcome.suspended) == ([u3.id], [u2.id], [u1.id])
    assert (outcome.roles_added, outcome.roles_removed) == (2, 1)
    applied = site.engine.apply(plan)
    assert applied.counts() == outcome.counts() and not applied.dry_run


# --- the mass-removal guard -------------------------------------------------------------------


@pytest.fixture
def twenty(site, src):
    users = site.users(20)
    site.engine.apply(Plan(src.id, reason="sync", desired=desired(users, site.role("student").id)))
    return users


def held_plans(site):
    return site.session.execute(select(HeldPlan.id, HeldPlan.status).order_by(HeldPlan.id)).all()


def test_guard_holds_a_mass_removal_and_approve_applies_it(site, src, twenty):
    site.session.commit()
    before = snapshot(site)

    outcome = site.engine.apply(Plan(src.id, reason="cohort emptied", desired=desired(twenty[:9])))

    assert outcome.held_plan_id is not None
    assert outcome.unenrolled == ids(twenty[9:])
    after = snapshot(site)
    assert {name: rows for name, rows in after.items() if name not in ("held_plans", "log")} == {
        name: rows for name, rows in before.items() if name not in ("held_plans", "log")
    }
    assert held_plans(site) == [(outcome.held_plan_id, "held")]
    held = site.session.get(HeldPlan, outcome.held_plan_id)
    assert held.summary["unenrolled"] == 11 and "would remove 11 of 20" in held.summary["why"]
    (why,) = site.session.scalars(select(LogEntry.reason).where(LogEntry.event == "plan_held"))
    assert f"plan {held.id} held" in why and "cohort emptied" in why

    approved = site.engine.approve(outcome.held_plan_id)

    assert approved.unenrolled == ids(twenty[9:])
    assert set(enrolments(site, src)) == set(ids(twenty[:9]))
    assert held_plans(site) == [(outcome.held_plan_id, "approved")]
    with pytest.raises(EnrolkitError, match="already approved"):
        site.engine.approve(outcome.held_plan_id)


def test_guard_counts_suspensions_and_discard_keeps_everything(site, src, twenty):
    outcome = site.engine.apply(
        Plan(src.id, reason="sync", desired=desired(twenty[:5]), removal=SUSPEND)
    )
    assert outcome.held_plan_id and outcome.suspended == ids(twenty[5:])

    site.engine.discard(outcome.held_plan_id)

    assert held_plans(site) == [(outcome.held_plan_id, "discarded")]
    assert all(status == ACTIVE for status, _, _ in enrolments(site, src).values())
    with pytest.raises(EnrolkitError, match="already discarded"):
        site.engine.approve(outcome.held_plan_id)


def test_a_later_successful_sync_supersedes_a_held_plan(site, src, twenty):
    first = site.engine.apply(Plan(src.id, reason="sync", desired=desired(twenty[:2])))
    second = site.engine.apply(Plan(src.id, reason="sync", desired=desired(twenty[:1])))
    assert held_plans(site) == [(first.held_plan_id, "superseded"), (second.held_plan_id, "held")]

    fine = site.engine.apply(Plan(src.id, reason="source back", desired=desired(twenty[:19])))

    assert fine.held_plan_id is None and fine.unenrolled == [twenty[19].id]
    assert held_plans(site) == [
        (first.held_plan_id, "superseded"),
        (second.held_plan_id, "superseded"),
    ]
    with pytest.raises(EnrolkitError, match="already superseded"):
        site.engine.approve(second.held_plan_id)


def test_below_the_guard_threshold_a_plan_applies(site, course, src, twenty):
    half = site.engine.apply(Plan(src.id, reason="sync", desired=desired(twenty[:10])))
    assert half.held_plan_id is None and len(half.unenrolled) == 10  # 50% is not more than half

    small = site.instance(course, "src")
    few = twenty[:9]
    site.engine.apply(Plan(small.id, reason="sync", desired=desired(few)))
    most = site.engine.apply(Plan(small.id, reason="sync", desired=[]))
    assert most.held_plan_id is None and most.unenrolled == ids(few)  # 9 is fewer than 10
    assert not held_plans(site)


def test_explicit_changes_are_not_guarded_unless_asked(site, src, twenty):
    changes = [Change(u.id, op="unenrol") for u in twenty[:15]]
    with pytest.raises(EnrolkitError, match="only desired-state plans can be held"):
        site.engine.apply(Plan(src.id, reason="file", changes=changes, guard=True))
    assert len(enrolments(site, src)) == 20 and not held_plans(site)

    outcome = site.engine.apply(Plan(src.id, reason="file", changes=changes))
    assert len(outcome.unenrolled) == 15


def test_big_and_small_plans_take_turns_on_one_connection(site, course, src):
    """Past the size where the engine analyzes its work tables (PostgreSQL), and back."""
    site.session.execute(
        insert(User), [{"username": f"bulk{i}", "timecreated": T1} for i in range(1200)]
    )
    everyone = select(User).where(User.username.like("bulk%")).order_by(User.id)
    users = list(site.session.scalars(everyone))
    student = site.role("student")

    big = site.engine.apply(Plan(src.id, reason="sync", desired=desired(users, student.id)))
    small = site.engine.apply(
        Plan(src.id, reason="one", changes=[Change(users[0].id, op="unenrol")])
    )
    again = site.engine.apply(Plan(src.id, reason="sync", desired=desired(users[:700], student.id)))

    assert (len(big.enrolled), big.roles_added) == (1200, 1200)
    assert small.unenrolled == [users[0].id]
    assert (again.enrolled, again.unenrolled) == ([users[0].id], ids(users[700:]))
    assert set(enrolments(site, src)) == set(ids(users[:700]))
    assert roles(site) == {(u.id, student.id, "enrol_src", src.id) for u in users[:700]}


def _analyzed_rows(site, table: str) -> float:
    """The rows PostgreSQL's statistics say ``table`` holds (as of its last ANALYZE)."""
    return site.session.execute(
        text("SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS REGCLASS)"), {"t": table}
    ).scalar_one()


def test_statistics_refresh_when_a_share_of_the_table_changed(site, course, monkeypatch):
    """On PostgreSQL the engine re-analyzes a table its batches changed once the changes since
    its last analyze reach a tenth of the table (autovacuum's scale factor) and ANALYZE_ROWS,
    not after every big batch: a sync in the same transaction plans with fresh statistics, and
    a batch that changes little of a big table does not pay for a sample of it."""
    if site.session.get_bind().dialect.name != "postgresql":
        pytest.skip("SQLite's planner keeps no statistics the engine refreshes")
    monkeypatch.setattr(engine_module, "ANALYZE_ROWS", 50)
    site.session.execute(
        insert(User), [{"username": f"bulk{i}", "timecreated": T1} for i in range(800)]
    )
    users = list(site.session.scalars(select(User).where(User.username.like("bulk%"))))
    first, second = site.instance(course, "src"), site.instance(site.course("c2"), "src")

    def sync(instance, count):
        site.engine.apply(Plan(instance.id, reason="sync", desired=desired(users[:count])))
        return _analyzed_rows(site, "user_enrolments")

    assert sync(first, 600) == 600  # a new table: analyzed at once
    assert sync(second, 40) == 600  # fewer than ANALYZE_ROWS
    assert sync(second, 80) == 680  # 80 since: past a tenth of 600
    assert sync(second, 130) == 680  # 50 since: not past a tenth of 680
    assert sync(second, 160) == 760  # 80 since: past it


# --- failures roll back everything ------------------------------------------------------------


def _busy_plan(site, course, src):
    """A plan that enrols, updates, unenrols and moves roles and groups."""
    u1, u2, u3 = site.users(3)
    g1 = group(site, course, "G1")
    site.engine.apply(
        Plan(src.id, reason="sync", desired=desired([u1, u2], site.role("student").id))
    )
    site.session.commit()
    rows = desired([u2], site.role("teacher").id, T1, group=g1.id) + desired([u3], group=g1.id)
    return Plan(src.id, reason="sync", desired=rows)


def test_a_failure_after_the_writes_leaves_the_database_as_before(site, course, src, plugin):
    plan = _busy_plan(site, course, src)
    before = snapshot(site)
    plugin.fail = True

    with pytest.raises(Boom):
        site.engine.apply(plan)

    assert snapshot(site) == before
    plugin.fail = False
    assert site.engine.apply(plan).enrolled  # and a re-run does the job


def test_a_failing_first_plan_leaves_the_engine_ready_for_the_next(site, course, src, plugin):
    # The temporary tables are created once per connection; a rollback that undid their
    # creation must not leave the engine believing they exist.
    users = site.users(2)
    site.session.commit()
    plugin.fail = True
    with pytest.raises(Boom):
        site.engine.apply(Plan(src.id, reason="sync", desired=desired(users)))
    plugin.fail = False

    assert site.engine.apply(Plan(src.id, reason="sync", desired=desired(users))).enrolled == ids(
        users
    )


def test_a_failure_inside_an_outer_transaction_undoes_the_plan(site, course, src, plugin):
    plan = _busy_plan(site, course, src)
    before = snapshot(site)
    plugin.fail = True

    with pytest.raises(Boom), site.atomic():
        site.set_config("core", "marker", 1)
        site.engine.apply(plan)
    assert snapshot(site) == before

    with site.atomic():
        site.set_config("core", "marker", 2)
        with pytest.raises(Boom):
            site.engine.apply(plan)
    after = snapshot(site)
    assert after["config"] == sorted(before["config"] + [("core", "marker", "2")], key=repr)
    assert {k: v for k, v in after.items() if k != "config"} == {
        k: v for k, v in before.items() if k != "config"
    }


# --- change hooks -----------------------------------------------------------------------------


def test_role_changes_read_like_a_tuple_of_the_records(site, course, src, plugin):
    """The engine builds the role records when a hook reads them; a hook sees a sequence
    that behaves as the tuple it used to get, in user order."""
    u1, u2 = site.users(2)
    student = site.role("student")
    site.engine.apply(Plan(src.id, reason="sync", desired=desired([u2, u1], student.id)))

    (role_changes,) = plugin.roles
    expected = tuple(
        RoleChange(u.id, student.id, COURSE, course.id, True, "enrol_src", src.id)
        for u in sorted([u1, u2], key=lambda u: u.id)
    )
    assert len(role_changes) == 2 and role_changes
    assert role_changes == expected and expected == role_changes
    assert (role_changes[0], role_changes[-1:]) == (expected[0], expected[1:])
    assert list(role_changes) == list(expected) and role_changes + () == expected
    assert () + role_changes == expected and hash(role_changes) == hash(expected)


def test_change_hooks_fire_once_per_batch_with_the_users(site, course, src, plugin):
    u1, u2, u3, u4 = site.users(4)
    student, teacher = site.role("student"), site.role("teacher")
    site.engine.apply(Plan(src.id, reason="sync", desired=desired([u1, u2, u3], student.id)))
    plugin.enrolments.clear(), plugin.roles.clear()

    site.engine.apply(
        Plan(
            src.id,
            reason="nightly",
            desired=desired([u2], teacher.id) + desired([u3], student.id, T1) + desired([u4]),
            removal=UNENROL,
        )
    )

    ((changes,),) = plugin.enrolments
    assert (changes.instance_id, changes.course_id, changes.method) == (src.id, course.id, "src")
    assert (changes.enrolled, changes.updated, changes.unenrolled) == ((u4.id,), (u3.id,), (u1.id,))
    assert changes.reason == "nightly"
    (role_changes,) = plugin.roles
    assert sorted((c.user_id, c.role_id, c.added) for c in role_changes) == sorted(
        [(u1.id, student.id, False), (u2.id, student.id, False), (u2.id, teacher.id, True)]
    )
    assert all(c.component == "enrol_src" and c.itemid == src.id for c in role_changes)

    site.engine.apply(
        Plan(
            src.id,
            reason="nightly",
            desired=desired([u2], teacher.id) + desired([u3], student.id, T1) + desired([u4]),
        )
    )
    assert len(plugin.enrolments) == 1 and len(plugin.roles) == 1  # nothing changed, no call


# --- batches: many plans in one engine pass ---------------------------------------------------


def test_a_batch_applies_each_plan_and_a_held_one_does_not_stop_the_others(
    site, course, src, twenty
):
    other = site.instance(site.course("c2"), "src")
    newcomers = site.users(3, prefix="new")

    held, applied = site.engine.apply_many(
        [
            Plan(src.id, reason="cohort emptied", desired=desired(twenty[:9])),
            Plan(other.id, reason="new cohort", desired=desired(newcomers)),
        ]
    )

    assert held.instance_id == src.id and held.held_plan_id is not None
    assert set(enrolments(site, src)) == set(ids(twenty)), "a held plan writes nothing"
    assert applied.instance_id == other.id and applied.enrolled == ids(newcomers)
    assert set(enrolments(site, other)) == set(ids(newcomers))


def test_a_batch_refuses_two_plans_for_one_instance_and_writes_nothing(site, src):
    users = site.users(2)
    site.session.commit()
    before = snapshot(site)

    with pytest.raises(ValueError, match="one plan per instance"):
        site.engine.apply_many(
            [
                Plan(src.id, reason="a", changes=[Change(users[0].id)]),
                Plan(src.id, reason="b", changes=[Change(users[1].id)]),
            ]
        )

    assert snapshot(site) == before


# --- the temporary tables over a connection's life ----------------------------------------------


def _temp_bytes(site) -> int:
    """Bytes of this connection's temporary tables and their indexes."""
    return site.session.execute(
        text(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.oid = pg_my_temp_schema() AND c.relkind IN ('r', 'i')"
        )
    ).scalar_one()


def test_a_long_lived_connection_does_not_grow_its_temporary_tables(site, course, src, monkeypatch):
    """Autovacuum never visits temporary tables, and small batches empty them with DELETE: a
    pooled connection's tables would grow for its whole life. Every ``TRUNCATE_EVERY`` batches
    they are truncated instead, so many one-user batches end at the size the first one left."""
    if site.session.get_bind().dialect.name != "postgresql":
        pytest.skip("SQLite reuses a deleted row's space; PostgreSQL needs a vacuum or a truncate")
    monkeypatch.setattr(engine_module, "TRUNCATE_EVERY", 100)
    users, student = site.users(20), site.role("student").id
    sizes = []
    for number in range(400):
        op = engine_module.ENROL if number // 20 % 2 == 0 else engine_module.REMOVE
        user = users[number % 20]
        site.engine.apply(Plan(src.id, reason="t", changes=[Change(user.id, op, student)]))
        site.session.commit()
        sizes.append(_temp_bytes(site))
    # Right after a truncation (batch 400 is the 400th on this connection, or close to it).
    assert min(sizes[-100:]) <= sizes[0], (sizes[0], sizes[-100:])
    assert max(sizes) < 2 * sizes[0], (sizes[0], max(sizes))


def _vm_steps(site, work) -> int:
    """Hundreds of SQLite virtual-machine steps ``work`` costs on the site's connection: the
    rows its statements read, whatever the machine's speed."""
    raw = site.session.connection().connection.dbapi_connection
    steps = [0]

    def step() -> int:
        steps[0] += 1
        return 0

    raw.set_progress_handler(step, 100)
    try:
        work()
    finally:
        raw.set_progress_handler(None, 100)
    return steps[0]


def test_a_small_sync_costs_the_same_on_a_site_full_of_enrolments(site, src):
    """SQLite keeps no statistics for the engine's temporary tables and guessed a million rows
    in each: for a sync of a few users it scanned, or built a Bloom filter over, every enrolment
    and role assignment of the site, so a 10,000-member cohort took 0.64 s on a site of a million
    enrolments against 0.17 s on an empty one. Told how small a batch's instances and users
    usually are, it reads only the sync's own rows: the same work on an empty and a full site."""
    if site.session.get_bind().dialect.name != "sqlite":
        pytest.skip("counts SQLite's steps; PostgreSQL plans from the statistics the engine keeps")
    users, student = site.users(5), site.role("student").id
    site.engine.apply(Plan(src.id, reason="warm-up", desired=desired(users, student)))
    component = site.session.scalar(select(RoleAssignment.component).limit(1))

    def sync(name: str, scoped: bool) -> int:
        instance = site.instance(site.course(name), "src")
        plan = Plan(
            instance.id,
            reason="sync",
            desired=desired(users, student),
            users=[user.id for user in users] if scoped else None,
        )
        return _vm_steps(site, lambda: site.engine.apply(plan))

    empty = {scoped: sync(f"empty{scoped}", scoped) for scoped in (False, True)}
    site.session.execute(
        insert(User),
        [
            dict(username=f"filler{i}", email=f"filler{i}@example.org", firstname="F",
                 lastname=str(i), timecreated=T1)
            for i in range(2_000)
        ],
    )  # fmt: skip
    for number in range(10):
        filler = site.instance(site.course(f"filler{number}"), "src")
        fillers = select(User.id).where(User.username.like("filler%"))
        site.session.execute(
            insert(UserEnrolment).from_select(
                ["instance_id", "user_id", "status", "timestart", "timeend", "timecreated",
                 "timemodified"],
                fillers.with_only_columns(
                    literal(filler.id), User.id, literal(ACTIVE), literal(0), literal(0),
                    literal(T1), literal(T1)),
            )
        )  # fmt: skip
        site.session.execute(
            insert(RoleAssignment).from_select(
                ["role_id", "user_id", "contextlevel", "instanceid", "component", "itemid",
                 "timemodified"],
                fillers.with_only_columns(
                    literal(student), User.id, literal(COURSE), literal(filler.course_id),
                    literal(component), literal(filler.id), literal(T1)),
            )
        )  # fmt: skip
    site.session.execute(text("ANALYZE"))  # as a live site's statistics would be
    site.session.commit()
    assert site.session.scalar(select(func.count()).select_from(UserEnrolment)) > 20_000
    sync("warm-up", False)  # the connection loads the new statistics once
    full = {scoped: sync(f"full{scoped}", scoped) for scoped in (False, True)}
    for scoped in (False, True):
        assert full[scoped] < 1.3 * empty[scoped] + 10, (scoped, empty, full)
