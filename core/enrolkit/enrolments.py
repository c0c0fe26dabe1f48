"""Enrolment instances and enrolments: add, update and delete instances; manual enrolment;
who is in a course."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import and_, func, or_, select

from . import lengths, lookup
from .changes import InstanceChange
from .engine import Change, Outcome, Plan
from .errors import EnrolkitError, Refused, SettingsError, Where
from .methods import UNENROL, EnrolMethod
from .models import (
    ACTIVE,
    COURSE,
    Course,
    EnrolInstance,
    Group,
    GroupMember,
    Role,
    RoleAssignment,
    User,
    UserEnrolment,
)
from .site import Site
from .texts import Text

#: The refusal of a manual enrolment while the method is off (the CLI adds how to enable it).
MANUAL_DISABLED = Text("manual enrolment is disabled on this site; enable it")

CORE_KEYS = ("name", "role", "enabled")
_TRUE = {"1", "true", "yes", "on", "y"}
_FALSE = {"0", "false", "no", "off", "n", ""}


class _DryRun(Exception):
    def __init__(self, result):
        self.result = result


def parse_settings(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}``; a pair without ``=`` is an error."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SettingsError({pair: ["expected KEY=VALUE"]})
        out[key.strip()] = value.strip()
    return out


@dataclass
class InstanceResult:
    instance: EnrolInstance
    outcome: Outcome | None
    dry_run: bool = False
    #: Pending actions the first plan scheduled: (user id, action, due), soonest first.
    scheduled: list[tuple[int, str, int]] = field(default_factory=list)


def _core_values(site: Site, method: EnrolMethod, raw: dict, current: EnrolInstance | None) -> dict:
    errors: dict[str, list[str]] = {}
    values: dict = {}
    if "name" in raw:
        try:
            lengths.check(EnrolInstance.name, raw["name"], "name")
            values["name"] = raw["name"]
        except EnrolkitError as exc:
            errors["name"] = [str(exc).removeprefix("name: ")]
    if "role" in raw:
        try:
            values["role_id"] = lookup.role(site.session, raw["role"]).id
        except EnrolkitError as exc:
            errors["role"] = [str(exc)]
    elif current is None:
        default = method.default_role(site)
        values["role_id"] = lookup.role(site.session, default).id if default else None
    if "enabled" in raw:
        flag = str(raw["enabled"]).strip().lower()
        if flag in _TRUE:
            values["enabled"] = True
        elif flag in _FALSE:
            values["enabled"] = False
        else:
            errors["enabled"] = ["expected on or off"]
    if errors:
        raise SettingsError(errors, where=f"settings of {method.name}")
    return values


def _method_settings(
    site: Site, method: EnrolMethod, course: Course, raw: dict, current: dict | None
) -> dict:
    from marshmallow import ValidationError

    own = {key: value for key, value in raw.items() if key not in CORE_KEYS}
    if method.instance_schema is None:
        if own:
            raise SettingsError(
                {k: ["unknown setting"] for k in own}, where=f"settings of {method.name}"
            )
        return {}
    schema = method.instance_schema()
    base = schema.dump(current) if current else {}
    try:
        loaded = schema.load({**base, **own})
    except ValidationError as exc:
        raise SettingsError(exc.messages, where=f"settings of {method.name}") from None
    loaded = method.prepare_instance(site, course, loaded)
    return schema.dump(loaded)


def add_instance(
    site: Site,
    course: Course,
    method_name: str,
    raw: dict[str, str],
    *,
    dry_run: bool = False,
    backfill: bool = False,
) -> InstanceResult:
    """Attach a method to a course and run its first plan, in one transaction: its sync, or
    with ``backfill`` the method's backfill (see :meth:`EnrolMethod.backfill`)."""
    method = site.plugins.method(method_name)
    if not site.method_enabled(method_name):
        raise Refused(
            Text("the method %(method)s is disabled on this site; enable it first",
                 method=method.title or method_name),
            cli=f"enrolkit method enable {method_name}",
            web=Where(Text("Enrolment methods"), "admin.methods"),
        )  # fmt: skip
    if not method.manual_instances:
        raise Refused(f"{method_name} creates its instances itself; they cannot be added by hand")
    if not method.multiple_instances and _instances(site, course, method_name):
        raise Refused(
            f"{course.shortname} already has a {method_name} instance, "
            f"and the method allows only one per course"
        )
    core = _core_values(site, method, raw, None)
    settings = _method_settings(site, method, course, raw, None)
    if backfill and not core.get("enabled", True):
        raise Refused("a disabled instance enrols nobody, so it has nothing to backfill")
    try:
        with site.atomic():
            instance = _create(site, course, method, core, settings)
            plan = None
            if instance.enabled:  # a disabled instance syncs nothing until it is enabled
                plan = method.backfill(site, instance) if backfill else method.sync(site, instance)
            outcome = site.engine.apply(plan, dry_run=dry_run) if plan else None
            result = InstanceResult(instance, outcome, dry_run, _scheduled(site, instance))
            if dry_run:
                raise _DryRun(result)
            _changed(site, instance, "created")
            return result
    except _DryRun as done:
        return done.result


