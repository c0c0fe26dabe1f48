"""What follows a completion enrolment besides the welcome, as in ewallah's plugin: ``keepgroup``
puts the user in the target's groups named like their groups in the completed course (groups are
never created); ``unenrol_source`` unenrols them from the completed course, through each of their
enrolments there that may be removed by hand."""

from __future__ import annotations

from collections.abc import Sequence

from enrolkit import Change, Plan
from enrolkit.engine import UNENROL_OP
from enrolkit.models import ACTIVE, Course, EnrolInstance, Group, GroupMember, UserEnrolment
from enrolkit.site import Site
from sqlalchemy import and_, select
from sqlalchemy.orm import aliased

CHUNK = 500


def keep_groups(site: Site, instance: EnrolInstance, source: Course, user_ids: Sequence[int]):
    """Active users among ``user_ids`` join the target groups named like their source groups;
    the instance owns those memberships."""
    source_group, target_group = aliased(Group, name="sg"), aliased(Group, name="tg")
    pairs: list[tuple[int, int]] = []
    for start in range(0, len(user_ids), CHUNK):
        chunk = list(user_ids[start : start + CHUNK])
        pairs += site.session.execute(
            select(GroupMember.user_id, target_group.id)
            .join(source_group, source_group.id == GroupMember.group_id)
            .join(
                target_group,
                and_(
                    target_group.course_id == instance.course_id,
                    target_group.name == source_group.name,
                ),
            )
            .join(
                UserEnrolment,
                and_(
                    UserEnrolment.instance_id == instance.id,
                    UserEnrolment.user_id == GroupMember.user_id,
                    UserEnrolment.status == ACTIVE,
                ),
            )
            .where(source_group.course_id == source.id, GroupMember.user_id.in_(chunk))
            .order_by(GroupMember.user_id, target_group.id)
        ).all()
    if pairs:
        reason = f"keepgroup: same-named groups as in {source.shortname}"
        changes = [Change(user_id, group_id=gid, reason=reason) for user_id, gid in pairs]
        site.engine.apply(Plan(instance.id, reason=reason, changes=changes))


def unenrol_from_source(site: Site, source: Course, target: Course, user_ids: Sequence[int]):
    """Unenrol ``user_ids`` from the completed course, through every enrolment there whose method
    allows a removal by hand (others stay: they belong to their source)."""
    found = site.session.execute(
        select(EnrolInstance, UserEnrolment.user_id, UserEnrolment.status)
        .join(UserEnrolment, UserEnrolment.instance_id == EnrolInstance.id)
        .where(EnrolInstance.course_id == source.id, UserEnrolment.user_id.in_(list(user_ids)))
        .order_by(EnrolInstance.id, UserEnrolment.user_id)
    ).all()
    by_instance: dict[int, tuple[EnrolInstance, list[int]]] = {}
    for instance, user_id, status in found:
        method = site.plugins.methods.get(instance.method)
        if method is not None and method.may_unenrol_by_hand(status):
            by_instance.setdefault(instance.id, (instance, []))[1].append(user_id)
    reason = f"unenrol_source: enrolled in {target.shortname} after completing {source.shortname}"
    site.engine.apply_many(
        [
            Plan(
                instance.id,
                reason=reason,
                changes=[Change(user_id, op=UNENROL_OP, reason=reason) for user_id in users],
            )
            for instance, users in by_instance.values()
        ]
    )
