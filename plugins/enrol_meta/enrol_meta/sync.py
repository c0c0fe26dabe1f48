"""Meta links as SQL: the mirrored state of a source course, and what each trigger re-syncs.

A link mirrors every enrolment of its source that comes from an enabled method other than meta
(links do not chain): the user is active there if any of those enrolments is active (in an enabled
instance), from the earliest start to the latest end (an open end wins) of the active ones; and
holds the source's course roles (manual ones and those of enabled methods, less the site's "do not
sync" roles). Roles are dropped while the user is suspended unless the removal action is
``suspend``. With ``syncall`` off, only users holding a synchronised role are mirrored.
"""

from __future__ import annotations

from collections.abc import Callable

from enrolkit import KEEP, SUSPEND, Plan
from enrolkit.changes import EnrolmentChanges, InstanceChange, RoleChange
from enrolkit.drift import resync
from enrolkit.engine import DESIRED_COLUMNS
from enrolkit.enrolments import delete_instance
from enrolkit.groups import NEW_GROUP, NO_GROUP
from enrolkit.models import (
    ACTIVE,
    COURSE,
    SUSPENDED,
    Course,
    EnrolInstance,
    Group,
    Role,
    RoleAssignment,
    User,
    UserEnrolment,
)
from enrolkit.site import Site
from enrolkit.texts import Text
from sqlalchemy import Select, and_, case, exists, func, select, true
from sqlalchemy.orm import aliased

NAME = "meta"
#: The link's source course shortname, as SQL.
SOURCE_KEY = EnrolInstance.settings["source"].as_string()


def desired_for(site: Site) -> Callable[..., Select]:
    """The desired-state selection of links, under the site's current settings: a function of
    the link ids (a list or a selection), and optionally of the only users wanted, giving
    ``instance_id`` and the desired columns."""
    settings = site.method_settings(NAME)
    mirrored = [name for name in site.enabled_methods() if name != NAME]
    components = ["", *(f"enrol_{name}" for name in mirrored)]
    keep_roles = settings["removal"] in (SUSPEND, KEEP)
    nosync = settings["nosyncroles"]

    def synced_roles(ra, source_id, user_id):
        # The context is compared as an expression so that SQLite, which has no statistics,
        # cannot reach a user's roles through the context index (every role in the course, for
        # each user) and uses the user_id index (the user's few roles) instead.
        condition = and_(
            ra.user_id == user_id,
            ra.contextlevel.concat("") == COURSE,
            ra.instanceid + 0 == source_id,
            ra.component.in_(components),
        )
        if nosync:
            condition = and_(
                condition, ra.role_id.not_in(select(Role.id).where(Role.shortname.in_(nosync)))
            )
        return condition

    def desired(link_ids, users: tuple[int, ...] | None = None) -> Select:
        link = aliased(EnrolInstance, name="link")
        mirrored_instance = aliased(EnrolInstance, name="mirrored")
        source = aliased(Course, name="source")
        link_source = link.settings["source"].as_string()
        ue = UserEnrolment
        live = and_(ue.status == ACTIVE, mirrored_instance.enabled.is_(True))
        agg = (
            select(
                link.id.label("instance_id"),
                source.id.label("source_id"),
                ue.user_id.label("user_id"),
                func.max(case((live, 1), else_=0)).label("live"),
                func.min(case((live, ue.timestart))).label("live_start"),
                func.max(case((and_(live, ue.timeend == 0), 1), else_=0)).label("live_open"),
                func.max(case((live, ue.timeend))).label("live_end"),
                func.min(ue.timestart).label("any_start"),
                func.max(case((ue.timeend == 0, 1), else_=0)).label("any_open"),
                func.max(ue.timeend).label("any_end"),
            )
            .select_from(link)
            .join(source, and_(source.shortname == link_source, source.id != link.course_id))
            .join(
                mirrored_instance,
                and_(
                    mirrored_instance.course_id == source.id,
                    # An expression, so SQLite starts from the links (not from every instance
                    # of the mirrored methods, and so every enrolment of the site).
                    mirrored_instance.method.concat("").in_(mirrored),
                ),
            )
            .join(ue, ue.instance_id == mirrored_instance.id)
            .join(User, and_(User.id == ue.user_id, User.deleted.is_(False)))
            .where(link.method == NAME, link.id.in_(link_ids))
            .where(ue.user_id.in_(users) if users is not None else true())
            .group_by(link.id, source.id, ue.user_id)
            .subquery("mirror")
        )
        is_live = agg.c.live == 1
        role = aliased(RoleAssignment, name="role")
        role_join = synced_roles(role, agg.c.source_id, agg.c.user_id)
        if not keep_roles:
            role_join = and_(role_join, is_live)
        stmt = select(
            agg.c.instance_id,
            agg.c.user_id,
            role.role_id.label("role_id"),
            case((is_live, agg.c.live_start), else_=agg.c.any_start).label("timestart"),
            case(
                (is_live, case((agg.c.live_open == 1, 0), else_=agg.c.live_end)),
                else_=case((agg.c.any_open == 1, 0), else_=agg.c.any_end),
            ).label("timeend"),
            case((is_live, ACTIVE), else_=SUSPENDED).label("status"),
            _group_of(agg.c.instance_id).label("group_id"),
        ).select_from(agg.outerjoin(role, role_join))
        if not settings["syncall"]:
            any_role = aliased(RoleAssignment, name="any_role")
            stmt = stmt.where(
                exists().where(synced_roles(any_role, agg.c.source_id, agg.c.user_id))
            )
        return stmt

    return desired


