"""Groups named by an instance's template (``Groupe_{profile_field_department}``).

Each enrolled user belongs to the group their own values name; a user whose value is empty
belongs to none. Groups are created when first needed, owned by the instance (component
``enrol_autoenrol``, item the instance id, idnumber ``autoenrol|<instance>|<name>``), so deleting
the instance deletes them; a course group of that name that already exists is used as it is.
Memberships are owned by the instance too: when a user's values change, :func:`regroup` moves
them, through the engine, out of the instance's old group and into the new one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence

from enrolkit import Change, Plan, templating
from enrolkit.engine import LEAVE
from enrolkit.models import ACTIVE, EnrolInstance, Group, GroupMember, LogEntry, User, UserEnrolment
from enrolkit.site import Site
from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite

from .matching import COMPONENT, NAME

PROFILE_PREFIX = templating.PROFILE_PREFIX
#: Users (or names) per ``IN (...)`` list.
CHUNK = 500
_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def template_of(instance: EnrolInstance) -> str:
    return str((instance.settings or {}).get("group_template") or "").strip()


def name_for(site: Site, instance: EnrolInstance, user: User) -> str | None:
    """The group ``user`` belongs in under the instance's template; None for no group."""
    template = template_of(instance)
    return templating.group_name_for(site, user, template) if template else None


def idnumber(instance_id: int, name: str) -> str:
    return f"autoenrol|{instance_id}|{name}"[: Group.__table__.c.idnumber.type.length]


def ensure(site: Site, instance: EnrolInstance, names: Iterable[str]) -> dict[str, int]:
    """Group ids by name in the instance's course, creating the missing groups (owned by the
    instance; two sessions creating one at once get the same group)."""
    wanted = sorted({name for name in names if name})
    found: dict[str, int] = {}
    for start in range(0, len(wanted), CHUNK):
        found.update(_existing(site, instance, wanted[start : start + CHUNK]))
    missing = [name for name in wanted if name not in found]
    if not missing:
        return found
    now = site.now()
    statement = _INSERTS[site.session.get_bind().dialect.name](Group).on_conflict_do_nothing(
        index_elements=["course_id", "name"]
    )
    rows = [
        {
            "course_id": instance.course_id,
            "name": name,
            "idnumber": idnumber(instance.id, name),
            "component": COMPONENT,
            "itemid": instance.id,
            "timecreated": now,
        }
        for name in missing
    ]
    created: set[str] = set()
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        created.update(site.session.scalars(statement.values(chunk).returning(Group.name)))
    # Only the groups this insert made are logged: another session's are its own to log.
    if created:
        site.session.execute(
            insert(LogEntry),
            [
                {
                    "time": now,
                    "event": "group_created",
                    "component": COMPONENT,
                    "course_id": instance.course_id,
                    "instance_id": instance.id,
                    "origin": site.origin,
                    "reason": name,
                }
                for name in missing
                if name in created
            ],
        )
    for start in range(0, len(missing), CHUNK):
        found.update(_existing(site, instance, missing[start : start + CHUNK]))
    return found


def _existing(site: Site, instance: EnrolInstance, names: Sequence[str]) -> dict[str, int]:
    return dict(
        site.session.execute(
            select(Group.name, Group.id).where(
                Group.course_id == instance.course_id, Group.name.in_(names)
            )
        ).all()
    )


def regroup(
    site: Site, instances: Collection[EnrolInstance], user_ids: Sequence[int], reason: str
) -> int:
    """Move the users' *active* enrolments in ``instances`` into the groups the templates name
    now, and out of the instances' other groups: one plan per instance that changes. Suspended
    enrolments keep their groups. Returns how many memberships changed."""
    changed = 0
    for start in range(0, len(user_ids), CHUNK):
        changed += _regroup(site, instances, user_ids[start : start + CHUNK], reason)
    return changed


