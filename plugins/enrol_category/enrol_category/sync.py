"""Category enrolments as SQL: who holds a synchronised role in a course's category or one of its
parents is enrolled in the course with that role (one row per role held). Instances are created
here, one per course, once someone qualifies; as in Moodle, a course where nobody qualifies any
more (no role synchronised, or no holder above it) loses its instance, once the sync has emptied
it."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from enrolkit import Plan, enrolments
from enrolkit.batches import apply_all
from enrolkit.changes import RoleChange
from enrolkit.drift import resync
from enrolkit.engine import DESIRED_COLUMNS
from enrolkit.enrolments import delete_instance
from enrolkit.models import (
    ACTIVE,
    CATEGORY,
    Category,
    Course,
    EnrolInstance,
    Role,
    RoleAssignment,
    User,
    UserEnrolment,
)
from enrolkit.site import Site
from enrolkit.texts import Text
from sqlalchemy import Integer, Select, and_, cast, literal, null, select
from sqlalchemy.orm import aliased

NAME = "category"


def _holders(site: Site, course_id_column) -> Select:
    """Rows (course id, user id, role id) of synchronised category roles held above courses."""
    roles = site.method_settings(NAME)["roles"]
    course_category = aliased(Category, name="course_category")
    holder = aliased(Category, name="holder")
    return (
        select(
            Course.id.label("course_id"),
            RoleAssignment.user_id.label("user_id"),
            RoleAssignment.role_id.label("role_id"),
        )
        .select_from(Course)
        .join(course_category, course_category.id == Course.category_id)
        .join(holder, course_category.path.startswith(holder.path))
        .join(
            RoleAssignment,
            and_(
                RoleAssignment.contextlevel == CATEGORY,
                RoleAssignment.instanceid == holder.id,
                RoleAssignment.role_id.in_(select(Role.id).where(Role.shortname.in_(roles))),
            ),
        )
        .join(User, and_(User.id == RoleAssignment.user_id, User.deleted.is_(False)))
        .where(Course.id == course_id_column)
    )


def desired_for(site: Site) -> Callable[[object], Select]:
    """The desired-state selection of category instances: a function of the instance ids (a
    list or a selection) giving ``instance_id`` and the desired columns."""

    def desired(instance_ids) -> Select:
        holders = _holders(site, EnrolInstance.course_id).subquery("holders")
        return (
            select(
                EnrolInstance.id.label("instance_id"),
                holders.c.user_id,
                holders.c.role_id,
                literal(0).label("timestart"),
                literal(0).label("timeend"),
                literal(ACTIVE).label("status"),
                cast(null(), Integer).label("group_id"),
            )
            .select_from(EnrolInstance)
            .join(holders, holders.c.course_id == EnrolInstance.course_id)
            .where(EnrolInstance.method == NAME, EnrolInstance.id.in_(instance_ids))
            .distinct()
        )

    return desired


def plan(site: Site, instance: EnrolInstance, reason: str) -> Plan:
    rows = desired_for(site)([instance.id]).subquery()
    return Plan(
        instance.id,
        reason=f"category roles: {reason}",
        desired=select(*(rows.c[name] for name in DESIRED_COLUMNS)),
    )


def ensure_instances(site: Site, course_ids: Iterable[int] | None = None) -> int:
    """Give an instance to each course (of ``course_ids``, or all) where someone qualifies and
    that has none. Returns how many were created."""
    has_instance = select(EnrolInstance.course_id).where(EnrolInstance.method == NAME)
    holders = _holders(site, Course.id).subquery()
    stmt = select(holders.c.course_id).where(holders.c.course_id.not_in(has_instance)).distinct()
    if course_ids is not None:
        stmt = stmt.where(holders.c.course_id.in_(list(course_ids)))
    missing = list(site.session.scalars(stmt))
    with site.atomic():
        courses = site.session.scalars(select(Course).where(Course.id.in_(missing))).all()
        enrolments.ensure_instances(site, courses, NAME)
    return len(missing)


def _instances(site: Site, course_ids: list[int] | None) -> list[EnrolInstance]:
    stmt = select(EnrolInstance).where(
        EnrolInstance.method == NAME, EnrolInstance.enabled.is_(True)
    )
    if course_ids is not None:
        stmt = stmt.where(EnrolInstance.course_id.in_(course_ids))
    return list(site.session.scalars(stmt.order_by(EnrolInstance.id)))


def drop_unneeded_instances(site: Site, course_ids: Iterable[int] | None = None) -> int:
    """Delete the (then empty) instances of courses where nobody qualifies any more, as Moodle's
    ``enrol_category_sync_course`` does. An instance that still holds enrolments (a plan held by
    the mass-removal guard) stays until they are gone. Returns how many were deleted."""
    holders = _holders(site, Course.id).subquery()
    stmt = select(EnrolInstance).where(
        EnrolInstance.method == NAME,
        EnrolInstance.course_id.not_in(select(holders.c.course_id)),
        ~select(UserEnrolment.id).where(UserEnrolment.instance_id == EnrolInstance.id).exists(),
    )
    if course_ids is not None:
        stmt = stmt.where(EnrolInstance.course_id.in_(list(course_ids)))
    unneeded = list(site.session.scalars(stmt.order_by(EnrolInstance.id)))
    for instance in unneeded:
        delete_instance(site, instance)
    return len(unneeded)


def courses_changed(site: Site, course_ids: Iterable[int] | None, reason: str) -> None:
    """Courses created or moved (or under a category whose roles changed), or all courses
    (``None``) when the synchronised roles changed: follow now."""
    if not site.method_enabled(NAME):
        return
    course_ids = sorted(set(course_ids)) if course_ids is not None else None
    ensure_instances(site, course_ids)
    apply_all(site, (plan(site, instance, reason) for instance in _instances(site, course_ids)))
    drop_unneeded_instances(site, course_ids)


def settings_changed(site: Site, method: str, names: tuple[str, ...]) -> None:
    """The synchronised roles changed: every course follows now, not at the hourly run."""
    if method == NAME and "roles" in names:
        courses_changed(site, None, "synchronised roles changed")


def roles_changed(site: Site, changes: tuple[RoleChange, ...]) -> None:
    """Synchronised roles assigned or unassigned in categories: re-sync the courses below."""
    if not site.method_enabled(NAME):
        return
    synced = set(
        site.session.scalars(
            select(Role.id).where(Role.shortname.in_(site.method_settings(NAME)["roles"]))
        )
    )
    categories = {
        c.instanceid for c in changes if c.contextlevel == CATEGORY and c.role_id in synced
    }
    if not categories:
        return
    changed = aliased(Category, name="changed")
    course_ids = site.session.scalars(
        select(Course.id)
        .join(Category, Category.id == Course.category_id)
        .join(changed, Category.path.startswith(changed.path))
        .where(changed.id.in_(categories))
        .distinct()
    )
    courses_changed(site, course_ids, "category role changed")


def full_sync(site: Site) -> str:
    """The hourly task: create missing instances, re-sync every one whose state drifted."""
    if not site.method_enabled(NAME):
        return Text("category enrolments are disabled on this site; nothing to do")
    created = ensure_instances(site)
    report = resync(
        site, _instances(site, None), desired_for(site), lambda i: plan(site, i, "full sync")
    )
    with site.atomic():
        deleted = drop_unneeded_instances(site)
    done = Text("%(count)d instance(s) created", count=created)
    if deleted:
        done = Text("%(done)s, %(count)d deleted", done=done, count=deleted)
    return Text.join("; ", [done, str(report)])