def _group_of(link_id):
    """The id of the target group the link's ``group`` setting names (none for ``none``)."""
    link = aliased(EnrolInstance, name="grouped")
    name = link.settings["group"].as_string()
    return (
        select(Group.id)
        .join(link, and_(link.course_id == Group.course_id, Group.name == name))
        .where(link.id == link_id, name.not_in((NO_GROUP, NEW_GROUP)))
        .scalar_subquery()
    )


def plan(
    site: Site, instance: EnrolInstance, reason: str, users: tuple[int, ...] | None = None
) -> Plan:
    """The link's desired state; limited to ``users`` when only they changed in the source."""
    # Limited to ``users``, the source is read through their enrolments only.
    rows = desired_for(site)([instance.id], users).subquery()
    return Plan(
        instance.id,
        reason=f"meta link from {instance.settings.get('source')}: {reason}",
        desired=select(*(rows.c[name] for name in DESIRED_COLUMNS)),
        users=users,
    )


def links_from(site: Site, course_ids: set[int]) -> list[EnrolInstance]:
    """Enabled links whose source is one of ``course_ids``."""
    if not course_ids:
        return []
    sources = select(Course.shortname).where(Course.id.in_(course_ids))
    return list(
        site.session.scalars(
            select(EnrolInstance)
            .where(
                EnrolInstance.method == NAME,
                EnrolInstance.enabled.is_(True),
                SOURCE_KEY.in_(sources),
            )
            .order_by(EnrolInstance.id)
        )
    )


def source_changed(site: Site, changes: tuple[EnrolmentChanges, ...]) -> None:
    """Enrolments changed in some courses: re-sync the users concerned in the links those
    courses feed, now, as one engine batch. Changes made by a link are not mirrored further
    (links do not chain), so they stop here."""
    if not site.method_enabled(NAME):
        return
    users: dict[int, set[int]] = {}
    reasons: dict[int, list[str]] = {}
    for change in changes:
        if change.method != NAME:
            users.setdefault(change.course_id, set()).update(change.users)
            found = reasons.setdefault(change.course_id, [])
            if change.reason not in found:
                found.append(change.reason)
    _resync_users(
        site,
        users,
        {course: f"source changed ({'; '.join(why)})" for course, why in reasons.items()},
    )


