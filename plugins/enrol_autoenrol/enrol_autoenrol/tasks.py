"""The two scheduled tasks, both set-based: one SQL selection and one plan per instance.

* ``autoenrol_enrolments`` (hourly): for every enabled login-mode instance open to new
  enrolments, the users who match its rule (compiled to SQL), have logged in at least once, and
  have no enrolment in the course yet, up to the instance's limit, are enrolled with their groups.
  It only adds: removals are the expiry task's.
* ``autoenrol_expiry`` (daily): for every enabled instance whose removal action is not ``keep``,
  the enrolled users who no longer match (when the instance asks for it), whose duration ran out,
  or who have not logged in for ``inactive_days`` since their last login or enrolment, get the
  removal action (unenrol or suspend). Users who no longer match leave through a desired state,
  so the engine's mass-removal guard holds a rule edited by mistake for an admin; ended and
  inactive enrolments leave through explicit changes, as the core's end-date task does.

Each instance is applied in its own transaction; one that fails is reported at the end and the
others still apply.
"""

from __future__ import annotations

from collections.abc import Callable

from enrolkit import KEEP, SUSPEND, Change, Plan
from enrolkit.clock import iso
from enrolkit.engine import REMOVE, Outcome
from enrolkit.models import (
    ACTIVE,
    EnrolInstance,
    GroupMember,
    RoleAssignment,
    User,
    UserEnrolment,
)
from enrolkit.site import Site
from enrolkit.tasks import failure, summary
from enrolkit.templating import group_name_sql
from enrolkit.texts import Text
from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    cast,
    false,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    union_all,
)

from . import groups
from .enrolling import timeend
from .matching import COMPONENT, NAME, instance_blockers, removal_of, rule_of
from .schema import LOGIN

DAY = 86_400


def _instances(site: Site, mode: str | None = None) -> list[EnrolInstance]:
    found = site.session.scalars(
        select(EnrolInstance)
        .where(EnrolInstance.method == NAME, EnrolInstance.enabled.is_(True))
        .order_by(EnrolInstance.id)
    ).all()
    return [i for i in found if mode is None or (i.settings or {}).get("mode") == mode]


def _each(site: Site, instances: list[EnrolInstance], work: Callable[[EnrolInstance], int]):
    """Run ``work`` per instance in its own transaction; (total, instances changed, failures)."""
    total, touched, failures = 0, 0, []
    for instance in instances:
        try:
            with site.atomic():
                count = work(instance)
        except Exception as exc:
            failures.append(failure(instance.id, exc))
            continue
        total += count
        touched += bool(count)
    return total, touched, failures


def process_enrolments(site: Site) -> str:
    if not site.method_enabled(NAME):
        return Text("auto-enrolment is disabled on this site")
    instances = _instances(site, LOGIN)
    total, touched, failures = _each(site, instances, lambda i: enrol_matching(site, i))
    done = Text(
        "%(count)d user(s) enrolled in %(touched)d of %(instances)d login-mode instance(s)",
        count=total,
        touched=touched,
        instances=len(instances),
    )
    return summary(done, failures)


def enrol_matching(site: Site, instance: EnrolInstance) -> int:
    """Enrol every user who matches the instance and may join it; returns how many."""
    now = site.now()
    if instance_blockers(site, instance, now):
        return 0
    settings = instance.settings or {}
    template = groups.template_of(instance)
    name = group_name_sql(template) if template else literal(None)
    in_course = (
        select(UserEnrolment.id)
        .join(EnrolInstance, EnrolInstance.id == UserEnrolment.instance_id)
        .where(UserEnrolment.user_id == User.id, EnrolInstance.course_id == instance.course_id)
        .exists()
    )
    query = select(User.id, name).where(
        rule_of(site, instance).sql(site),
        User.lastlogin > 0,
        User.deleted.is_(False),
        User.suspended.is_(False),
        not_(in_course),
    )
    limit = settings.get("maxenrolled") or 0
    if limit:
        taken = site.session.scalar(
            select(func.count()).where(UserEnrolment.instance_id == instance.id)
        )
        query = query.order_by(User.id).limit(max(limit - taken, 0))
    rows = site.session.execute(query).all()
    if not rows:
        return 0
    ids = groups.ensure(site, instance, (group for _, group in rows))
    end = timeend(instance, now)
    reason = "matched the rule (scheduled task)"
    changes = [
        Change(user_id, timestart=now, timeend=end, group_id=ids.get(group), reason=reason)
        for user_id, group in rows
    ]
    return len(site.engine.apply(Plan(instance.id, reason, changes=changes)).enrolled)


