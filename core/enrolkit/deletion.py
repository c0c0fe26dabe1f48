"""Deleting courses and categories, as Moodle does.

A course goes with everything it holds: the methods hear of it first (``course_deleted``: a meta
link whose source it is goes, with its enrolments), then each of its instances is deleted (its
users unenrolled, logged, ``instance_changed`` fired), then its groups, roles and pending actions.
A category that is not empty needs a choice, Moodle's: move its content (subcategories, courses,
cohorts) to another category, or delete it all.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update

from . import lookup
from .catalog import move_category, move_courses
from .changes import RoleChange
from .cohorts import delete_cohort
from .enrolments import delete_instance
from .errors import EnrolkitError
from .log import record
from .models import (
    CATEGORY,
    COURSE,
    Category,
    Cohort,
    Course,
    EnrolInstance,
    Group,
    PendingAction,
    RoleAssignment,
)
from .site import Site


def delete_course(site: Site, course: Course) -> int:
    """Delete a course and what it holds. Returns how many enrolments went."""
    with site.atomic():
        site.plugins.course_deleted(site=site, course_id=course.id)
        instances = list(
            site.session.scalars(select(EnrolInstance).where(EnrolInstance.course_id == course.id))
        )
        unenrolled = 0
        for instance in instances:
            unenrolled += len(delete_instance(site, instance, reason="course deleted").unenrolled)
        site.session.execute(
            update(PendingAction)
            .where(PendingAction.instance_id.in_([i.id for i in instances]))
            .where(PendingAction.status == "pending")
            .values(status="cancelled", timeapplied=site.now())
        )
        _drop_roles(site, COURSE, [course.id])
        site.session.execute(delete(Group).where(Group.course_id == course.id))
        record(site, "course_deleted", "core", course_id=course.id, reason=course.shortname)
        site.session.delete(course)
        site.session.flush()
    return unenrolled


def delete_category(
    site: Site, category: Category, *, move_to: Category | None = None, delete_content: bool = False
) -> str:
    """Delete a category: with ``move_to`` its subcategories, courses and cohorts move there
    first; with ``delete_content`` they are deleted too; with neither, only an empty category
    may go. Returns a one-line summary."""
    name = lookup.category_path(site.session, category.id)
    children = list(site.session.scalars(select(Category).where(Category.parent_id == category.id)))
    courses = list(site.session.scalars(select(Course).where(Course.category_id == category.id)))
    cohorts = list(site.session.scalars(select(Cohort).where(Cohort.category_id == category.id)))
    if move_to is not None and delete_content:
        raise EnrolkitError("choose one: move the content elsewhere, or delete it")
    if move_to is not None and move_to.path.startswith(category.path):
        raise EnrolkitError(f"cannot move the content of {name} into {name} or below it")
    if move_to is None and not delete_content and (children or courses or cohorts):
        raise EnrolkitError(
            f"{name} is not empty ({len(children)} subcategories, {len(courses)} courses, "
            f"{len(cohorts)} cohorts); move its content (--move-to PATH) or delete it "
            f"(--delete-content)"
        )
    with site.atomic():
        if move_to is not None:
            for child in children:
                move_category(site, child, move_to)
            move_courses(site, courses, move_to)
            for cohort in cohorts:
                cohort.category_id = move_to.id
            summary = (
                f"{name} deleted; {len(children)} subcategories, {len(courses)} courses and "
                f"{len(cohorts)} cohorts moved to {lookup.category_path(site.session, move_to.id)}"
            )
        else:
            summary = f"{name} deleted with {_delete_subtree(site, category)}"
        _drop_roles(site, CATEGORY, [category.id])
        record(site, "category_deleted", "core", reason=name)
        site.session.delete(category)
        site.session.flush()
    return summary


def _delete_subtree(site: Site, category: Category) -> str:
    """Delete what is in and below ``category`` (not the category itself), deepest first."""
    below = list(
        site.session.scalars(
            select(Category)
            .where(Category.path.startswith(category.path, autoescape=True))
            .order_by(Category.depth.desc())
        )
    )
    ids = [c.id for c in below]
    courses = list(site.session.scalars(select(Course).where(Course.category_id.in_(ids))))
    for course in courses:
        delete_course(site, course)
    cohorts = list(site.session.scalars(select(Cohort).where(Cohort.category_id.in_(ids))))
    for cohort in cohorts:
        delete_cohort(site, cohort)
    subcategories = [c for c in below if c.id != category.id]
    _drop_roles(site, CATEGORY, [c.id for c in subcategories])
    for sub in subcategories:
        site.session.delete(sub)
        site.session.flush()
    return f"{len(subcategories)} subcategories, {len(courses)} courses, {len(cohorts)} cohorts"


def _drop_roles(site: Site, level: str, instance_ids: list[int]) -> None:
    """Remove the role assignments left in these contexts, telling the methods (a category's
    roles feed category enrolments)."""
    rows = site.session.execute(
        select(RoleAssignment.id, RoleAssignment.user_id, RoleAssignment.role_id,
               RoleAssignment.instanceid, RoleAssignment.component, RoleAssignment.itemid)
        .where(RoleAssignment.contextlevel == level, RoleAssignment.instanceid.in_(instance_ids))
    ).all()  # fmt: skip
    if not rows:
        return
    site.session.execute(delete(RoleAssignment).where(RoleAssignment.id.in_([r[0] for r in rows])))
    changes = tuple(
        RoleChange(user_id, role_id, level, instanceid, added=False, component=comp, itemid=item)
        for _id, user_id, role_id, instanceid, comp, item in rows
    )
    site.plugins.role_assignments_changed(site=site, changes=changes)
