"""Capacity in the engine: a plan's ``capacity`` caps the enrolments of its instance, reports
who did not fit, and holds when two plans race for the last place (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
from enrolkit import Change, Plan
from enrolkit.models import RoleAssignment, UserEnrolment
from enrolkit.testing import SiteFactory
from sqlalchemy import select


@pytest.fixture
def world(db_site: SiteFactory):
    with db_site.atomic():
        course = db_site.course("C1")
        instance = db_site.instance(course, "manual")
        users = db_site.users(4)
    return db_site, instance, users


def enrolled(site, instance) -> set[int]:
    return set(
        site.session.scalars(
            select(UserEnrolment.user_id).where(UserEnrolment.instance_id == instance.id)
        )
    )


def test_a_plan_enrols_up_to_the_capacity_and_reports_who_did_not_fit(world):
    site, instance, users = world
    with site.atomic():
        site.engine.apply(Plan(instance.id, "first", changes=[Change(users[0].id)]))
        outcome = site.engine.apply(
            Plan(instance.id, "more", changes=[Change(u.id) for u in users[1:]], capacity=3)
        )
    assert outcome.enrolled == [users[1].id, users[2].id]
    assert outcome.full == [users[3].id]
    assert enrolled(site, instance) == {u.id for u in users[:3]}
    roles = site.session.scalars(
        select(RoleAssignment.user_id).where(RoleAssignment.itemid == instance.id)
    ).all()
    assert users[3].id not in roles  # who did not fit gets no role either


def test_a_dry_run_reports_who_would_not_fit(world):
    site, instance, users = world
    with site.atomic():
        outcome = site.engine.apply(
            Plan(instance.id, "try", changes=[Change(u.id) for u in users], capacity=1),
            dry_run=True,
        )
    assert (outcome.enrolled, outcome.full) == ([users[0].id], [u.id for u in users[1:]])
    assert enrolled(site, instance) == set()


def test_places_freed_by_the_same_plan_count_and_a_full_instance_takes_nobody(world):
    site, instance, users = world
    with site.atomic():
        site.engine.apply(Plan(instance.id, "two", changes=[Change(users[0].id)]))
        swap = site.engine.apply(
            Plan(
                instance.id,
                "swap",
                changes=[Change(users[0].id, op="unenrol"), Change(users[1].id)],
                capacity=1,
            )
        )
        none = site.engine.apply(
            Plan(instance.id, "late", changes=[Change(users[2].id)], capacity=1)
        )
    assert (swap.enrolled, swap.unenrolled, swap.full) == ([users[1].id], [users[0].id], [])
    assert (none.enrolled, none.full) == ([], [users[2].id])


def test_two_users_racing_for_the_last_place_one_gets_it_the_other_is_told(world, any_db):
    """Each applies in its own transaction on its own connection; on PostgreSQL both have
    begun, and read, before either applies, so without the engine's lock both would count
    the instance empty and both be enrolled."""
    site, instance, users = world
    runtime_plugins = site.plugins
    from enrolkit.runtime import Runtime

    runtime = Runtime(any_db, runtime_plugins)
    barrier = threading.Barrier(2, timeout=30)
    outcomes: dict[int, object] = {}
    errors: list[BaseException] = []
    postgres = any_db.startswith("postgresql")

    def take(user_id: int) -> None:
        try:
            with runtime.site() as mine:
                if not postgres:  # SQLite's write transaction admits one writer: meet before
                    barrier.wait()
                with mine.atomic():
                    mine.session.execute(select(UserEnrolment.id).limit(1)).all()
                    if postgres:
                        barrier.wait()
                    outcomes[user_id] = mine.engine.apply(
                        Plan(instance.id, "self", changes=[Change(user_id)], capacity=1)
                    )
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=take, args=(u.id,)) for u in users[:2]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    runtime.dispose()
    assert not errors, errors
    won = [uid for uid, outcome in outcomes.items() if outcome.enrolled == [uid]]
    lost = [uid for uid, outcome in outcomes.items() if outcome.full == [uid]]
    assert len(won) == 1 and len(lost) == 1 and set(won + lost) == {users[0].id, users[1].id}
    site.session.rollback()
    assert enrolled(site, instance) == set(won)