def process_expiry(site: Site) -> str:
    if not site.method_enabled(NAME):
        return Text("auto-enrolment is disabled on this site")
    held: list[int] = []

    def work(instance: EnrolInstance) -> int:
        count, held_id = expire(site, instance)
        if held_id is not None:
            held.append(held_id)
        return count

    instances = _instances(site)
    total, touched, failures = _each(site, instances, work)
    done = Text(
        "%(count)d enrolment(s) removed or suspended in %(touched)d instance(s)",
        count=total,
        touched=touched,
    )
    if held:
        plans = ", ".join(map(str, held))
        done = Text(
            "%(done)s; held by the mass-removal guard: plan(s) %(plans)s", done=done, plans=plans
        )
    return summary(done, failures)


def expire(site: Site, instance: EnrolInstance) -> tuple[int, int | None]:
    """Apply the instance's removal action to its users who no longer match, whose enrolment
    ended or who were inactive too long. Returns how many enrolments changed, and the id of the
    plan the mass-removal guard held, if it held one."""
    settings = instance.settings or {}
    removal = removal_of(site, instance)
    if removal == KEEP:
        return 0, None
    count, held = 0, None
    rule = rule_of(site, instance)
    if settings.get("unenrol_on_mismatch") and not rule.is_empty:
        outcome = _mismatches(site, instance, rule.sql(site), removal)
        if outcome is not None and outcome.held_plan_id is not None:
            held = outcome.held_plan_id  # nothing changed: the outcome says what would have
        elif outcome is not None:
            count = len(outcome.unenrolled) + len(outcome.suspended)
    return count + _ended_or_inactive(site, instance, removal), held


def _mismatches(
    site: Site, instance: EnrolInstance, matching: ColumnElement[bool], removal: str
) -> Outcome | None:
    """Users who no longer match leave through a desired state: everyone else, kept exactly as
    they are (dates, status, the roles and groups the instance gave them). So the engine's
    mass-removal guard applies: a rule edited by mistake is held for an admin, not applied."""
    leaving = [UserEnrolment.instance_id == instance.id, not_(matching)]
    if removal == SUSPEND:
        leaving.append(UserEnrolment.status == ACTIVE)
    anyone = site.session.scalar(
        select(UserEnrolment.id)
        .join(User, User.id == UserEnrolment.user_id)
        .where(*leaving)
        .limit(1)
    )
    if anyone is None:
        return None
    kept = (
        select(
            UserEnrolment.user_id,
            UserEnrolment.timestart,
            UserEnrolment.timeend,
            UserEnrolment.status,
        )
        .join(User, User.id == UserEnrolment.user_id)
        .where(UserEnrolment.instance_id == instance.id, matching)
        .subquery("kept")
    )
    none = cast(null(), Integer)
    dates = (kept.c.timestart, kept.c.timeend, kept.c.status)
    ra, gm = RoleAssignment, GroupMember
    rows = union_all(
        select(kept.c.user_id, none.label("role_id"), *dates, none.label("group_id")),
        select(kept.c.user_id, ra.role_id, *dates, none).join(
            ra,
            and_(ra.user_id == kept.c.user_id, ra.component == COMPONENT, ra.itemid == instance.id),
        ),
        select(kept.c.user_id, none, *dates, gm.group_id).join(
            gm,
            and_(gm.user_id == kept.c.user_id, gm.component == COMPONENT, gm.itemid == instance.id),
        ),
    ).subquery("desired")
    plan = Plan(instance.id, "no longer matches the rule", desired=select(rows), removal=removal)
    return site.engine.apply(plan)


def _ended_or_inactive(site: Site, instance: EnrolInstance, removal: str) -> int:
    settings = instance.settings or {}
    now = site.now()
    ended = and_(UserEnrolment.timeend > 0, UserEnrolment.timeend <= now)
    days = settings.get("inactive_days") or 0
    cutoff = now - days * DAY
    inactive = (
        and_(User.lastlogin < cutoff, UserEnrolment.timecreated < cutoff) if days else false()
    )
    query = (
        select(UserEnrolment.user_id, ended, inactive, UserEnrolment.timeend)
        .join(User, User.id == UserEnrolment.user_id)
        .where(UserEnrolment.instance_id == instance.id, or_(ended, inactive))
        .order_by(UserEnrolment.user_id)
    )
    if removal == SUSPEND:
        query = query.where(UserEnrolment.status == ACTIVE)
    changes = [
        Change(user_id, op=REMOVE, reason=_why(is_ended, is_inactive, timeend, days))
        for user_id, is_ended, is_inactive, timeend in site.session.execute(query)
    ]
    if not changes:
        return 0
    plan = Plan(instance.id, "auto-enrol expiry", changes=changes, removal=removal)
    outcome = site.engine.apply(plan)
    return len(outcome.unenrolled) + len(outcome.suspended)


def _why(ended: bool, inactive: bool, timeend: int, days: int) -> str:
    reasons = []
    if ended:
        reasons.append(f"enrolment ended {iso(timeend)}")
    if inactive:
        reasons.append(f"no login for {days} day(s)")
    return "; ".join(reasons)
