"""The participants of a course, one row per enrolment, filtered, counted and paged in SQL.

A course may hold 100,000 enrolments: the database filters, counts and cuts the page; roles and
groups are then read for the page's users only. Every filter runs on an index: enrolments by
instance (``uq_user_enrolments_instance_id_user_id``), role assignments by context and role,
group members by user.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Select, exists, false, func, or_, select

from ..enrolments import active_clause
from ..models import (
    ACTIVE,
    COURSE,
    SUSPENDED,
    Course,
    EnrolInstance,
    Group,
    GroupMember,
    Role,
    RoleAssignment,
    User,
    UserEnrolment,
)
from ..roles import label as role_label
from ..site import Site

#: What the participants page shows of each user: the name, the username and Moodle's default
#: ``showuseridentity`` (email). A teacher's template previews show no more of a real user
#: than this (:func:`enrolkit.templating.masked_user_vars`).
SHOWN_FIELDS = frozenset({"username", "firstname", "lastname", "fullname", "email"})

#: Status filter values: in the course now; suspended (or its method is off); not yet started;
#: ended.
STATUSES = ("active", "suspended", "future", "ended")


@dataclass
class Filters:
    method: str = ""
    role: str = ""
    status: str = ""
    query: str = ""


@dataclass
class Row:
    enrolment_id: int
    user: User
    instance: EnrolInstance
    status: str
    timestart: int
    timeend: int
    timecreated: int
    roles: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    #: Whether the method lets the enrolment be removed by hand (else no "Unenrol" is offered).
    removable: bool = True


@dataclass
class Page:
    rows: list[Row]
    total: int
    page: int
    size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))


def _filtered(site: Site, course: Course, filters: Filters, with_users: bool = False) -> Select:
    """The ids of the matching enrolments. Users are joined only when needed (a search, or the
    page's ordering): counting 100,000 enrolments then never touches the users table."""
    now = site.now()
    stmt = (
        select(UserEnrolment.id)
        .join(EnrolInstance, EnrolInstance.id == UserEnrolment.instance_id)
        .where(EnrolInstance.course_id == course.id)
    )
    if with_users or filters.query:
        stmt = stmt.join(User, User.id == UserEnrolment.user_id)
    if filters.method:
        stmt = stmt.where(EnrolInstance.method == filters.method)
    if filters.role:
        # Correlated on the user (``ix_role_assignments_user_id``): measured faster than IN.
        stmt = stmt.where(
            exists().where(
                RoleAssignment.user_id == UserEnrolment.user_id,
                RoleAssignment.contextlevel == COURSE,
                RoleAssignment.instanceid == course.id,
                RoleAssignment.role_id
                == select(Role.id).where(Role.shortname == filters.role).scalar_subquery(),
            )
        )
    if filters.status == "active":
        stmt = stmt.where(active_clause(now))
    elif filters.status == "suspended":
        stmt = stmt.where(or_(UserEnrolment.status == SUSPENDED, EnrolInstance.enabled.is_(False)))
    elif filters.status == "future":
        stmt = stmt.where(
            UserEnrolment.status == ACTIVE,
            EnrolInstance.enabled.is_(True),
            UserEnrolment.timestart > now,
        )
    elif filters.status == "ended":
        stmt = stmt.where(
            UserEnrolment.status == ACTIVE,
            EnrolInstance.enabled.is_(True),
            UserEnrolment.timeend != 0,
            UserEnrolment.timeend <= now,
        )
    elif filters.status:
        stmt = stmt.where(false())
    if filters.query:
        stmt = stmt.where(search_clause(site, filters.query))
    return stmt


def search_clause(site: Site, query: str):
    """Name, username or email containing ``query``, ignoring case. SQLite's LIKE already
    ignores (ASCII) case and is several times faster than ``lower() LIKE lower()``."""
    pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    sqlite = site.session.get_bind().dialect.name == "sqlite"
    columns = (User.username, User.firstname, User.lastname, User.email)
    return or_(
        *(
            column.like(pattern, escape="\\") if sqlite else column.ilike(pattern, escape="\\")
            for column in columns
        )
    )


def status_of(enrolment: UserEnrolment, instance: EnrolInstance, now: int) -> str:
    if enrolment.status != ACTIVE or not instance.enabled:
        return "suspended"
    if enrolment.timestart > now:
        return "future"
    if enrolment.timeend and enrolment.timeend <= now:
        return "ended"
    return "active"


def page(site: Site, course: Course, filters: Filters, number: int, size: int) -> Page:
    """One page of participants, ordered by username then method order."""
    now = site.now()
    total = site.session.scalar(
        select(func.count()).select_from(_filtered(site, course, filters).subquery())
    )
    number = min(max(1, number), max(1, -(-total // size)))
    order = (User.username, EnrolInstance.sortorder, UserEnrolment.id)
    ids = (
        _filtered(site, course, filters, with_users=True)
        .order_by(*order)
        .limit(size)
        .offset((number - 1) * size)
    )
    found = site.session.execute(
        select(UserEnrolment, User, EnrolInstance)
        .join(User, User.id == UserEnrolment.user_id)
        .join(EnrolInstance, EnrolInstance.id == UserEnrolment.instance_id)
        .where(UserEnrolment.id.in_(ids.scalar_subquery()))
        .order_by(*order)
    ).all()
    rows = [
        Row(
            enrolment_id=ue.id,
            user=user,
            instance=instance,
            status=status_of(ue, instance, now),
            timestart=ue.timestart,
            timeend=ue.timeend,
            timecreated=ue.timecreated,
            removable=_removable(site, instance, ue.status),
        )
        for ue, user, instance in found
    ]
    _add_roles_and_groups(site, course, rows)
    return Page(rows, total, number, size)


def _removable(site: Site, instance: EnrolInstance, status: int) -> bool:
    method = site.plugins.methods.get(instance.method)
    return method is None or method.may_unenrol_by_hand(status)


def _add_roles_and_groups(site: Site, course: Course, rows: list[Row]) -> None:
    """Roles and groups of the page's users: those the row's instance owns, and unowned ones
    (given by hand), as ``enrolkit enrolment list`` shows them."""
    user_ids = list({row.user.id for row in rows})
    if not user_ids:
        return
    roles: dict[int, list[tuple[str, str, int]]] = {}
    for user_id, shortname, name, component, itemid in site.session.execute(
        select(
            RoleAssignment.user_id,
            Role.shortname,
            Role.name,
            RoleAssignment.component,
            RoleAssignment.itemid,
        )
        .join(Role, Role.id == RoleAssignment.role_id)
        .where(
            RoleAssignment.contextlevel == COURSE,
            RoleAssignment.instanceid == course.id,
            RoleAssignment.user_id.in_(user_ids),
        )
        .order_by(Role.sortorder)
    ):
        roles.setdefault(user_id, []).append((role_label(shortname, name), component, itemid))
    groups: dict[int, list[tuple[str, str, int]]] = {}
    for user_id, name, component, itemid in site.session.execute(
        select(GroupMember.user_id, Group.name, GroupMember.component, GroupMember.itemid)
        .join(Group, Group.id == GroupMember.group_id)
        .where(Group.course_id == course.id, GroupMember.user_id.in_(user_ids))
        .order_by(Group.name)
    ):
        groups.setdefault(user_id, []).append((name, component, itemid))
    for row in rows:
        component, item = row.instance.component, row.instance.id
        row.roles = _mine(roles.get(row.user.id, []), component, item)
        row.groups = _mine(groups.get(row.user.id, []), component, item)


def _mine(items: list[tuple[str, str, int]], component: str, itemid: int) -> list[str]:
    return list(
        dict.fromkeys(
            name for name, comp, item in items if (comp == component and item == itemid) or not comp
        )
    )


def methods_in(site: Site, course: Course) -> list[str]:
    """The methods that have instances in the course, for the method filter."""
    return list(
        site.session.scalars(
            select(EnrolInstance.method)
            .where(EnrolInstance.course_id == course.id)
            .group_by(EnrolInstance.method)
            .order_by(EnrolInstance.method)
        )
    )


def roles() -> Select:
    return select(Role).order_by(Role.sortorder)


def is_participant(site: Site, course: Course, user: User) -> bool:
    """Whether ``user`` holds an enrolment in ``course`` (any method, any status): a row of
    the participants page."""
    return (
        site.session.scalar(
            select(UserEnrolment.id)
            .join(EnrolInstance, EnrolInstance.id == UserEnrolment.instance_id)
            .where(EnrolInstance.course_id == course.id, UserEnrolment.user_id == user.id)
            .limit(1)
        )
        is not None
    )