def roles_changed(site: Site, changes: tuple[RoleChange, ...]) -> None:
    """Course roles changed: re-sync the users concerned in the links those courses feed (a
    plan's enrolment changes usually came first and already carried the roles over, so this is
    mostly a no-op that costs a few rows)."""
    if not site.method_enabled(NAME):
        return
    users: dict[int, set[int]] = {}
    for change in changes:
        if change.contextlevel == COURSE and change.component != f"enrol_{NAME}":
            users.setdefault(change.instanceid, set()).add(change.user_id)
    _resync_users(site, users, dict.fromkeys(users, "source roles changed"))


def _resync_users(site: Site, users: dict[int, set[int]], reasons: dict[int, str]) -> None:
    """Re-sync ``users[course]`` in every link fed by that course: one plan per link, all of
    them applied in one batch."""
    if not users:
        return
    shortnames = {
        shortname: course_id
        for shortname, course_id in site.session.execute(
            select(Course.shortname, Course.id).where(Course.id.in_(users))
        )
    }
    plans = []
    for link in links_from(site, set(users)):
        course_id = shortnames.get(link.settings.get("source"))
        if course_id is not None:
            who = tuple(sorted(users[course_id]))
            plans.append(plan(site, link, reasons[course_id], users=who))
    site.engine.apply_many(plans)


def source_instance_changed(site: Site, change: InstanceChange) -> None:
    """An instance of a source course was enabled, disabled, changed or deleted: its users'
    access there changed as a whole, so the links it feeds re-sync now (not at the next hourly
    run). A link's own changes do not feed other links."""
    if change.method == NAME or change.kind == "created" or not site.method_enabled(NAME):
        return
    for link in links_from(site, {change.course_id}):
        site.engine.apply(plan(site, link, f"{_source_name(site, change)} {change.kind}"))


def _source_name(site: Site, change: InstanceChange) -> str:
    """The changed instance of the source course as people name it (for the log)."""
    instance = site.session.get(EnrolInstance, change.instance_id)
    method = site.plugins.methods.get(change.method)
    if instance is None or method is None:
        return f"{change.method} of the source course"
    return f"{method.display_name(instance)} of the source course"


def source_deleted(site: Site, course_id: int) -> None:
    """A source course is being deleted: every link naming it goes, with its enrolments, logged
    (enabled or not, and whether the method is enabled or not: a link to nothing can never be
    used again)."""
    shortname = select(Course.shortname).where(Course.id == course_id).scalar_subquery()
    links = site.session.scalars(
        select(EnrolInstance)
        .where(EnrolInstance.method == NAME, SOURCE_KEY == shortname)
        .order_by(EnrolInstance.id)
    )
    for link in list(links):
        delete_instance(site, link, reason=f"source course {link.settings.get('source')} deleted")


#: Site settings that change what every link mirrors.
MIRRORING_SETTINGS = frozenset({"nosyncroles", "syncall", "removal"})


def settings_changed(site: Site, method: str, names: tuple[str, ...]) -> None:
    """``nosyncroles``, ``syncall`` or ``removal`` changed: every enabled link re-syncs now."""
    if method != NAME or not MIRRORING_SETTINGS & set(names) or not site.method_enabled(NAME):
        return
    links = site.session.scalars(
        select(EnrolInstance)
        .where(EnrolInstance.method == NAME, EnrolInstance.enabled.is_(True))
        .order_by(EnrolInstance.id)
    )
    for link in list(links):
        site.engine.apply(plan(site, link, f"site settings changed ({', '.join(names)})"))


def full_sync(site: Site) -> str:
    """The hourly task: re-sync every enabled link whose state drifted."""
    if not site.method_enabled(NAME):
        return Text("meta links are disabled on this site; nothing to do")
    links = site.session.scalars(
        select(EnrolInstance).where(EnrolInstance.method == NAME, EnrolInstance.enabled.is_(True))
    )
    return str(resync(site, links, desired_for(site), lambda link: plan(site, link, "full sync")))
