"""Many plans applied as a few engine batches (:meth:`~enrolkit.engine.Engine.apply_many`).

The callers that hold one plan per instance (the scheduled tasks, the drift resync of the
source-driven methods, a login into many courses) give their plans here instead of applying them
one by one: the engine's cost is then per batch and per row, not per instance.

A batch is bounded, by plans and by explicit changes, so a run over 10,000 instances holds
neither 10,000 instance locks nor all their changes at once. Plans are drawn from the iterable
only as a batch fills, so a plan built lazily sees the writes of the batches before it. Two plans
for the same instance never share a batch: the second starts the next one, and so applies after
the first, as it would have one plan at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .engine import Outcome, Plan
    from .site import Site

#: Plans per batch: the instance locks one transaction holds.
PLANS = 500
#: Explicit changes per batch: the rows one transaction loads (a desired state counts as one).
CHANGES = 50_000


@dataclass(frozen=True)
class Applied:
    """One plan and what became of it: its outcome, or (``isolate``) the error that stopped it."""

    plan: Plan
    outcome: Outcome | None = None
    error: Exception | None = None


def apply_batched(
    site: Site,
    plans: Iterable[Plan],
    *,
    dry_run: bool = False,
    isolate: bool = False,
    plans_per_batch: int = PLANS,
    changes_per_batch: int = CHANGES,
) -> Iterator[Applied]:
    """Apply ``plans`` in batches, yielding each plan's :class:`Applied` in the order given.

    Plans apply as the iterator is consumed: iterate it to the end. The mass-removal guard
    decides per plan (a held plan's outcome has ``held_plan_id``; the others are written).
    With ``isolate``, a batch that fails is applied again plan by plan, each in its own
    transaction, so one failing instance is reported (its ``error``) and the others still apply,
    as the scheduled tasks promise; without it the error propagates and the batch is undone.
    """
    batch: list[Plan] = []
    instances: set[int] = set()
    changes = 0
    for plan in plans:
        weight = max(len(plan.changes), 1)
        if batch and (plan.instance_id in instances or changes + weight > changes_per_batch):
            yield from _apply(site, batch, dry_run=dry_run, isolate=isolate)
            batch, instances, changes = [], set(), 0
        batch.append(plan)
        instances.add(plan.instance_id)
        changes += weight
        if len(batch) >= plans_per_batch or changes >= changes_per_batch:
            yield from _apply(site, batch, dry_run=dry_run, isolate=isolate)
            batch, instances, changes = [], set(), 0
    if batch:
        yield from _apply(site, batch, dry_run=dry_run, isolate=isolate)


def apply_all(site: Site, plans: Iterable[Plan], *, dry_run: bool = False) -> None:
    """:func:`apply_batched` for a caller that needs no outcome: every plan applied."""
    for _applied in apply_batched(site, plans, dry_run=dry_run):
        pass


def _apply(site: Site, batch: list[Plan], *, dry_run: bool, isolate: bool) -> Iterator[Applied]:
    try:
        outcomes = site.engine.apply_many(batch, dry_run=dry_run, isolated=isolate)
    except Exception as exc:
        if not isolate:
            raise
        if len(batch) == 1:
            yield Applied(batch[0], error=exc)
            return
        for plan in batch:  # which plan failed: each alone, the others still apply
            yield _alone(site, plan, dry_run=dry_run)
        return
    yield from (Applied(plan, outcome) for plan, outcome in zip(batch, outcomes, strict=True))


def _alone(site: Site, plan: Plan, *, dry_run: bool) -> Applied:
    try:
        return Applied(plan, site.engine.apply(plan, dry_run=dry_run, isolated=True))
    except Exception as exc:
        return Applied(plan, error=exc)


__all__ = ["CHANGES", "PLANS", "Applied", "apply_all", "apply_batched"]
