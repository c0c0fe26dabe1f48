"""Manual enrolments beyond adding and removing one: suspend, resume or change the dates of one
(Moodle's "Edit enrolment"), and bulk enrolment from a CSV file (the "Enrol users" dialog)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import select

from . import clock, csvfile, lookup
from .batches import apply_batched
from .catalog import ImportRefused
from .csvfile import RowError
from .engine import ENROL, SUSPEND_OP, Change, Outcome, Plan
from .enrolments import MANUAL_DISABLED, ensure_instance
from .errors import EnrolkitError, Refused, Where
from .models import ACTIVE, SUSPENDED, Course, EnrolInstance, RoleAssignment, User, UserEnrolment
from .site import Site
from .texts import Text

IMPORT_REQUIRED = ("username", "course")
IMPORT_OPTIONAL = ("role", "start", "end")


def _manual_enrolment(
    site: Site, user: User, course: Course
) -> tuple[EnrolInstance, UserEnrolment]:
    found = site.session.execute(
        select(EnrolInstance, UserEnrolment)
        .join(UserEnrolment, UserEnrolment.instance_id == EnrolInstance.id)
        .where(
            EnrolInstance.course_id == course.id,
            EnrolInstance.method == "manual",
            UserEnrolment.user_id == user.id,
        )
    ).first()
    if found is None:
        raise EnrolkitError(
            Text("%(user)s has no manual enrolment in %(course)s; enrol them first",
                 user=user.username, course=course.shortname),
            cli=f"enrolkit enrolment add {user.username} {course.shortname}",
            web=Where(Text("Participants"), "course.participants_page", {"course_id": course.id}),
        )  # fmt: skip
    return found[0], found[1]


def edit_enrolment(
    site: Site,
    user: User,
    course: Course,
    *,
    status: int | None = None,
    timestart: int | None = None,
    timeend: int | None = None,
) -> Outcome:
    """Suspend (``status=SUSPENDED``), resume (``ACTIVE``) or re-date the user's manual
    enrolment in the course; what is not given stays as it is. Roles are not touched."""
    if not site.method_enabled("manual"):
        raise Refused(
            MANUAL_DISABLED,
            cli="enrolkit method enable manual",
            web=Where(Text("Enrolment methods"), "admin.methods"),
        )
    instance, enrolment = _manual_enrolment(site, user, course)
    start = enrolment.timestart if timestart is None else timestart
    end = enrolment.timeend if timeend is None else timeend
    if end and end <= start:
        raise EnrolkitError(
            f"the end ({clock.iso(end)}) must come after the start ({clock.iso(start)})"
        )
    reason = f"enrolment edited by {site.actor or site.origin}"
    if status == SUSPENDED and timestart is None and timeend is None:
        change = Change(user.id, op=SUSPEND_OP, reason=reason)
    else:
        owned = site.session.scalar(
            select(RoleAssignment.role_id)
            .where(
                RoleAssignment.user_id == user.id,
                RoleAssignment.component == instance.component,
                RoleAssignment.itemid == instance.id,
            )
            .limit(1)
        )
        change = Change(
            user.id,
            op=ENROL,
            role_id=owned if owned is not None else instance.role_id,
            timestart=timestart,
            timeend=timeend,
            status=enrolment.status if status is None else status,
            reason=reason,
        )
    with site.atomic():
        return site.engine.apply(Plan(instance.id, reason=reason, changes=[change]))


def import_enrolments(
    site: Site, path: str | Path, *, strict: bool = False
) -> tuple[int, int, list[RowError]]:
    """Enrol users by hand from CSV: ``username,course[,role,start,end]`` (times in Unix seconds
    or ISO 8601). Returns (enrolled, updated, rejected rows); a bad row is reported as
    ``file:line: column: problem`` and skipped, and with ``strict`` nothing is applied."""
    if not site.method_enabled("manual"):
        raise Refused(
            MANUAL_DISABLED,
            cli="enrolkit method enable manual",
            web=Where(Text("Enrolment methods"), "admin.methods"),
        )
    name = Path(path).name
    items = csvfile.read(path, required=IMPORT_REQUIRED, optional=IMPORT_OPTIONAL)
    return enrol_rows(site, items, name, strict=strict)


def enrol_rows(
    site: Site,
    items: Iterable[tuple[int, dict[str, str]] | RowError],
    name: str,
    *,
    strict: bool = False,
) -> tuple[int, int, list[RowError]]:
    """Enrol by hand from rows as the CSV import reads them (``(line, row)`` or a
    :class:`RowError`): the import and the web's "Enrol users" dialog share it. ``name`` names
    the source in rejected-row messages. Returns (enrolled, updated, rejected rows)."""
    if not site.method_enabled("manual"):
        raise Refused(
            "manual enrolment is disabled on this site; enable it: enrolkit method enable manual"
        )
    errors: list[RowError] = []
    by_course: dict[int, list[Change]] = defaultdict(list)
    courses: dict[int, Course] = {}
    for item in items:
        if isinstance(item, RowError):
            errors.append(item)
            continue
        line, row = item
        try:
            course, change = _row_change(site, row, line, name)
        except EnrolkitError as exc:
            errors.append(RowError(name, line, str(exc)))
            continue
        courses[course.id] = course
        by_course[course.id].append(change)
    if strict and errors:
        raise ImportRefused(errors)
    enrolled = updated = 0
    with site.atomic():
        plans = [
            Plan(
                ensure_instance(site, courses[course_id], "manual").id,
                reason=f"enrolment import {name}",
                changes=changes,
            )
            for course_id, changes in by_course.items()
        ]
        for applied in apply_batched(site, plans):
            enrolled += len(applied.outcome.enrolled)
            updated += len(applied.outcome.updated)
    return enrolled, updated, errors


def _row_change(site: Site, row: dict[str, str], line: int, name: str) -> tuple[Course, Change]:
    def checked(column: str, find):
        if not row.get(column):
            raise EnrolkitError(f"column {column}: empty")
        try:
            return find(site.session, row[column])
        except EnrolkitError as exc:
            raise EnrolkitError(f"column {column}: {exc}") from None

    user = checked("username", lookup.user)
    course = checked("course", lookup.course)
    role = checked("role", lookup.role) if row.get("role") else None
    times = {
        column: clock.parse_time(row.get(column), field=f"column {column}")
        for column in ("start", "end")
    }
    if times["end"] and times["end"] <= times["start"]:
        raise EnrolkitError("column end: must come after the start")
    change = Change(
        user.id,
        role_id=role.id if role else None,
        timestart=times["start"],
        timeend=times["end"],
        status=ACTIVE,
        reason=f"enrolment import {name}:{line}",
    )
    return course, change
