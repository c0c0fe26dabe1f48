"""Pending actions (future-dated changes) and end-date enforcement, on SQLite and PostgreSQL:
what the queue holds, what applying it leaves in the enrolment tables and the log, and that each
action applies exactly once."""

from __future__ import annotations

import pytest
from enrolkit import Change, EnrolMethod, Plan, hookimpl
from enrolkit.clock import parse_time
from enrolkit.errors import EnrolkitError, NotFound
from enrolkit.expiry import enforce_end_dates
from enrolkit.models import (
    ACTIVE,
    SUSPENDED,
    LogEntry,
    PendingAction,
    RoleAssignment,
    User,
    UserEnrolment,
)
from enrolkit.pending import apply_due, cancel, pending, schedule
from enrolkit.tasks import OK, Runner, list_tasks
from enrolkit.testing import SiteFactory
from sqlalchemy import func, select

START = parse_time("2026-10-01T00:00:00Z")
DAY = 86400


class SourceMethod(EnrolMethod):
    """A method with no site settings (so no expiry action)."""

    name = "src"
    title = "Test source"


class Breaker:
    """Registers the test method; fails the change hook for the instances in ``broken``."""

    def __init__(self) -> None:
        self.broken: set[int] = set()

    @hookimpl
    def register_methods(self, register):
        register(SourceMethod())

    @hookimpl
    def enrolments_changed(self, site, changes):
        if any(change.instance_id in self.broken for change in changes):
            raise RuntimeError("welcome mail queue is full")


@pytest.fixture
def breaker() -> Breaker:
    return Breaker()


@pytest.fixture
def rt(any_db, make_runtime, breaker, clock):
    clock.set("2026-09-01T08:00:00Z")
    return make_runtime(plugins=(breaker,), url=any_db)


@pytest.fixture
def site(rt):
    with rt.site() as site:
        yield SiteFactory(site)


@pytest.fixture
def course(site):
    return site.course("c1")


@pytest.fixture
def manual(site, course):
    instance = site.instance(course, "manual")
    site.session.commit()
    return instance


def enrolment(site, instance, user) -> tuple | None:
    """(status, timestart, timeend) of the user's enrolment in the instance, read afresh."""
    site.session.rollback()
    row = site.session.execute(
        select(UserEnrolment.status, UserEnrolment.timestart, UserEnrolment.timeend).where(
            UserEnrolment.instance_id == instance.id, UserEnrolment.user_id == user.id
        )
    ).one_or_none()
    return None if row is None else tuple(row)


def statuses(site) -> list[tuple[str, str]]:
    site.session.rollback()
    return list(
        site.session.execute(
            select(PendingAction.reason, PendingAction.status).order_by(PendingAction.id)
        )
    )


def roles_of(site, course, user) -> list[int]:
    site.session.rollback()
    return list(
        site.session.scalars(
            select(RoleAssignment.role_id).where(
                RoleAssignment.instanceid == course.id, RoleAssignment.user_id == user.id
            )
        )
    )


def enrol_at(site, instance, user, when, reason, **extra):
    return schedule(
        site,
        due=when,
        action=extra.pop("action", "enrol"),
        instance_id=instance.id,
        user_id=user.id,
        timestart=when,
        reason=reason,
        **extra,
    )


# --- the queue ---------------------------------------------------------------------------------


def test_a_later_action_with_the_same_key_replaces_the_pending_one(site, manual):
    u1 = site.user("u1")
    teacher = site.role("teacher")
    enrol_at(site, manual, u1, START, "line 1")
    enrol_at(site, manual, u1, START + DAY, "line 2")
    enrol_at(site, manual, u1, START, "line 3: another role", role_id=teacher.id)
    assert statuses(site) == [
        ("line 1", "replaced"),
        ("line 2", "pending"),
        ("line 3: another role", "pending"),
    ]
    enrol_at(site, manual, u1, START, "line 4", key="flatfile:c1:u1:student")
    enrol_at(site, manual, u1, START, "line 5", key="flatfile:c1:u1:student")
    assert [a.reason for a in pending(site)] == ["line 3: another role", "line 5", "line 2"]
    assert cancel(site, "flatfile:c1:u1:student") == 1
    assert cancel(site, "flatfile:c1:u1:student") == 0
    assert [a.reason for a in pending(site, instance_id=manual.id)] == [
        "line 3: another role",
        "line 2",
    ]


