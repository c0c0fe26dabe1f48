"""Plans applied in bounded engine batches (``enrolkit.batches``), on each database backend: the
order of outcomes, one failing instance among many, two plans for one instance, and plans built
lazily after the batches before them were written."""

from __future__ import annotations

import pytest
from enrolkit import Change, Plan
from enrolkit.batches import apply_batched
from enrolkit.errors import NotFound
from enrolkit.models import EnrolInstance, UserEnrolment
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