def _scheduled(site: Site, instance: EnrolInstance) -> list[tuple[int, str, int]]:
    from .pending import pending

    return [(a.user_id, a.action, a.due) for a in pending(site, instance_id=instance.id)]


def _create(
    site: Site, course: Course, method: EnrolMethod, core: dict, settings: dict
) -> EnrolInstance:
    return _create_many(site, method, [(course, core, settings)])[0]


def _create_many(
    site: Site, method: EnrolMethod, new: Sequence[tuple[Course, dict, dict]]
) -> list[EnrolInstance]:
    """Create one instance per ``(course, core values, settings)``, each after its course's
    last; the sort orders read, the rows written and logged, for all of them at once."""
    orders: dict[int, int] = {}
    course_ids = sorted({course.id for course, _, _ in new})
    for start in range(0, len(course_ids), _IN_LIST):
        orders.update(
            site.session.execute(
                select(EnrolInstance.course_id, func.max(EnrolInstance.sortorder))
                .where(EnrolInstance.course_id.in_(course_ids[start : start + _IN_LIST]))
                .group_by(EnrolInstance.course_id)
            ).all()
        )
    now = site.now()
    created = []
    for course, core, settings in new:
        orders[course.id] = orders.get(course.id, -1) + 1
        created.append(
            EnrolInstance(
                course_id=course.id,
                method=method.name,
                sortorder=orders[course.id],
                settings=settings,
                timecreated=now,
                timemodified=now,
                **core,
            )
        )
    site.session.add_all(created)
    site.session.flush()
    from .log import record

    for instance in created:
        method.instance_saved(site, instance)
        record(
            site,
            "enrol_instance_created",
            method.component,
            course_id=instance.course_id,
            instance_id=instance.id,
            reason=method.display_name(instance),
        )
    return created


#: Ids per ``IN (...)`` list.
_IN_LIST = 1000


def ensure_instance(site: Site, course: Course, method_name: str) -> EnrolInstance:
    """The course's single instance of a method, created with defaults on first use."""
    return ensure_instances(site, [course], method_name)[course.id]


def ensure_instances(
    site: Site, courses: Sequence[Course], method_name: str
) -> dict[int, EnrolInstance]:
    """Per course id, the course's single instance of a method (its first by sort order),
    created with defaults where missing: :func:`ensure_instance` for many courses (a flat
    file's chunk over a thousand new courses) at the cost of a few statements."""
    found: dict[int, EnrolInstance] = {}
    ids = sorted({course.id for course in courses})
    for start in range(0, len(ids), _IN_LIST):
        for instance in site.session.scalars(
            select(EnrolInstance)
            .where(
                EnrolInstance.course_id.in_(ids[start : start + _IN_LIST]),
                EnrolInstance.method == method_name,
            )
            .order_by(EnrolInstance.sortorder.desc())
        ):
            found[instance.course_id] = instance  # the last one read: the first by sort order
    missing = list({course.id: course for course in courses if course.id not in found}.values())
    if missing:
        method = site.plugins.method(method_name)
        core = _core_values(site, method, {}, None)
        new = [
            (course, core, _method_settings(site, method, course, {}, None)) for course in missing
        ]
        for instance in _create_many(site, method, new):
            found[instance.course_id] = instance
    return found


def _instances(site: Site, course: Course, method_name: str) -> list[EnrolInstance]:
    return list(
        site.session.scalars(
            select(EnrolInstance)
            .where(EnrolInstance.course_id == course.id, EnrolInstance.method == method_name)
            .order_by(EnrolInstance.sortorder)
        )
    )


def update_instance(
    site: Site, instance: EnrolInstance, raw: dict[str, str], *, dry_run: bool = False
) -> InstanceResult:
    method = site.plugins.method(instance.method)
    course = site.session.get(Course, instance.course_id)
    core = _core_values(site, method, raw, instance)
    settings = _method_settings(site, method, course, raw, instance.settings)
    was_enabled = instance.enabled
    try:
        with site.atomic():
            for key, value in core.items():
                setattr(instance, key, value)
            instance.settings = settings
            instance.timemodified = site.now()
            site.session.flush()
            method.instance_saved(site, instance)
            kind = _transition(was_enabled, instance.enabled)
            outcome = _follow_enabled(site, method, instance, kind, dry_run=dry_run)
            from .log import record

            record(
                site,
                "enrol_instance_updated",
                method.component,
                course_id=course.id,
                instance_id=instance.id,
                reason=", ".join(sorted(raw)),
            )
            if dry_run:
                raise _DryRun(InstanceResult(instance, outcome, dry_run=True))
            _changed(site, instance, kind)
            return InstanceResult(instance, outcome)
    except _DryRun as done:
        return done.result