def _regroup(
    site: Site, instances: Collection[EnrolInstance], user_ids: Sequence[int], reason: str
) -> int:
    by_id = {instance.id: instance for instance in instances}
    active = site.session.execute(
        select(UserEnrolment.instance_id, UserEnrolment.user_id).where(
            UserEnrolment.instance_id.in_(list(by_id)),
            UserEnrolment.user_id.in_(list(user_ids)),
            UserEnrolment.status == ACTIVE,
        )
    ).all()
    if not active:
        return 0
    courses = {instance.course_id for instance in instances}
    # Every membership of these users in these courses: a group the user is already in (owned
    # by anyone) is not joined again; only the instance's own memberships are left.
    present: dict[tuple[int, int], set[str]] = defaultdict(set)
    owned: dict[tuple[int, int], dict[int, str]] = defaultdict(dict)
    for user_id, course_id, group_id, name, component, itemid in site.session.execute(
        select(
            GroupMember.user_id,
            Group.course_id,
            Group.id,
            Group.name,
            GroupMember.component,
            GroupMember.itemid,
        )
        .join(Group, Group.id == GroupMember.group_id)
        .where(Group.course_id.in_(courses), GroupMember.user_id.in_(list(user_ids)))
    ):
        present[course_id, user_id].add(name)
        if component == COMPONENT and itemid in by_id:
            owned[itemid, user_id][group_id] = name
    names = _names(site, {template_of(i) for i in instances} - {""}, user_ids)
    joins: dict[int, list[tuple[int, str]]] = defaultdict(list)
    leaves: dict[int, list[Change]] = defaultdict(list)
    for instance_id, user_id in active:
        instance = by_id[instance_id]
        template = template_of(instance)
        wanted = names[template].get(user_id) if template else None
        if wanted and wanted not in present[instance.course_id, user_id]:
            joins[instance_id].append((user_id, wanted))
        for group_id, name in owned[instance_id, user_id].items():
            if name != wanted:
                leaves[instance_id].append(
                    Change(user_id, op=LEAVE, group_id=group_id, reason=f"{reason}: not {name}")
                )
    changed = 0
    for instance_id in sorted(set(joins) | set(leaves)):
        instance = by_id[instance_id]
        ids = ensure(site, instance, (name for _, name in joins[instance_id]))
        changes = [
            Change(user_id, group_id=ids[name], reason=f"{reason}: {name}")
            for user_id, name in joins[instance_id]
        ] + leaves[instance_id]
        outcome = site.engine.apply(Plan(instance_id, reason=reason, changes=changes))
        changed += outcome.groups_added + outcome.groups_removed
    return changed


def profile_changed(site: Site, user_ids: Sequence[int], fields: Collection[str]) -> None:
    """Regroup the users whose profile changed, in the auto-enrol instances they are enrolled in
    whose template reads one of the changed fields (``department`` and
    ``profile_field_department`` count as one: a placeholder may read either)."""
    changed = {name.removeprefix(PROFILE_PREFIX) for name in fields}
    users = list(user_ids)
    for start in range(0, len(users), CHUNK):
        chunk = users[start : start + CHUNK]
        enrolled_in = select(UserEnrolment.instance_id).where(UserEnrolment.user_id.in_(chunk))
        instances = [
            instance
            for instance in site.session.scalars(
                select(EnrolInstance)
                .where(
                    EnrolInstance.method == NAME,
                    EnrolInstance.enabled.is_(True),
                    EnrolInstance.id.in_(enrolled_in),
                )
                .order_by(EnrolInstance.id)
            )
            if changed & _reads(instance)
        ]
        if instances:
            regroup(site, instances, chunk, "profile changed")


def _reads(instance: EnrolInstance) -> set[str]:
    return {
        name.removeprefix(PROFILE_PREFIX)
        for name in templating.group_placeholders(template_of(instance))
    }


def _names(site: Site, templates: set[str], user_ids: Sequence[int]) -> dict[str, dict[int, str]]:
    """Per template, each user's group name (users with an empty value are left out)."""
    names: dict[str, dict[int, str]] = {}
    for template in templates:
        rows = site.session.execute(
            select(User.id, templating.group_name_sql(template)).where(User.id.in_(list(user_ids)))
        )
        names[template] = {user_id: name for user_id, name in rows if name}
    return names
