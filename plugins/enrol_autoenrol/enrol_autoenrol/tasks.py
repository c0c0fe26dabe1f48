"""The two scheduled tasks, both set-based: one SQL selection and one plan per instance, the
plans applied in engine batches (:mod:`enrolkit.batches`).

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

An instance that fails (its plan, or the query that builds it) is reported at the end and the
others still apply. A course with several login-mode instances has them applied in turn (the
first of each course in one round of batches, the second in the next), so a user one of them
enrolled is not enrolled again by the next.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from enrolkit import KEEP, SUSPEND, Change, Plan
from enrolkit.batches import apply_batched
from enrolkit.clock import iso
from enrolkit.engine import REMOVE
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


def _rounds(instances: list[EnrolInstance]) -> list[list[EnrolInstance]]:
    """The instances in rounds: the first of each course, then the second, ... (id order)."""
    rank: dict[int, int] = {}
    rounds: list[list[EnrolInstance]] = []
    for instance in instances:
        number = rank.get(instance.course_id, 0)
        rank[instance.course_id] = number + 1
        if number == len(rounds):
            rounds.append([])
        rounds[number].append(instance)
    return rounds


class _Run:
    """One task run over many instances: their plans built one by one (each in its own
    transaction) and applied in engine batches; per instance, what changed; the failures."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.counts: dict[int, int] = {}
        self.held: list[int] = []
        self.failures: list[Text] = []
        self.failed: set[int] = set()

    def apply(
        self, instances: list[EnrolInstance], build: Callable[[EnrolInstance], Plan | None]
    ) -> None:
        for applied in apply_batched(self.site, self._plans(instances, build), isolate=True):
            instance_id = applied.plan.instance_id
            if applied.error is not None:
                self._fail(instance_id, applied.error)
            elif applied.outcome.held_plan_id is not None:
                self.held.append(applied.outcome.held_plan_id)
            else:
                outcome = applied.outcome
                changed = len(outcome.enrolled) + len(outcome.unenrolled) + len(outcome.suspended)
                self.counts[instance_id] = self.counts.get(instance_id, 0) + changed

    def _plans(
        self, instances: list[EnrolInstance], build: Callable[[EnrolInstance], Plan | None]
    ) -> Iterator[Plan]:
        for instance in instances:
            if instance.id in self.failed:
                continue
            try:
                with self.site.atomic():
                    plan = build(instance)
            except Exception as exc:
                self._fail(instance.id, exc)
                continue
            if plan is not None:
                yield plan

    def _fail(self, instance_id: int, error: Exception) -> None:
        self.failed.add(instance_id)
        self.failures.append(failure(instance_id, error))

    def total(self) -> int:
        return sum(self.counts.values())

    def touched(self) -> int:
        return sum(1 for count in self.counts.values() if count)


def process_enrolments(site: Site) -> str:
    if not site.method_enabled(NAME):
        return Text("auto-enrolment is disabled on this site")
    instances = _instances(site, LOGIN)
    run = _Run(site)
    for round_ in _rounds(instances):
        run.apply(round_, lambda instance: enrolment_plan(site, instance))
    done = Text(
        "%(count)d user(s) enrolled in %(touched)d of %(instances)d login-mode instance(s)",
        count=run.total(),
        touched=run.touched(),
        instances=len(instances),
    )
    return summary(done, run.failures)


def enrolment_plan(site: Site, instance: EnrolInstance) -> Plan | None:
    """The plan that enrols every user who matches the instance and may join it (their groups
    created); None when nobody is to be enrolled."""
    now = site.now()
    if instance_blockers(site, instance, now):
        return None
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
        return None
    ids = groups.ensure(site, instance, (group for _, group in rows))
    end = timeend(instance, now)
    reason = "matched the rule (scheduled task)"
    changes = [
        Change(user_id, timestart=now, timeend=end, group_id=ids.get(group), reason=reason)
        for user_id, group in rows
    ]
    return Plan(instance.id, reason, changes=changes)


def process_expiry(site: Site) -> str:
    """Users who no longer match leave first (desired states, guarded), every instance in
    batches; then ended and inactive enrolments (explicit changes), read after those left."""
    if not site.method_enabled(NAME):
        return Text("auto-enrolment is disabled on this site")
    instances = [i for i in _instances(site) if removal_of(site, i) != KEEP]
    run = _Run(site)
    run.apply(instances, lambda instance: _mismatch_plan(site, instance))
    run.apply(instances, lambda instance: _expiry_plan(site, instance))
    done = Text(
        "%(count)d enrolment(s) removed or suspended in %(touched)d instance(s)",
        count=run.total(),
        touched=run.touched(),
    )
    if run.held:
        plans = ", ".join(map(str, run.held))
        done = Text(
            "%(done)s; held by the mass-removal guard: plan(s) %(plans)s", done=done, plans=plans
        )
    return summary(done, run.failures)


def _mismatch_plan(site: Site, instance: EnrolInstance) -> Plan | None:
    settings = instance.settings or {}
    rule = rule_of(site, instance)
    if not settings.get("unenrol_on_mismatch") or rule.is_empty:
        return None
    return _mismatches(site, instance, rule.sql(site), removal_of(site, instance))


def _mismatches(
    site: Site, instance: EnrolInstance, matching: ColumnElement[bool], removal: str
) -> Plan | None:
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
    return Plan(instance.id, "no longer matches the rule", desired=select(rows), removal=removal)


def _expiry_plan(site: Site, instance: EnrolInstance) -> Plan | None:
    """Ended and inactive enrolments leave through explicit changes."""
    removal = removal_of(site, instance)
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
        return None
    return Plan(instance.id, "auto-enrol expiry", changes=changes, removal=removal)


def _why(ended: bool, inactive: bool, timeend: int, days: int) -> str:
    reasons = []
    if ended:
        reasons.append(f"enrolment ended {iso(timeend)}")
    if inactive:
        reasons.append(f"no login for {days} day(s)")
    return "; ".join(reasons)
