"""The login path (``on_login``): re-check the user's auto-enrolments, then enrol them in every
login-mode instance they now match.

It runs inside the login's transaction on every login, so it reads only what concerns this user:
their own enrolments, and the few instances the prefilter index lets through (see
:mod:`.prefilter`). Its changes go to the engine in batches (the re-checks, the group moves,
the new enrolments), so a first login into ten courses costs about what a login into one does.
"""

from __future__ import annotations

from enrolkit import KEEP, UNENROL, Change, Plan
from enrolkit.engine import REMOVE
from enrolkit.models import ACTIVE, EnrolInstance, User, UserEnrolment
from enrolkit.rules import UserContext
from enrolkit.site import Site
from sqlalchemy import select

from . import groups, prefilter
from .enrolling import enrol_all
from .matching import (
    NAME,
    enrolment_counts,
    instance_blockers,
    removal_of,
    rule_of,
    why_not,
)


def on_login(site: Site, user: User) -> None:
    if not site.method_enabled(NAME):
        return
    conf = site.method_settings(NAME)
    # One context for every rule of this login: what a condition loads is read once.
    context = UserContext(site, user, site.now())
    recheck(site, user, context, conf)
    if conf["loginenrol"]:
        enrol_matching(site, user, context)


def recheck(site: Site, user: User, context: UserContext, conf: dict) -> None:
    """Apply the removal action to the user's auto-enrolments whose rule they no longer match
    (where the instance asks for it), reactivate suspended ones they match again (when the site
    allows it), and move the active ones into the groups their values name now."""
    rows = site.session.execute(
        select(EnrolInstance, UserEnrolment.status)
        .join(UserEnrolment, UserEnrolment.instance_id == EnrolInstance.id)
        .where(
            UserEnrolment.user_id == user.id,
            EnrolInstance.method == NAME,
            EnrolInstance.enabled.is_(True),
        )
        .order_by(EnrolInstance.id)
    ).all()
    active: list[EnrolInstance] = []
    plans: list[Plan] = []
    for instance, status in rows:
        settings = instance.settings or {}
        rule = rule_of(site, instance)
        if rule.matches(site, user, context):
            if status != ACTIVE and conf["allowunsuspend"]:
                reason = "matches the rule again at login"
                plans.append(Plan(instance.id, reason, changes=[Change(user.id, reason=reason)]))
                status = ACTIVE
            if status == ACTIVE:
                active.append(instance)
            continue
        removal = removal_of(site, instance, conf["removal"])
        if not settings.get("unenrol_on_mismatch") or removal == KEEP:
            continue
        if status == ACTIVE or removal == UNENROL:
            reason = f"no longer matches the rule: {why_not(rule.explain(site, user))}"
            plans.append(
                Plan(instance.id, reason, changes=[Change(user.id, op=REMOVE, reason=reason)])
            )
    site.engine.apply_many(plans)
    if active:
        groups.regroup(site, active, [user.id], "group template re-checked at login")


def enrol_matching(site: Site, user: User, context: UserContext) -> int:
    """Enrol the user in each login-mode instance that lets new users in and whose rule they
    match, at most once per course, in one engine batch. Returns how many enrolments were
    made."""
    if user.deleted or user.suspended:
        return 0
    now = site.now()
    candidates = prefilter.candidates(site, user)
    taken = enrolment_counts(site, candidates)
    chosen: dict[int, EnrolInstance] = {}
    for instance in candidates:
        if instance.course_id in chosen or instance_blockers(
            site, instance, now, taken.get(instance.id)
        ):
            continue
        if rule_of(site, instance).matches(site, user, context):
            chosen[instance.course_id] = instance
    enrol_all(site, list(chosen.values()), user, "matched the rule at login")
    return len(chosen)