def set_enabled(site: Site, instance: EnrolInstance, enabled: bool, reason: str) -> Outcome | None:
    """Enable or disable an instance without touching its settings (e.g. when its source is
    gone and its settings no longer validate): the same sync or disable plan, log and hook as
    ``update_instance`` with ``enabled=on|off``."""
    method = site.plugins.method(instance.method)
    kind = _transition(instance.enabled, enabled)
    if kind == "updated":
        return None
    with site.atomic():
        instance.enabled = enabled
        instance.timemodified = site.now()
        site.session.flush()
        outcome = _follow_enabled(site, method, instance, kind)
        from .log import record

        record(
            site,
            "enrol_instance_updated",
            method.component,
            course_id=instance.course_id,
            instance_id=instance.id,
            reason=f"{kind}: {reason}",
        )
        _changed(site, instance, kind)
    return outcome


def _transition(was_enabled: bool, enabled: bool) -> str:
    if was_enabled == enabled:
        return "updated"
    return "enabled" if enabled else "disabled"


def _follow_enabled(
    site: Site, method: EnrolMethod, instance: EnrolInstance, kind: str, *, dry_run: bool = False
) -> Outcome | None:
    """An enabled instance is brought up to date; one just disabled gets the method's disable
    plan; one that stays disabled syncs nothing."""
    if instance.enabled:
        plan = method.sync(site, instance)
    elif kind == "disabled":
        plan = method.disable(site, instance)
    else:
        plan = None
    return site.engine.apply(plan, dry_run=dry_run) if plan else None


def _changed(site: Site, instance: EnrolInstance, kind: str) -> None:
    site.plugins.instance_changed(
        site=site,
        change=InstanceChange(
            instance_id=instance.id,
            course_id=instance.course_id,
            method=instance.method,
            kind=kind,
            enabled=bool(instance.enabled) and kind != "deleted",
        ),
    )


def delete_instance(
    site: Site, instance: EnrolInstance, *, reason: str = "instance deleted"
) -> Outcome:
    """Unenrol everyone of the instance, drop the groups it owns, then the instance."""
    method = site.plugins.method(instance.method)
    with site.atomic():
        outcome = site.engine.apply(
            Plan(instance.id, reason=reason, desired=[], removal=UNENROL, guard=False)
        )
        for group in site.session.scalars(
            select(Group).where(Group.component == method.component, Group.itemid == instance.id)
        ):
            site.session.delete(group)
        from .log import record

        record(
            site,
            "enrol_instance_deleted",
            method.component,
            course_id=instance.course_id,
            instance_id=instance.id,
            reason=method.display_name(instance),
        )
        site.session.delete(instance)
        site.session.flush()
        _changed(site, instance, "deleted")
    return outcome


# --- manual enrolment --------------------------------------------------------------------------


def enrol_manually(
    site: Site,
    user: User,
    course: Course,
    *,
    role: Role | None = None,
    timestart: int | None = None,
    timeend: int | None = None,
) -> Outcome:
    if not site.method_enabled("manual"):
        raise Refused(
            MANUAL_DISABLED,
            cli="enrolkit method enable manual",
            web=Where(Text("Enrolment methods"), "admin.methods"),
        )
    if timestart and timeend and timeend <= timestart:
        raise EnrolkitError("the end must come after the start")
    with site.atomic():
        instance = ensure_instance(site, course, "manual")
        change = Change(
            user.id,
            role_id=role.id if role else None,
            timestart=timestart,
            timeend=timeend,
            reason=f"manual enrolment by {site.actor or site.origin}",
        )
        return site.engine.apply(Plan(instance.id, reason=change.reason, changes=[change]))