def test_bad_actions_are_refused(site, manual):
    u1 = site.user("u1")
    with pytest.raises(EnrolkitError, match="unknown pending action 'add'"):
        enrol_at(site, manual, u1, START, "x", action="add")
    with pytest.raises(NotFound, match="no enrolment instance 9999"):
        schedule(site, due=START, action="enrol", instance_id=9999, user_id=u1.id, reason="x")
    assert statuses(site) == []


def test_due_actions_apply_once_and_later_ones_wait(site, manual, course, clock):
    u1, u2, u3 = site.users(3)
    site.engine.apply(Plan(manual.id, reason="setup", changes=[Change(u3.id)]))
    enrol_at(site, manual, u1, START, "flat file line 1")
    enrol_at(site, manual, u2, START + DAY, "flat file line 2")
    schedule(
        site, due=START, action="unenrol", instance_id=manual.id, user_id=u3.id, reason="line 3"
    )
    clock.set(START - 1)
    assert apply_due(site) == "applied 0 pending action(s) in 0 instance(s)"
    assert enrolment(site, manual, u1) is None
    clock.set(START)
    assert apply_due(site) == "applied 2 pending action(s) in 1 instance(s)"
    assert enrolment(site, manual, u1) == (ACTIVE, START, 0)
    assert roles_of(site, course, u1) == [site.role("student").id]
    assert enrolment(site, manual, u3) is None
    assert enrolment(site, manual, u2) is None
    assert apply_due(site) == "applied 0 pending action(s) in 0 instance(s)"  # a re-run
    logged = site.session.execute(
        select(LogEntry.event, LogEntry.user_id, LogEntry.reason).where(
            LogEntry.event.in_(["user_enrolled", "user_unenrolled"])
        )
    ).all()
    assert sorted(logged) == sorted(
        [
            ("user_enrolled", u3.id, "setup"),
            ("user_enrolled", u1.id, "flat file line 1"),
            ("user_unenrolled", u3.id, "line 3"),
        ]
    )
    assert statuses(site) == [
        ("flat file line 1", "applied"),
        ("flat file line 2", "pending"),
        ("line 3", "applied"),
    ]


def test_a_failing_instance_keeps_its_actions_for_the_next_run(site, breaker, clock):
    a, b = site.course("a"), site.course("b")
    ia, ib = site.instance(a, "manual"), site.instance(b, "manual")
    u1 = site.user("u1")
    enrol_at(site, ia, u1, START, "into a")
    enrol_at(site, ib, u1, START, "into b")
    breaker.broken = {ia.id}
    clock.set(START)
    with pytest.raises(EnrolkitError) as failed:
        apply_due(site)
    assert str(failed.value).startswith("applied 1 pending action(s) in 1 instance(s); failed: ")
    assert f"instance {ia.id}: RuntimeError: welcome mail queue is full" in str(failed.value)
    assert enrolment(site, ia, u1) is None  # rolled back with its claim
    assert enrolment(site, ib, u1) == (ACTIVE, START, 0)
    assert statuses(site) == [("into a", "pending"), ("into b", "applied")]
    breaker.broken = set()
    assert apply_due(site) == "applied 1 pending action(s) in 1 instance(s)"
    assert enrolment(site, ia, u1) == (ACTIVE, START, 0)
    count = site.session.scalar(
        select(func.count()).where(LogEntry.event == "user_enrolled", LogEntry.user_id == u1.id)
    )
    assert count == 2  # once per course


def test_gone_users_are_cancelled_and_disabled_methods_wait(site, manual, clock):
    u1, u2 = site.users(2)
    enrol_at(site, manual, u1, START, "for u1")
    enrol_at(site, manual, u2, START, "for u2")
    site.session.get(User, u2.id).deleted = True
    site.set_method_enabled("manual", False)
    site.session.commit()
    clock.set(START)
    assert apply_due(site) == (
        "applied 0 pending action(s) in 0 instance(s); 1 wait for a disabled method; "
        "1 cancelled (user or instance gone)"
    )
    assert statuses(site) == [("for u1", "pending"), ("for u2", "cancelled")]
    site.set_method_enabled("manual", True)
    site.session.commit()
    assert apply_due(site) == "applied 1 pending action(s) in 1 instance(s)"
    assert enrolment(site, manual, u1) == (ACTIVE, START, 0)


