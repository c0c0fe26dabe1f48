"""A batch of plans (``Engine.apply_many``) leaves the same site as the same plans applied one by
one: random instances, users, desired states and explicit changes, on two identical sites, on
each backend. Plus the cases where a batch has to choose, checked one by one."""

from __future__ import annotations

import re
from collections import Counter
from contextlib import ExitStack

import pytest
from enrolkit import KEEP, SUSPEND, SUSPEND_NOROLES, UNENROL, Change, EnrolMethod, Plan, hookimpl
from enrolkit.engine import OPS
from enrolkit.models import (
    ACTIVE,
    SUSPENDED,
    Group,
    GroupMember,
    HeldPlan,
    LogEntry,
    RoleAssignment,
    User,
    UserEnrolment,
)
from enrolkit.testing import SiteFactory, fresh_database_url, statements
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, literal, null, select

T1, T2 = 1_790_000_000, 1_800_000_000
USERS, COURSES, INSTANCES_PER_COURSE = 6, 2, 2


class SourceMethod(EnrolMethod):
    name = "src"
    title = "Test source"


class SourcePlugin:
    """The test method, and a record of each call of the enrolment change hook."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    @hookimpl
    def register_methods(self, register):
        register(SourceMethod())

    @hookimpl
    def enrolments_changed(self, site, changes):
        self.calls.append(changes)


@pytest.fixture
def plugin() -> SourcePlugin:
    return SourcePlugin()


@pytest.fixture
def two_sites(any_db, request, make_runtime, plugin, clock, tmp_path):
    """Two sites with the same users, courses, ``src`` instances and groups (two per instance,
    of its own), on two databases of the backend under test."""
    backend = request.node.callspec.params["any_db"]
    (tmp_path / "second").mkdir()
    urls = (any_db, fresh_database_url(backend, tmp_path / "second"))
    with ExitStack() as stack:
        sites = []
        for url in urls:
            site = stack.enter_context(make_runtime(plugins=(plugin,), url=url).site())
            f = SiteFactory(site)
            f.users(USERS)
            for number in range(COURSES):
                course = f.course(f"c{number}")
                for _ in range(INSTANCES_PER_COURSE):
                    instance = f.instance(course, "src")
                    for name in ("a", "b"):
                        site.session.add(Group(course_id=course.id, name=f"{instance.id}{name}"))
            # A small guard, so that random plans are sometimes held.
            site.set_config("core", "guard_min", 2)
            site.session.commit()
            sites.append(f)
        yield sites


def _world(site) -> dict:
    """Ids of what the sites share (the same on both)."""
    groups: dict[int, list[int]] = {}
    instances = []
    for group in site.session.scalars(select(Group).order_by(Group.id)):
        instance_id = int(group.name[:-1])
        groups.setdefault(instance_id, []).append(group.id)
        if instance_id not in instances:
            instances.append(instance_id)
    return {
        "users": list(site.session.scalars(select(User.id).order_by(User.id))),
        "roles": [site.role("student").id, site.role("teacher").id],
        "instances": instances,
        "groups": groups,
    }


def _plans(world: dict):
    """A strategy of (initial desired states, a batch of plans) over the shared ids."""
    users = st.sampled_from(world["users"])
    roles = st.sampled_from([None, *world["roles"]])
    starts, ends = st.sampled_from([None, 0, T1]), st.sampled_from([None, 0, T2])

    def rows(instance_id):
        group = st.sampled_from([None, *world["groups"][instance_id]])
        row = st.tuples(
            users, roles, starts, ends, st.sampled_from([ACTIVE, SUSPENDED, None]), group
        )
        return st.lists(row, max_size=6)

    @st.composite
    def plan(draw, instance_id):
        kind = draw(st.sampled_from(("changes", "rows", "select")))
        common = {
            "removal": draw(st.sampled_from([None, UNENROL, SUSPEND, SUSPEND_NOROLES, KEEP])),
            "capacity": draw(st.one_of(st.none(), st.integers(0, 4))),
        }
        if kind == "changes":
            change = st.builds(
                Change,
                user_id=users,
                op=st.sampled_from(OPS),
                role_id=roles,
                timestart=starts,
                timeend=ends,
                group_id=st.sampled_from([None, *world["groups"][instance_id]]),
                reason=st.sampled_from(["", "by hand"]),
                status=st.sampled_from([ACTIVE, SUSPENDED]),
            )
            return Plan(
                instance_id, "changes", changes=draw(st.lists(change, max_size=6)), **common
            )
        scope = draw(st.one_of(st.none(), st.lists(users, max_size=3)))
        guard = draw(st.sampled_from([None, False]))
        if kind == "rows":
            desired = draw(rows(instance_id))
        else:
            chosen = draw(st.lists(users, max_size=5))
            role = draw(st.sampled_from(world["roles"]))
            group = draw(st.sampled_from([None, *world["groups"][instance_id]]))
            desired = select(
                User.id.label("user_id"),
                literal(role).label("role_id"),
                literal(draw(st.sampled_from([0, T1]))).label("timestart"),
                literal(0).label("timeend"),
                literal(ACTIVE).label("status"),
                (literal(group) if group else null()).label("group_id"),
            ).where(User.id.in_(chosen))
        return Plan(instance_id, kind, desired=desired, users=scope, guard=guard, **common)

    initial = st.tuples(*(rows(instance_id) for instance_id in world["instances"]))
    batch = st.lists(
        st.sampled_from(world["instances"]),
        min_size=1,
        max_size=len(world["instances"]),
        unique=True,
    ).flatmap(lambda ids: st.tuples(*(plan(instance_id) for instance_id in ids)))
    return st.tuples(initial, batch)


def _state(site) -> dict:
    """What a user would see: enrolments, roles, groups, held plans and the log (ids aside)."""
    site.session.expire_all()
    log = site.session.execute(
        select(
            LogEntry.time,
            LogEntry.event,
            LogEntry.component,
            LogEntry.course_id,
            LogEntry.user_id,
            LogEntry.instance_id,
            LogEntry.origin,
            LogEntry.reason,
        )
    )
    held = site.session.execute(
        select(HeldPlan.instance_id, HeldPlan.status, HeldPlan.summary, HeldPlan.payload)
    )
    return {
        "enrolments": set(
            site.session.execute(
                select(
                    UserEnrolment.instance_id,
                    UserEnrolment.user_id,
                    UserEnrolment.status,
                    UserEnrolment.timestart,
                    UserEnrolment.timeend,
                )
            )
        ),
        "roles": set(
            site.session.execute(
                select(
                    RoleAssignment.role_id,
                    RoleAssignment.user_id,
                    RoleAssignment.instanceid,
                    RoleAssignment.component,
                    RoleAssignment.itemid,
                )
            )
        ),
        "groups": set(site.session.execute(select(GroupMember.__table__.c[:4]))),
        "log": Counter(
            tuple(re.sub(r"plan \d+ held", "plan held", str(v)) for v in row) for row in log
        ),
        "held": sorted(repr(row) for row in held),
    }


def _reset(site) -> None:
    for model in (UserEnrolment, RoleAssignment, GroupMember, LogEntry, HeldPlan):
        site.session.execute(delete(model))
    site.session.commit()


def _outcome(outcome) -> tuple:
    return (outcome.instance_id, outcome.counts(), outcome.full, outcome.held_plan_id is None)


def test_a_batch_leaves_the_site_as_its_plans_applied_one_by_one(two_sites, plugin):
    batched, single = two_sites
    world = _world(batched)
    assert world == _world(single)

    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case=_plans(world))
    def check(case):
        initial, plans = case
        try:
            for site in (batched, single):
                for instance_id, rows in zip(world["instances"], initial, strict=True):
                    site.engine.apply(Plan(instance_id, "initial", desired=rows, guard=False))
            plugin.calls.clear()

            together = batched.engine.apply_many(plans)
            calls = len(plugin.calls)
            one_by_one = [single.engine.apply(plan) for plan in plans]

            assert [_outcome(o) for o in together] == [_outcome(o) for o in one_by_one]
            assert _state(batched) == _state(single)
            assert calls <= 1, "the change hook fires once per batch"
        finally:
            for site in (batched, single):
                site.session.rollback()
                _reset(site)

    check()


# --- what a batch decides that a single plan never has to -----------------------------------


@pytest.fixture
def site(any_db, make_runtime, plugin, clock):
    runtime = make_runtime(plugins=(plugin,), url=any_db)
    with runtime.site() as site:
        yield SiteFactory(site)


def test_statements_do_not_grow_with_the_plans_of_a_batch(site):
    courses = [site.course(f"c{n}") for n in range(21)]
    instances = [site.instance(course, "src") for course in courses]
    users = site.users(41)
    site.session.commit()
    site.engine.apply(Plan(instances[20].id, "warm-up", changes=[Change(users[40].id)]))

    counted = []
    for first, size in ((0, 1), (1, 20)):
        plans = [
            Plan(instance.id, "login", changes=[Change(users[first + number].id)])
            for number, instance in enumerate(instances[:size])
        ]
        with statements(site.session.get_bind()) as found:
            outcomes = site.engine.apply_many(plans)
        assert all(outcome.enrolled for outcome in outcomes)
        counted.append(len(found))

    one, twenty = counted
    assert twenty <= one + 2, f"1 plan: {one} statements, 20 plans: {twenty}"


def test_one_hook_call_per_batch_with_a_record_per_changed_instance(site, plugin):
    a, b, c = (site.instance(site.course(name), "src") for name in ("a", "b", "c"))
    u1, u2 = site.users(2)
    site.session.commit()

    site.engine.apply_many(
        [
            Plan(a.id, "first", changes=[Change(u1.id)]),
            Plan(b.id, "nothing", changes=[]),
            Plan(c.id, "second", changes=[Change(u1.id), Change(u2.id)]),
        ]
    )

    (call,) = plugin.calls
    assert [(ch.instance_id, ch.reason, ch.enrolled) for ch in call] == [
        (a.id, "first", (u1.id,)),
        (c.id, "second", (u1.id, u2.id)),
    ]


def test_two_instances_adding_one_member_to_a_group_in_a_batch_add_it_once(site):
    course = site.course("c")
    low, high = site.instance(course, "src"), site.instance(course, "src")
    group = Group(course_id=course.id, name="shared")
    site.session.add(group)
    (user,) = site.users(1)
    site.session.commit()

    site.engine.apply_many(
        [
            Plan(high.id, "sync", changes=[Change(user.id, group_id=group.id)]),
            Plan(low.id, "sync", changes=[Change(user.id, group_id=group.id)]),
        ]
    )

    owners = site.session.execute(select(GroupMember.user_id, GroupMember.itemid)).all()
    assert owners == [(user.id, low.id)], "the lower instance owns it, as applied in that order"


def test_the_last_enrolment_of_a_course_leaving_in_a_batch_takes_unowned_roles_once(site):
    course = site.course("c")
    first, second = site.instance(course, "src"), site.instance(course, "src")
    (user,) = site.users(1)
    teacher = site.role("teacher")
    site.session.add(
        RoleAssignment(
            role_id=teacher.id, user_id=user.id, contextlevel="course", instanceid=course.id
        )
    )
    site.session.commit()
    site.engine.apply_many([Plan(i.id, "in", changes=[Change(user.id)]) for i in (first, second)])

    site.engine.apply_many(
        [Plan(i.id, "out", changes=[Change(user.id, op="unenrol")]) for i in (first, second)]
    )

    assert site.session.scalars(select(RoleAssignment.id)).all() == []
    unassigned = site.session.execute(
        select(LogEntry.instance_id).where(
            LogEntry.event == "role_unassigned",
            LogEntry.reason.like(f"role {teacher.shortname}:%"),
        )
    )
    assert unassigned.scalars().all() == [second.id], "once, by the last instance"


def test_a_dry_run_batch_writes_nothing_and_reports_each_plan(site):
    a, b = (site.instance(site.course(name), "src") for name in ("a", "b"))
    u1, u2 = site.users(2)
    site.session.commit()

    outcomes = site.engine.apply_many(
        [
            Plan(a.id, "x", desired=[(u1.id, None, 0, 0, ACTIVE, None)]),
            Plan(b.id, "y", changes=[Change(u2.id)]),
        ],
        dry_run=True,
    )

    assert [(o.instance_id, o.enrolled, o.dry_run) for o in outcomes] == [
        (a.id, [u1.id], True),
        (b.id, [u2.id], True),
    ]
    assert site.session.scalars(select(UserEnrolment.id)).all() == []


def test_a_big_batch_loads_its_rows_in_bulk_and_applies_every_one(site):
    # 700 explicit changes: on PostgreSQL the temporary tables are loaded with COPY.
    a, b = (site.instance(site.course(name), "src") for name in ("a", "b"))
    site.session.execute(
        User.__table__.insert(),
        [{"username": f"bulk{n}", "email": f"bulk{n}@example.org"} for n in range(700)],
    )
    users = site.session.scalars(select(User.id).order_by(User.id)).all()
    site.session.commit()

    enrolled = site.engine.apply_many(
        [
            Plan(a.id, "bulk", changes=[Change(uid, timeend=T2) for uid in users]),
            Plan(b.id, "bulk", changes=[Change(uid) for uid in users[:300]]),
        ]
    )
    removed = site.engine.apply_many(
        [Plan(a.id, "bulk out", changes=[Change(uid, op="unenrol") for uid in users[:600]])]
    )

    assert [len(o.enrolled) for o in enrolled] == [700, 300]
    assert [(len(o.unenrolled), o.roles_removed) for o in removed] == [(600, 600)]
    left = site.session.execute(
        select(UserEnrolment.instance_id, UserEnrolment.timeend).where(
            UserEnrolment.user_id == users[-1]
        )
    )
    assert set(left) == {(a.id, T2)}
    logged = site.session.scalars(
        select(LogEntry.event).where(LogEntry.event.in_(("user_enrolled", "user_unenrolled")))
    ).all()
    assert Counter(logged) == {"user_enrolled": 1000, "user_unenrolled": 600}


def test_selections_of_a_batch_load_together_and_one_with_a_limit_alone(site):
    a, b, c = (site.instance(site.course(name), "src") for name in ("a", "b", "c"))
    users = site.users(4)
    site.session.commit()

    def everyone():
        return select(
            User.id.label("user_id"),
            literal(site.role("student").id).label("role_id"),
            literal(0).label("timestart"),
            literal(0).label("timeend"),
            literal(ACTIVE).label("status"),
            null().label("group_id"),
        )

    outcomes = site.engine.apply_many(
        [
            Plan(a.id, "all", desired=everyone()),
            Plan(b.id, "first two", desired=everyone().order_by(User.id).limit(2)),
            Plan(c.id, "the last", desired=everyone().where(User.id == users[-1].id)),
        ]
    )

    ids = [user.id for user in users]
    assert [o.enrolled for o in outcomes] == [ids, ids[:2], ids[-1:]]
    assert [o.roles_added for o in outcomes] == [4, 2, 1]
