"""Enforcing enrolment end dates: what happens to an enrolment once its ``timeend`` has passed.

Moodle's ``process_expirations``: each method's :meth:`EnrolMethod.expiry_action` (unenrol,
suspend, suspend_noroles or keep) decides: by default the method's site setting
``expiry_action``, else its ``default_expiry_action``; ``keep`` leaves the ended enrolments (they
simply stop counting, since a user is in a course only while an enrolment is current). Methods
that are disabled on the site are left alone. ``unenrol`` removes every ended enrolment, suspended
ones included; the suspending actions touch only active ones, so a run repeats nothing.
"""

from __future__ import annotations

import warnings
from collections import defaultdict

from sqlalchemy import select

from . import clock
from .batches import apply_batched
from .engine import REMOVE, Change, Plan
from .errors import EnrolkitError
from .methods import KEEP, REMOVAL_ACTIONS, UNENROL
from .models import ACTIVE, EnrolInstance, UserEnrolment
from .site import Site
from .tasks import failure, summary
from .texts import Text

#: The site setting :meth:`EnrolMethod.expiry_action` reads by default.
SETTING = "expiry_action"


def expiry_action(site: Site, method: str) -> str:
    """Deprecated: ``site.plugins.method(name).expiry_action(site)``, the method's declared
    contract (this function ignored a method's own ``expiry_action`` and its default)."""
    warnings.warn(
        "enrolkit.expiry.expiry_action(site, name) is deprecated and goes in the next release; "
        "use site.plugins.method(name).expiry_action(site)",
        DeprecationWarning,
        stacklevel=2,
    )
    return site.plugins.method(method).expiry_action(site)


def _action(site: Site, name: str) -> str:
    action = site.plugins.method(name).expiry_action(site)
    if action not in REMOVAL_ACTIONS:
        raise EnrolkitError(
            f"expiry action {action!r} is not one of {', '.join(REMOVAL_ACTIONS)}; "
            f"fix the method's expiry_action()"
        )
    return action


def enforce_end_dates(site: Site) -> str:
    """Apply each enabled method's expiry action to its enrolments whose end date has passed
    (``0 < timeend <= now``), one plan per instance, in engine batches. An instance that fails
    is reported at the end; the others still apply."""
    now = site.now()
    changed, instances, failures = 0, 0, []
    for method in site.enabled_methods():
        try:
            action = _action(site, method)
        except EnrolkitError as exc:
            failures.append(failure(method, exc))
            continue
        if action == KEEP:
            continue
        plans = (
            Plan(
                instance_id=instance_id,
                reason="enrolment end date passed",
                changes=changes,
                removal=action,
            )
            for instance_id, changes in _ended(site, method, action, now).items()
        )
        for applied in apply_batched(site, plans, isolate=True):
            if applied.error is not None:
                failures.append(failure(applied.plan.instance_id, applied.error))
                continue
            changed += len(applied.outcome.unenrolled) + len(applied.outcome.suspended)
            instances += 1
    done = Text(
        "%(count)d ended enrolment(s) processed in %(instances)d instance(s)",
        count=changed,
        instances=instances,
    )
    return summary(done, failures)


def _ended(site: Site, method: str, action: str, now: int) -> dict[int, list[Change]]:
    stmt = (
        select(UserEnrolment.instance_id, UserEnrolment.user_id, UserEnrolment.timeend)
        .join(EnrolInstance, EnrolInstance.id == UserEnrolment.instance_id)
        .where(
            EnrolInstance.method == method,
            UserEnrolment.timeend > 0,
            UserEnrolment.timeend <= now,
        )
        .order_by(UserEnrolment.instance_id, UserEnrolment.user_id)
    )
    if action != UNENROL:
        stmt = stmt.where(UserEnrolment.status == ACTIVE)
    rows = site.session.execute(stmt).all()
    plans: dict[int, list[Change]] = defaultdict(list)
    for instance_id, user_id, timeend in rows:
        reason = f"enrolment ended {clock.iso(timeend)}"
        plans[instance_id].append(Change(user_id=user_id, op=REMOVE, reason=reason))
    return plans
