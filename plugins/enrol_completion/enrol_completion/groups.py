"""The instance's group: found by name in the target course, created when first needed, and
joined by every user the instance enrols (also those enrolled later by a pending action)."""

from __future__ import annotations

from collections.abc import Sequence

from enrolkit import Change, Plan
from enrolkit.log import record
from enrolkit.models import ACTIVE, EnrolInstance, Group, GroupMember, UserEnrolment
from enrolkit.site import Site
from sqlalchemy import select

COMPONENT = "enrol_completion"
CHUNK = 500


def group_id(site: Site, instance: EnrolInstance) -> int | None:
    """The id of the instance's group, creating it (owned by the instance, so deleting the
    instance removes it) when the course has none of that name; None without a group."""
    name = str((instance.settings or {}).get("group") or "").strip()
    if not name:
        return None
    found = site.session.scalar(
        select(Group.id).where(Group.course_id == instance.course_id, Group.name == name)
    )
    if found is not None:
        return found
    group = Group(
        course_id=instance.course_id,
        name=name,
        component=COMPONENT,
        itemid=instance.id,
        timecreated=site.now(),
    )
    site.session.add(group)
    site.session.flush()
    record(
        site,
        "group_created",
        COMPONENT,
        course_id=instance.course_id,
        instance_id=instance.id,
        reason=name,
    )
    return group.id


def join(site: Site, instance: EnrolInstance, user_ids: Sequence[int]) -> None:
    """Put the instance's active users among ``user_ids`` who are not in its group yet into it
    (one plan). Enrolments made at once already carry the group; this catches the rest."""
    gid = group_id(site, instance)
    if gid is None:
        return
    missing: list[int] = []
    for start in range(0, len(user_ids), CHUNK):
        chunk = user_ids[start : start + CHUNK]
        missing += site.session.scalars(
            select(UserEnrolment.user_id).where(
                UserEnrolment.instance_id == instance.id,
                UserEnrolment.user_id.in_(chunk),
                UserEnrolment.status == ACTIVE,
                ~select(GroupMember.user_id)
                .where(GroupMember.group_id == gid, GroupMember.user_id == UserEnrolment.user_id)
                .exists(),
            )
        )
    if missing:
        reason = "joins the group of the course-completion enrolment"
        changes = [Change(user_id, group_id=gid, reason=reason) for user_id in sorted(missing)]
        site.engine.apply(Plan(instance.id, reason=reason, changes=changes))
