"""Roles and role assignments in the site, category and course contexts."""

from __future__ import annotations

from sqlalchemy import delete, or_, select

from . import lookup
from .changes import RoleChange
from .errors import EnrolkitError
from .models import CATEGORY, COURSE, SITE, Category, Course, Role, RoleAssignment, User
from .site import Site
from .texts import Text

#: Moodle's preset roles, in its order.
PRESETS = (
    ("manager", "Manager", "manager"),
    ("editingteacher", "Teacher", "editingteacher"),
    ("teacher", "Non-editing teacher", "teacher"),
    ("student", "Student", "student"),
)


def label(shortname: str, name: str) -> str:
    """How a role reads: a preset that keeps its English name (or none, as in Moodle) is a
    :class:`~enrolkit.texts.Text`, shown in the reader's language (Étudiant, Enseignant...);
    a name the site gave is shown as given."""
    for preset, english, _archetype in PRESETS:
        if shortname == preset and name in (english, ""):
            return Text(english)
    return name or shortname


#: Moodle's default ``role_allow_assign``, by archetype: the roles a holder of each may give.
#: A site admin may give every role; a role of another archetype (a custom one) gives none.
ALLOW_ASSIGN: dict[str, frozenset[str]] = {
    "manager": frozenset({"manager", "editingteacher", "teacher", "student"}),
    "editingteacher": frozenset({"teacher", "student"}),
    "teacher": frozenset(),
    "student": frozenset(),
}


def assignable(site: Site, user: User, course: Course) -> list[Role]:
    """The roles ``user`` may give in ``course``: those the archetypes of the roles they hold
    there (in the course, its categories or the site) allow, in Moodle's order."""
    every = list(site.session.scalars(select(Role).order_by(Role.sortorder)))
    if user.siteadmin:
        return every
    contexts = [(SITE, 0), (COURSE, course.id)]
    category = site.session.get(Category, course.category_id) if course.category_id else None
    if category is not None:
        ids = [int(part) for part in category.path.strip("/").split("/") if part]
        contexts += [(CATEGORY, category_id) for category_id in ids or [category.id]]
    held = site.session.scalars(
        select(Role.archetype)
        .join(RoleAssignment, RoleAssignment.role_id == Role.id)
        .where(RoleAssignment.user_id == user.id)
        .where(
            or_(
                *(
                    (RoleAssignment.contextlevel == level) & (RoleAssignment.instanceid == item)
                    for level, item in contexts
                )
            )
        )
    )
    allowed = set().union(*(ALLOW_ASSIGN.get(archetype, frozenset()) for archetype in held))
    return [role for role in every if role.archetype in allowed]


def ensure_presets(site: Site) -> None:
    existing = set(site.session.scalars(select(Role.shortname)))
    for order, (shortname, name, archetype) in enumerate(PRESETS, start=1):
        if shortname not in existing:
            site.session.add(
                Role(shortname=shortname, name=name, archetype=archetype, sortorder=order)
            )
    site.session.flush()


def context_of(
    site: Site, category: str | None = None, course: str | None = None
) -> tuple[str, int]:
    if category and course:
        raise EnrolkitError("give --category or --course, not both")
    if category:
        return CATEGORY, lookup.category(site.session, category).id
    if course:
        return COURSE, lookup.course(site.session, course).id
    return SITE, 0


def assign(site: Site, role: Role, user: User, contextlevel: str, instanceid: int) -> bool:
    """Assign an unowned role; fire the change hook. False when it was already there."""
    found = site.session.scalar(
        select(RoleAssignment.id).where(
            RoleAssignment.role_id == role.id,
            RoleAssignment.user_id == user.id,
            RoleAssignment.contextlevel == contextlevel,
            RoleAssignment.instanceid == instanceid,
            RoleAssignment.component == "",
        )
    )
    if found:
        return False
    site.session.add(
        RoleAssignment(
            role_id=role.id,
            user_id=user.id,
            contextlevel=contextlevel,
            instanceid=instanceid,
            timemodified=site.now(),
        )
    )
    site.session.flush()
    _log(site, "role_assigned", role, user, contextlevel, instanceid)
    site.plugins.role_assignments_changed(
        site=site, changes=(RoleChange(user.id, role.id, contextlevel, instanceid, added=True),)
    )
    return True


def unassign(site: Site, role: Role, user: User, contextlevel: str, instanceid: int) -> bool:
    result = site.session.execute(
        delete(RoleAssignment).where(
            RoleAssignment.role_id == role.id,
            RoleAssignment.user_id == user.id,
            RoleAssignment.contextlevel == contextlevel,
            RoleAssignment.instanceid == instanceid,
            RoleAssignment.component == "",
        )
    )
    if not result.rowcount:
        owned = site.session.scalar(
            select(RoleAssignment.component).where(
                RoleAssignment.role_id == role.id,
                RoleAssignment.user_id == user.id,
                RoleAssignment.contextlevel == contextlevel,
                RoleAssignment.instanceid == instanceid,
            )
        )
        if owned:
            raise EnrolkitError(
                f"{user.username} holds {role.shortname} there through {owned}; "
                f"remove it at its source"
            )
        return False
    _log(site, "role_unassigned", role, user, contextlevel, instanceid)
    site.plugins.role_assignments_changed(
        site=site, changes=(RoleChange(user.id, role.id, contextlevel, instanceid, added=False),)
    )
    return True


def _log(site: Site, event: str, role: Role, user: User, level: str, instanceid: int) -> None:
    from .log import record

    record(
        site,
        event,
        "core",
        user_id=user.id,
        course_id=instanceid if level == COURSE else None,
        reason=f"role {role.shortname} in {_context_name(site, level, instanceid)}",
    )


def _context_name(site: Site, level: str, instanceid: int) -> str:
    """A context as people name it: ``category Sciences / Physics``, ``course MATH101``,
    ``site``."""
    if level == CATEGORY:
        return f"category {lookup.category_path(site.session, instanceid)}"
    if level == COURSE:
        course = site.session.get(Course, instanceid)
        return f"course {course.shortname if course else instanceid}"
    return "site"