def test_the_core_task_applies_due_actions_every_minute(rt, site, manual, clock):
    u1 = site.user("u1")
    enrol_at(site, manual, u1, START, "delayed after completion")
    site.session.commit()
    clock.set(START - 60)
    tasks = {info.name: info for info in list_tasks(site)}
    assert tasks["apply_pending_actions"].schedule == "* * * * *"
    assert tasks["apply_pending_actions"].next_run == START - 60  # never run: due at once
    clock.set(START)
    outcome = next(o for o in Runner(rt).cron() if o.name == "apply_pending_actions")
    assert (outcome.status, outcome.result) == (OK, "applied 1 pending action(s) in 1 instance(s)")
    assert enrolment(site, manual, u1) == (ACTIVE, START, 0)
    origin = site.session.scalar(
        select(LogEntry.origin).where(LogEntry.event == "user_enrolled", LogEntry.user_id == u1.id)
    )
    assert origin == "cron"


# --- end dates -----------------------------------------------------------------------------------


@pytest.fixture
def ended(site, manual, clock):
    """u1 ended yesterday, u2 ends tomorrow, u3 never ends, u4 ended and is already suspended."""
    users = site.users(4)
    now = clock.set("2026-09-01T08:00:00Z")
    plan = [
        Change(users[0].id, timeend=now - DAY),
        Change(users[1].id, timeend=now + DAY),
        Change(users[2].id, timeend=0),
        Change(users[3].id, timeend=now - DAY),
    ]
    site.engine.apply(Plan(manual.id, reason="setup", changes=plan))
    site.engine.apply(Plan(manual.id, reason="setup", changes=[Change(users[3].id, op="suspend")]))
    return users


def states(site, instance, users) -> list:
    return [None if (e := enrolment(site, instance, u)) is None else e[0] for u in users]


@pytest.mark.parametrize(
    ("action", "after", "processed"),
    [
        ("suspend", [SUSPENDED, ACTIVE, ACTIVE, SUSPENDED], 1),
        ("suspend_noroles", [SUSPENDED, ACTIVE, ACTIVE, SUSPENDED], 1),
        ("unenrol", [None, ACTIVE, ACTIVE, None], 2),
        ("keep", [ACTIVE, ACTIVE, ACTIVE, SUSPENDED], 0),
    ],
)
def test_ended_enrolments_get_the_methods_expiry_action(
    site, manual, course, ended, action, after, processed
):
    site.set_method_settings("manual", {"expiry_action": action})
    site.session.commit()
    summary = enforce_end_dates(site)
    assert summary == f"{processed} ended enrolment(s) processed in {min(processed, 1)} instance(s)"
    assert states(site, manual, ended) == after
    student = site.role("student").id
    kept_role = action in ("suspend", "keep")
    assert roles_of(site, course, ended[0]) == ([student] if kept_role else [])
    assert enforce_end_dates(site).startswith("0 ended enrolment(s)")  # nothing twice
    if processed:
        reason = site.session.scalar(
            select(LogEntry.reason)
            .where(LogEntry.user_id == ended[0].id, LogEntry.event != "role_unassigned")
            .order_by(LogEntry.id.desc())
        )
        assert reason.endswith("enrolment ended 2026-08-31T08:00:00Z")


def test_methods_without_the_setting_or_disabled_keep_ended_enrolments(site, course, clock):
    src = site.instance(course, "src")
    u1 = site.user("u1")
    now = clock.now()
    site.engine.apply(Plan(src.id, reason="setup", changes=[Change(u1.id, timeend=now - 1)]))
    manual = site.instance(course, "manual")
    site.engine.apply(Plan(manual.id, reason="setup", changes=[Change(u1.id, timeend=now)]))
    site.set_method_settings("manual", {"expiry_action": "unenrol"})
    site.set_method_enabled("manual", False)
    site.session.commit()
    assert enforce_end_dates(site) == "0 ended enrolment(s) processed in 0 instance(s)"
    assert states(site, src, [u1]) == states(site, manual, [u1]) == [ACTIVE]
    site.set_method_enabled("manual", True)  # ends exactly now: ended
    site.session.commit()
    assert enforce_end_dates(site) == "1 ended enrolment(s) processed in 1 instance(s)"
    assert states(site, manual, [u1]) == [None] and states(site, src, [u1]) == [ACTIVE]
