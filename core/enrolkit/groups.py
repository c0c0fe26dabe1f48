"""Groups by hand: create and delete a course's groups, put enrolled users in and take them out.

Every membership carries its owner (``component`` and ``itemid``): ``''`` and 0 for one made by
hand, ``enrol_<method>`` and the instance id for one a sync made. A sync adds and removes only
its own memberships, so one added by hand is never removed by a sync; adding by hand a
membership a sync made takes it over (the sync then leaves it alone, as it would a membership
that was there first). Only leaving the course altogether (the last enrolment gone) removes a
hand-made membership, as in Moodle.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select

from .errors import EnrolkitError, NotFound, Refused
from .log import record
from .models import Course, EnrolInstance, Group, GroupMember, User, UserEnrolment
from .site import Site

HAND = ""
#: An instance's ``group`` setting: no group, a new group it owns, or the name of a course group.
NO_GROUP, NEW_GROUP = "none", "new"


def find(site: Site, course: Course, name: str) -> Group:
    group = site.session.scalar(
        select(Group).where(Group.course_id == course.id, Group.name == name)
    )
    if group is None:
        raise NotFound(
            f"{course.shortname} has no group {name!r}; see enrolkit group list {course.shortname}"
        )
    return group


def owner(site: Site, component: str, itemid: int) -> str:
    """Who owns a group or membership, as people read it: ``by hand`` or ``cohort instance 5``."""
    return (
        "by hand" if component == HAND else f"{component.removeprefix('enrol_')} instance {itemid}"
    )


def add_group(site: Site, course: Course, name: str, idnumber: str = "") -> Group:
    name = name.strip()
    if not name or len(name) > Group.NAME_LENGTH:
        raise EnrolkitError(f"a group name has 1 to {Group.NAME_LENGTH} characters")
    taken = site.session.scalar(
        select(Group.id).where(Group.course_id == course.id, Group.name == name)
    )
    if taken is not None:
        raise EnrolkitError(f"{course.shortname} already has a group {name!r}")
    with site.atomic():
        group = Group(course_id=course.id, name=name, idnumber=idnumber, timecreated=site.now())
        site.session.add(group)
        site.session.flush()
        record(site, "group_created", "core", course_id=course.id, reason=name)
    return group


def remove_group(site: Site, group: Group) -> int:
    """Delete a group made by hand and its memberships. A group an instance made (``group=new``)
    belongs to it and goes with it. Returns how many members it had."""
    if group.component != HAND:
        raise Refused(
            f"group {group.name!r} belongs to {owner(site, group.component, group.itemid)}; "
            f"it goes when that instance is deleted"
        )
    with site.atomic():
        members = site.session.execute(
            delete(GroupMember).where(GroupMember.group_id == group.id)
        ).rowcount
        record(site, "group_deleted", "core", course_id=group.course_id, reason=group.name)
        site.session.delete(group)
        site.session.flush()
    return members


def list_groups(site: Site, course: Course) -> list[dict]:
    counts = dict(
        site.session.execute(
            select(GroupMember.group_id, func.count())
            .join(Group, Group.id == GroupMember.group_id)
            .where(Group.course_id == course.id)
            .group_by(GroupMember.group_id)
        ).all()
    )
    return [
        {
            "name": group.name,
            "idnumber": group.idnumber,
            "members": counts.get(group.id, 0),
            "owner": owner(site, group.component, group.itemid),
        }
        for group in site.session.scalars(
            select(Group).where(Group.course_id == course.id).order_by(Group.name)
        )
    ]


def members(site: Site, group: Group) -> list[dict]:
    return [
        {"username": username, "owner": owner(site, component, itemid), "timeadded": added}
        for username, component, itemid, added in site.session.execute(
            select(User.username, GroupMember.component, GroupMember.itemid, GroupMember.timeadded)
            .join(User, User.id == GroupMember.user_id)
            .where(GroupMember.group_id == group.id)
            .order_by(User.username)
        )
    ]


def add_members(site: Site, group: Group, users: list[User]) -> int:
    """Put enrolled users in the group by hand; nothing changes if one of them is not enrolled
    in the course. Returns how many memberships were added or taken over from a sync."""
    enrolled = set(
        site.session.scalars(
            select(UserEnrolment.user_id)
            .join(EnrolInstance, EnrolInstance.id == UserEnrolment.instance_id)
            .where(
                EnrolInstance.course_id == group.course_id,
                UserEnrolment.user_id.in_([u.id for u in users]),
            )
        )
    )
    outsiders = [u.username for u in users if u.id not in enrolled]
    if outsiders:
        course = site.session.get(Course, group.course_id)
        raise Refused(
            f"not enrolled in {course.shortname}: {', '.join(outsiders)}; "
            f"only enrolled users may join its groups"
        )
    changed = 0
    with site.atomic():
        for user in users:
            member = site.session.get(GroupMember, (group.id, user.id))
            if member is not None and member.component == HAND:
                continue
            if member is None:
                site.session.add(
                    GroupMember(group_id=group.id, user_id=user.id, timeadded=site.now())
                )
                reason = f"group {group.name}: added by hand"
            else:
                reason = (
                    f"group {group.name}: taken over by hand from "
                    f"{owner(site, member.component, member.itemid)}"
                )
                member.component, member.itemid = HAND, 0
            record(site, "group_member_added", "core", course_id=group.course_id,
                   user_id=user.id, reason=reason)  # fmt: skip
            changed += 1
        site.session.flush()
    return changed


def remove_members(site: Site, group: Group, users: list[User]) -> int:
    """Take users out of the group. A membership a sync owns is refused (remove the user at its
    source), and nothing changes. Returns how many were removed."""
    found = {
        m.user_id: m
        for m in site.session.scalars(
            select(GroupMember).where(
                GroupMember.group_id == group.id,
                GroupMember.user_id.in_([u.id for u in users]),
            )
        )
    }
    owned = [
        f"{u.username} ({owner(site, found[u.id].component, found[u.id].itemid)})"
        for u in users
        if u.id in found and found[u.id].component != HAND
    ]
    if owned:
        raise Refused(
            f"these memberships belong to a sync, which adds and removes them: {', '.join(owned)}"
        )
    with site.atomic():
        for user in users:
            if user.id in found:
                site.session.delete(found[user.id])
                record(site, "group_member_removed", "core", course_id=group.course_id,
                       user_id=user.id, reason=f"group {group.name}: removed by hand")  # fmt: skip
        site.session.flush()
    return sum(1 for u in users if u.id in found)


# --- the ``group`` setting of syncing instances (cohort sync, meta links) -----------------------


def check_group_setting(site: Site, course: Course, value: str) -> tuple[str, str | None]:
    """Normalise an instance's ``group`` setting: (value, problem or None). ``none`` and ``new``
    in any case; otherwise a group of the course, by name."""
    value = value.strip()
    if value.lower() in (NO_GROUP, NEW_GROUP):
        return value.lower(), None
    found = site.session.scalar(
        select(Group.id).where(Group.course_id == course.id, Group.name == value)
    )
    if found is None:
        return value, (
            f"{course.shortname} has no group {value!r}; give an existing group, "
            f"{NO_GROUP} or {NEW_GROUP}"
        )
    return value, None


def create_instance_group(site: Site, instance: EnrolInstance, base: str) -> None:
    """For ``group=new``: a group named ``base`` ("... (2)" when taken), owned by the instance;
    the instance's settings then name it, so later syncs and updates find it."""
    base = base[: Group.NAME_LENGTH]
    taken = set(
        site.session.scalars(
            select(Group.name).where(
                Group.course_id == instance.course_id, Group.name.startswith(base, autoescape=True)
            )
        )
    )
    name, number = base, 1
    while name in taken:
        number += 1
        suffix = f" ({number})"
        name = base[: Group.NAME_LENGTH - len(suffix)] + suffix
    site.session.add(
        Group(
            course_id=instance.course_id,
            name=name,
            component=instance.component,
            itemid=instance.id,
            timecreated=site.now(),
        )
    )
    instance.settings = {**instance.settings, "group": name}
    site.session.flush()


def group_setting_field(new_means: str):
    """The marshmallow field of a ``group`` instance setting."""
    from marshmallow import fields

    return fields.String(
        load_default=NO_GROUP,
        metadata={
            "label": "Add to group",
            "help": f"none, new (a group named after {new_means}), or the name of a course group.",
        },
    )