def unenrol_manually(
    site: Site, user: User, course: Course, instance_id: int | None = None
) -> list[Outcome]:
    """Remove the user's enrolments in the course (or one instance). Refused, with nothing
    changed, when any of them belongs to a method that forbids manual unenrol."""
    stmt = (
        select(EnrolInstance, UserEnrolment.status)
        .join(UserEnrolment, UserEnrolment.instance_id == EnrolInstance.id)
        .where(EnrolInstance.course_id == course.id, UserEnrolment.user_id == user.id)
    )
    if instance_id is not None:
        stmt = stmt.where(EnrolInstance.id == instance_id)
    found = [(instance, status) for instance, status in site.session.execute(stmt)]
    if not found:
        raise EnrolkitError(
            Text("%(user)s is not enrolled in %(course)s", user=user.username,
                 course=course.shortname)
            if instance_id is None
            else Text("%(user)s is not enrolled in %(course)s by this method",
                      user=user.username, course=course.shortname)
        )  # fmt: skip
    instances = [instance for instance, _status in found]
    refusals, places = [], []
    for instance, status in found:
        method = site.plugins.methods.get(instance.method)
        if method is not None and not method.may_unenrol_by_hand(status):
            refusals.append(method.refusal(site, instance))
            places.append(method.where_to_act(site, instance, user))
    if refusals:
        cli, web = next((place for place in places if place), (None, None))
        raise Refused(
            Text("cannot unenrol %(user)s from %(course)s: %(reasons)s", user=user.username,
                 course=course.shortname, reasons=Text.join("; ", refusals)),
            cli=cli, web=web,
        )  # fmt: skip
    with site.atomic():
        return site.engine.apply_many(
            [
                Plan(
                    i.id,
                    reason=f"manual unenrol by {site.actor or site.origin}",
                    changes=[Change(user.id, op="unenrol")],
                )
                for i in instances
            ]
        )


# --- reading ---------------------------------------------------------------------------------


def active_clause(now: int):
    """SQL: an enrolment that lets its user into the course right now."""
    return and_(
        UserEnrolment.status == ACTIVE,
        EnrolInstance.enabled.is_(True),
        UserEnrolment.timestart <= now,
        or_(UserEnrolment.timeend == 0, UserEnrolment.timeend > now),
    )


def is_enrolled(site: Site, user_id: int, course_id: int) -> bool:
    """Active and current in an enabled instance of an enabled method (Moodle's is_enrolled
    with onlyactive)."""
    found = site.session.scalar(
        select(UserEnrolment.id)
        .join(EnrolInstance, EnrolInstance.id == UserEnrolment.instance_id)
        .where(
            UserEnrolment.user_id == user_id,
            EnrolInstance.course_id == course_id,
            EnrolInstance.method.in_(site.enabled_methods()),
            active_clause(site.now()),
        )
        .limit(1)
    )
    return found is not None


def list_enrolments(site: Site, course: Course) -> list[dict]:
    """One row per user and instance, with the roles and groups each instance gave."""
    rows = site.session.execute(
        select(
            User.id,
            User.username,
            EnrolInstance.method,
            EnrolInstance.id,
            UserEnrolment.status,
            UserEnrolment.timestart,
            UserEnrolment.timeend,
            UserEnrolment.timecreated,
        )
        .join(UserEnrolment, UserEnrolment.user_id == User.id)
        .join(EnrolInstance, EnrolInstance.id == UserEnrolment.instance_id)
        .where(EnrolInstance.course_id == course.id)
        .order_by(User.username, EnrolInstance.sortorder)
    ).all()
    roles: dict[int, list[tuple[str, str, int]]] = {}
    for user_id, shortname, component, itemid in site.session.execute(
        select(
            RoleAssignment.user_id, Role.shortname, RoleAssignment.component, RoleAssignment.itemid
        )
        .join(Role, Role.id == RoleAssignment.role_id)
        .where(RoleAssignment.contextlevel == COURSE, RoleAssignment.instanceid == course.id)
        .order_by(Role.sortorder)
    ):
        roles.setdefault(user_id, []).append((shortname, component, itemid))
    groups: dict[int, list[tuple[str, str, int]]] = {}
    for user_id, name, component, itemid in site.session.execute(
        select(GroupMember.user_id, Group.name, GroupMember.component, GroupMember.itemid)
        .join(Group, Group.id == GroupMember.group_id)
        .where(Group.course_id == course.id)
        .order_by(Group.name)
    ):
        groups.setdefault(user_id, []).append((name, component, itemid))

    def mine(items, instance_id, method):
        component = f"enrol_{method}"
        return [
            name
            for name, comp, item in items
            if (comp == component and item == instance_id) or comp == ""
        ]

    return [
        {
            "username": username,
            "method": method,
            "instance": instance_id,
            "roles": mine(roles.get(user_id, []), instance_id, method),
            "status": "active" if status == ACTIVE else "suspended",
            "timestart": timestart,
            "timeend": timeend,
            "timecreated": timecreated,
            "groups": mine(groups.get(user_id, []), instance_id, method),
        }
        for user_id, username, method, instance_id, status, timestart, timeend, timecreated in rows
    ]
