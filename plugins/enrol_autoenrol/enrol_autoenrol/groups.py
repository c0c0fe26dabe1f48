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
from collections.abc import Collection, Iterable, Mapping, Sequence

from enrolkit import Change, Plan, templating
from enrolkit.batches import apply_batched
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
    return names_for(site, [instance], user)[instance.id]


def names_for(site: Site, instances: Iterable[EnrolInstance], user: User) -> dict[int, str | None]:
    """Per instance id, the group ``user`` belongs in under its template (None for no group).
    The values every template reads are loaded together, once."""
    templates = {instance.id: template_of(instance) for instance in instances}
    used = sorted(set(templates.values()) - {""})
    values = templating.group_values(site, user, " ".join(used)) if used else {}
    return {
        instance_id: templating.render_group_name(values, template) if template else None
        for instance_id, template in templates.items()
    }


def idnumber(instance_id: int, name: str) -> str:
    return f"autoenrol|{instance_id}|{name}"[: Group.__table__.c.idnumber.type.length]


def ensure(site: Site, instance: EnrolInstance, names: Iterable[str]) -> dict[str, int]:
    """Group ids by name in the instance's course, creating the missing groups (see
    :func:`ensure_all`)."""
    return ensure_all(site, {instance: names})[instance.id]


def ensure_all(
    site: Site, wanted: Mapping[EnrolInstance, Iterable[str]]
) -> dict[int, dict[str, int]]:
    """Per instance id, group ids by name in the instance's course, creating the missing groups
    (owned by the instance; by the first of them, in id order, when two instances of a course
    name the same group; two sessions creating one at once get the same group). One read and
    one insert per ``CHUNK`` groups, however many instances: a login into ten courses pays for
    its groups once."""
    names = {instance: {name for name in found if name} for instance, found in wanted.items()}
    owners: dict[tuple[int, str], EnrolInstance] = {}
    for instance in sorted(names, key=lambda instance: instance.id):
        for name in names[instance]:
            owners.setdefault((instance.course_id, name), instance)
    keys = sorted(owners)
    found = _existing(site, keys)
    missing = [key for key in keys if key not in found]
    if missing:
        _create(site, [(owners[key], key[1]) for key in missing])
        found.update(_existing(site, missing))
    return {
        instance.id: {name: found[instance.course_id, name] for name in wanted_names}
        for instance, wanted_names in names.items()
    }


def _create(site: Site, groups: list[tuple[EnrolInstance, str]]) -> None:
    """Insert the groups no session has made yet, and log those this insert made."""
    now = site.now()
    statement = _INSERTS[site.session.get_bind().dialect.name](Group).on_conflict_do_nothing(
        index_elements=["course_id", "name"]
    )
    created: set[tuple[int, str]] = set()
    for start in range(0, len(groups), CHUNK):
        rows = [
            {
                "course_id": instance.course_id,
                "name": name,
                "idnumber": idnumber(instance.id, name),
                "component": COMPONENT,
                "itemid": instance.id,
                "timecreated": now,
            }
            for instance, name in groups[start : start + CHUNK]
        ]
        returned = site.session.execute(
            statement.values(rows).returning(Group.course_id, Group.name)
        )
        created.update((course, name) for course, name in returned)
    # Only the groups this insert made are logged: another session's are its own to log.
    logged = [
        {
            "time": now,
            "event": "group_created",
            "component": COMPONENT,
            "course_id": instance.course_id,
            "instance_id": instance.id,
            "origin": site.origin,
            "reason": name,
        }
        for instance, name in groups
        if (instance.course_id, name) in created
    ]
    if logged:
        site.session.execute(insert(LogEntry), logged)


def _existing(site: Site, keys: Sequence[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """Ids of the groups named by ``(course id, name)`` pairs that exist."""
    found: dict[tuple[int, str], int] = {}
    wanted = set(keys)
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start : start + CHUNK]
        rows = site.session.execute(
            select(Group.course_id, Group.name, Group.id).where(
                Group.course_id.in_({course for course, _ in chunk}),
                Group.name.in_({name for _, name in chunk}),
            )
        )
        found.update(
            ((course, name), group) for course, name, group in rows if (course, name) in wanted
        )
    return found


def regroup(
    site: Site, instances: Collection[EnrolInstance], user_ids: Sequence[int], reason: str
) -> int:
    """Move the users' *active* enrolments in ``instances`` into the groups the templates name
    now, and out of the instances' other groups: one plan per instance that changes, in engine
    batches. Suspended
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
    moving = sorted(set(joins) | set(leaves))
    ids = ensure_all(site, {by_id[i]: (name for _, name in joins[i]) for i in moving})
    plans = (
        Plan(
            instance_id,
            reason=reason,
            changes=[
                Change(user_id, group_id=ids[instance_id][name], reason=f"{reason}: {name}")
                for user_id, name in joins[instance_id]
            ]
            + leaves[instance_id],
        )
        for instance_id in moving
    )
    return sum(
        applied.outcome.groups_added + applied.outcome.groups_removed
        for applied in apply_batched(site, plans)
    )


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
    """Per template, each user's group name (users with an empty value are left out): one query
    with a column per template."""
    ordered = sorted(templates)
    names: dict[str, dict[int, str]] = {template: {} for template in ordered}
    if not ordered:
        return names
    rows = site.session.execute(
        select(User.id, *(templating.group_name_sql(template) for template in ordered)).where(
            User.id.in_(list(user_ids))
        )
    )
    for user_id, *values in rows:
        for template, name in zip(ordered, values, strict=True):
            if name:
                names[template][user_id] = name
    return names
