"""Plans applied in bounded engine batches (``enrolkit.batches``), on each database backend: the
order of outcomes, one failing instance among many, two plans for one instance, and plans built
lazily after the batches before them were written."""

from __future__ import annotations

import pytest
from enrolkit import Change, Plan, hookimpl
from enrolkit.batches import apply_batched
from enrolkit.errors import NotFound
from enrolkit.models import Course, EnrolInstance, LogEntry, User, UserEnrolment
from enrolkit.testing import SiteFactory
from sqlalchemy import delete, func, select


@pytest.fixture
def site(any_db, make_runtime):
    with make_runtime(url=any_db).site() as site:
        yield SiteFactory(site)


def _enrolled(site, instance) -> set[int]:
    return set(
        site.session.scalars(
            select(UserEnrolment.user_id).where(UserEnrolment.instance_id == instance.id)
        )
    )


def test_an_instance_that_fails_is_reported_and_the_others_still_apply(site):
    """An instance deleted between planning and applying (a concurrent admin) fails alone."""
    ann, bob = site.users(2)
    first, gone, last = (site.instance(site.course(name), "manual") for name in ("A", "B", "C"))
    plans = [
        Plan(instance.id, "test", changes=[Change(ann.id), Change(bob.id)])
        for instance in (first, gone, last)
    ]
    gone_id = gone.id
    site.session.execute(delete(EnrolInstance).where(EnrolInstance.id == gone_id))
    site.session.commit()

    results = list(apply_batched(site.site, plans, isolate=True))

    assert [r.plan.instance_id for r in results] == [first.id, gone_id, last.id]
    assert isinstance(results[1].error, NotFound) and results[1].outcome is None
    assert [r.outcome.enrolled for r in (results[0], results[2])] == [[ann.id, bob.id]] * 2
    assert _enrolled(site, first) == _enrolled(site, last) == {ann.id, bob.id}


def test_without_isolate_a_failing_instance_undoes_its_batch(site):
    ann = site.user("ann")
    first, gone = (site.instance(site.course(name), "manual") for name in ("A", "B"))
    plans = [Plan(i.id, "test", changes=[Change(ann.id)]) for i in (first, gone)]
    site.session.execute(delete(EnrolInstance).where(EnrolInstance.id == gone.id))
    site.session.commit()

    with pytest.raises(NotFound):
        list(apply_batched(site.site, plans))
    assert _enrolled(site, first) == set()


def test_two_plans_for_one_instance_apply_in_turn(site):
    ann = site.user("ann")
    manual = site.instance(site.course("A"), "manual")
    plans = [
        Plan(manual.id, "joins", changes=[Change(ann.id)]),
        Plan(manual.id, "leaves", changes=[Change(ann.id, op="unenrol")], removal="unenrol"),
    ]

    joined, left = list(apply_batched(site.site, plans))

    assert (joined.outcome.enrolled, left.outcome.unenrolled) == ([ann.id], [ann.id])
    assert _enrolled(site, manual) == set()


def test_batches_are_bounded_and_later_plans_see_earlier_batches(site):
    """Five plans, two per batch: a plan built lazily sees what the batches before it wrote."""
    ann = site.user("ann")
    instances = [site.instance(site.course(f"C{n}"), "manual") for n in range(5)]
    site.session.commit()
    seen = []

    def plans():
        for instance in instances:
            seen.append(site.session.scalar(select(func.count()).select_from(UserEnrolment)))
            yield Plan(instance.id, "test", changes=[Change(ann.id)])

    results = list(apply_batched(site.site, plans(), plans_per_batch=2))

    assert [len(r.outcome.enrolled) for r in results] == [1] * 5
    assert seen == [0, 0, 2, 2, 4]


# --- a batch inside a transaction that is already open ---------------------------------------


class FailingHook:
    """Fails the change hook of a batch that changes enrolments in one instance: by then the
    batch has written its enrolments, roles and log rows."""

    def __init__(self) -> None:
        self.instance_id = 0

    @hookimpl
    def enrolments_changed(self, site, changes):
        if any(change.instance_id == self.instance_id for change in changes):
            raise RuntimeError("the hook fails")


@pytest.fixture
def failing(any_db, make_runtime):
    hook = FailingHook()
    with make_runtime(plugins=(hook,), url=any_db).site() as site:
        factory = SiteFactory(site)
        factory.user("ann")
        instances = [factory.instance(factory.course(name), "manual") for name in "ABC"]
        hook.instance_id = instances[1].id
        site.session.commit()
        yield factory, [instance.id for instance in instances]


def _ann_in(site, instance_id: int) -> bool:
    ann = site.session.scalar(select(User.id).where(User.username == "ann"))
    found = select(UserEnrolment.id).where(
        UserEnrolment.instance_id == instance_id, UserEnrolment.user_id == ann
    )
    return site.session.scalar(found) is not None


def test_inside_a_transaction_an_isolated_batch_that_fails_undoes_only_itself(failing):
    """What the transaction did before, and the other instances, are kept (a savepoint), even
    in a block that says it is all or nothing."""
    site, ids = failing
    ann = site.session.scalar(select(User.id).where(User.username == "ann"))
    plans = [Plan(instance_id, "test", changes=[Change(ann)]) for instance_id in ids]

    with site.site.atomic(whole=True):
        site.course("D")
        results = list(apply_batched(site.site, plans, isolate=True))

    assert [type(result.error) for result in results] == [type(None), RuntimeError, type(None)]
    assert [_ann_in(site, instance_id) for instance_id in ids] == [True, False, True]
    assert site.session.scalar(select(Course.id).where(Course.shortname == "D"))
    logged = select(LogEntry.instance_id).where(LogEntry.event == "user_enrolled")
    assert sorted(site.session.scalars(logged)) == [ids[0], ids[2]]


def test_a_batch_failure_caught_in_an_all_or_nothing_block_rolls_the_block_back(failing):
    """A batch inside a block that is all or nothing takes no savepoint (a request's change):
    if its error is caught anyway and the block goes on, the block refuses to commit what the
    batch half-wrote."""
    site, ids = failing
    ann = site.session.scalar(select(User.id).where(User.username == "ann"))

    with pytest.raises(RuntimeError, match="rolled back rather than committed half-done"):
        with site.site.atomic(whole=True):
            site.course("D")
            with pytest.raises(RuntimeError, match="the hook fails"):
                site.engine.apply(Plan(ids[1], "test", changes=[Change(ann)]))

    assert not _ann_in(site, ids[1])
    assert site.session.scalar(select(Course.id).where(Course.shortname == "D")) is None
    enrolled = select(func.count()).where(LogEntry.event == "user_enrolled")
    assert site.session.scalar(enrolled) == 0


def test_an_all_or_nothing_block_inside_a_transaction_fails_alone(failing):
    """Opened inside a transaction, the block is a savepoint of its own: its failure undoes it
    and the batch inside it, and the transaction goes on."""
    site, ids = failing
    ann = site.session.scalar(select(User.id).where(User.username == "ann"))

    with site.site.atomic():
        site.course("D")
        with pytest.raises(RuntimeError, match="the hook fails"), site.site.atomic(whole=True):
            site.engine.apply(Plan(ids[0], "test", changes=[Change(ann)]))
            site.engine.apply(Plan(ids[1], "test", changes=[Change(ann)]))

    assert [_ann_in(site, instance_id) for instance_id in ids] == [False, False, False]
    assert site.session.scalar(select(Course.id).where(Course.shortname == "D"))
