"""Cohort sync as SQL: the desired state of cohort instances, and what each trigger re-syncs.

The desired state of an instance is every member of its cohort (deleted users aside), active,
without dates, with the instance's role and its group. One selection serves a single instance (its
plan) and every instance at once (the hourly drift check), so the two cannot disagree.
"""

from __future__ import annotations

from enrolkit import UNENROL, Plan
from enrolkit.drift import SyncReport, resync
from enrolkit.engine import DESIRED_COLUMNS
from enrolkit.enrolments import delete_instance, set_enabled
from enrolkit.models import ACTIVE, Cohort, CohortMember, Course, EnrolInstance, Group, User
from enrolkit.site import Site
from enrolkit.texts import Text
from sqlalchemy import Select, and_, literal, select

NAME = "cohort"
#: The instance's settings, as SQL: the cohort's idnumber and the group's name.
COHORT_KEY = EnrolInstance.settings["cohort"].as_string()
GROUP_KEY = EnrolInstance.settings["group"].as_string()


def _selection(keyed: bool) -> Select:
    """The desired state of every cohort instance, built once: a request adds only its
    instances' ids (building it again for each plan of each request cost half a millisecond)."""
    columns = {
        "user_id": CohortMember.user_id.label("user_id"),
        "role_id": EnrolInstance.role_id.label("role_id"),
        "timestart": literal(0).label("timestart"),
        "timeend": literal(0).label("timeend"),
        "status": literal(ACTIVE).label("status"),
        "group_id": Group.id.label("group_id"),
    }
    ordered = [columns[name] for name in DESIRED_COLUMNS]
    return (
        select(*([EnrolInstance.id.label("instance_id")] if keyed else []), *ordered)
        .select_from(EnrolInstance)
        .join(Cohort, Cohort.idnumber == COHORT_KEY)
        .join(CohortMember, CohortMember.cohort_id == Cohort.id)
        .join(User, and_(User.id == CohortMember.user_id, User.deleted.is_(False)))
        .outerjoin(
            Group,
            and_(
                Group.course_id == EnrolInstance.course_id,
                Group.name == GROUP_KEY,
                GROUP_KEY.not_in(("none", "new")),
            ),
        )
        .where(EnrolInstance.method == NAME)
    )


_KEYED, _ONE_INSTANCE = _selection(keyed=True), _selection(keyed=False)


def desired(instance_ids) -> Select:
    """``instance_id`` and the desired columns of the cohort instances in ``instance_ids`` (a list
    or a selection of ids)."""
    return _KEYED.where(EnrolInstance.id.in_(instance_ids))


def plan(instance: EnrolInstance, reason: str, users: tuple[int, ...] | None = None) -> Plan:
    """The plan of one instance: its desired state (the engine's columns), or of ``users``."""
    return Plan(
        instance.id,
        reason=f"cohort {instance.settings.get('cohort')}: {reason}",
        desired=_ONE_INSTANCE.where(EnrolInstance.id == instance.id),
        users=users,
    )


def instances_of(site: Site, cohort_id: int, *, enabled_only: bool) -> list[EnrolInstance]:
    idnumber = select(Cohort.idnumber).where(Cohort.id == cohort_id).scalar_subquery()
    stmt = select(EnrolInstance).where(EnrolInstance.method == NAME, COHORT_KEY == idnumber)
    if enabled_only:
        stmt = stmt.where(EnrolInstance.enabled.is_(True))
    return list(site.session.scalars(stmt.order_by(EnrolInstance.id)))


def members_changed(
    site: Site, cohort_id: int, added: tuple[int, ...], removed: tuple[int, ...]
) -> None:
    """Members joined or left: bring the cohort's enabled instances up to date for them now.

    The plan is the instance's desired state limited to the users who changed, so one member
    joining a 100,000-member cohort costs a few rows, and the mass-removal guard still weighs
    what leaves against the whole instance. The instances are one batch (one engine pass), so a
    cohort that feeds ten courses does not cost ten times one.
    """
    if not site.method_enabled(NAME):
        return
    reason = f"{len(added)} joined, {len(removed)} left"
    users = added + removed
    # Held while the engine runs: the session's identity map keeps only what is referenced, and
    # the engine finds the instances there instead of reading them again.
    instances = instances_of(site, cohort_id, enabled_only=True)
    site.engine.apply_many([plan(instance, reason, users=users) for instance in instances])


def cohort_deleted(site: Site, cohort_id: int) -> None:
    """The cohort goes: with the removal action ``unenrol`` its instances are deleted (everyone
    unenrolled); with a suspending action everyone is suspended and the instances disabled, so
    the enrolments (and, for ``suspend``, the roles) stay for an admin to look at. The
    suspensions of every instance are one engine batch."""
    kept: list[tuple[EnrolInstance, str]] = []
    for instance in instances_of(site, cohort_id, enabled_only=False):
        removal = site.plugins.method(NAME).removal_action(site, instance)
        if removal == UNENROL:
            delete_instance(site, instance)
        else:
            kept.append((instance, removal))
    reasons = [f"cohort {instance.settings.get('cohort')} deleted" for instance, _ in kept]
    site.engine.apply_many(
        [
            Plan(instance.id, reason, desired=[], removal=removal, guard=False)
            for (instance, removal), reason in zip(kept, reasons, strict=True)
        ]
    )
    for (instance, _removal), reason in zip(kept, reasons, strict=True):
        set_enabled(site, instance, False, reason)


def courses_moved(site: Site, course_ids: tuple[int, ...]) -> None:
    """Courses moved (with their category, or alone): an enabled instance whose cohort is no
    longer available from the course's new place (a cohort of a category that is not one of the
    course's ancestors) is disabled now, with the usual disable rule, and logged; it cannot be
    enabled again until the course is back in the cohort's category."""
    from .method import available

    instances = site.session.scalars(
        select(EnrolInstance)
        .where(
            EnrolInstance.method == NAME,
            EnrolInstance.enabled.is_(True),
            EnrolInstance.course_id.in_(course_ids),
        )
        .order_by(EnrolInstance.id)
    )
    for instance in list(instances):
        course = site.session.get(Course, instance.course_id)
        cohort = site.session.scalar(
            select(Cohort).where(Cohort.idnumber == instance.settings.get("cohort"))
        )
        if cohort is not None and not available(site, course, cohort):
            reason = f"course moved out of the category of cohort {cohort.idnumber}"
            set_enabled(site, instance, False, reason)


def full_sync(site: Site) -> str:
    """The hourly task: re-sync every enabled cohort instance whose state drifted."""
    if not site.method_enabled(NAME):
        return Text("cohort sync is disabled on this site; nothing to do")
    instances = site.session.scalars(
        select(EnrolInstance).where(EnrolInstance.method == NAME, EnrolInstance.enabled.is_(True))
    )
    report: SyncReport = resync(
        site, instances, desired, lambda instance: plan(instance, "full sync")
    )
    return str(report)
