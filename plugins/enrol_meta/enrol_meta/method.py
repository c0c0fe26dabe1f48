"""The course meta link method: a target course mirrors the enrolments of a source course."""

from __future__ import annotations

from collections import deque

from enrolkit import SUSPEND_NOROLES, EnrolMethod, Plan, SettingsError
from enrolkit.errors import Refused, Where
from enrolkit.groups import NEW_GROUP, check_group_setting, create_instance_group
from enrolkit.models import COURSE, Course, EnrolInstance, Role, RoleAssignment, User
from enrolkit.site import Site
from enrolkit.texts import Text
from sqlalchemy import or_, select

from . import sync as meta_sync
from .schemas import MetaInstanceSettings, MetaSiteSettings

#: Roles whose holders in the source may link it (beside site admins).
TEACHER_ROLES = ("editingteacher", "teacher")


class MetaMethod(EnrolMethod):
    name = meta_sync.NAME
    title = Text("Course meta link")
    instance_schema = MetaInstanceSettings
    site_schema = MetaSiteSettings
    manual_unenrol = False
    manual_unenrol_suspended = True
    default_removal = SUSPEND_NOROLES
    roles_follow_enabled = True

    def default_role(self, site: Site) -> None:
        """A link copies the source's roles; it has no role of its own."""
        return None

    def refusal(self, site: Site, instance: EnrolInstance) -> Text:
        return Text(
            "the enrolment mirrors the course %(course)s (meta link); unenrol the user from "
            "%(course)s instead (a suspended mirrored enrolment may be unenrolled by hand)",
            course=instance.settings.get("source", "?"),
        )

    def where_to_act(
        self, site: Site, instance: EnrolInstance, user: User
    ) -> tuple[str, Where] | None:
        source = site.session.scalar(
            select(Course).where(Course.shortname == instance.settings.get("source", ""))
        )
        if source is None:
            return None
        return f"enrolkit enrolment remove {user.username} {source.shortname}", Where(
            Text("unenrol %(user)s from %(course)s", user=user.fullname, course=source.fullname),
            "course.participants_page",
            {"course_id": source.id},
        )

    def prepare_instance(self, site: Site, course: Course, settings: dict) -> dict:
        """The source must exist, not be the target, be linkable by the acting user, and not
        close a cycle of links."""
        shortname = settings["source"].strip()
        source = site.session.scalar(select(Course).where(Course.shortname == shortname))
        problem = None
        if source is None:
            problem = f"no course with shortname {shortname!r}"
        elif source.id == course.id:
            problem = f"{shortname} cannot be linked to itself"
        else:
            _check_permission(site, source)
            cycle = _cycle(site, source.shortname, course.shortname)
            if cycle:
                problem = (
                    f"linking {shortname} into {course.shortname} would close the cycle "
                    f"{' -> '.join(cycle)}"
                )
        errors = {"source": [problem]} if problem else {}
        group, group_problem = check_group_setting(site, course, settings["group"])
        if group_problem:
            errors["group"] = [group_problem]
        if errors:
            raise SettingsError(errors, where=f"settings of {self.name}")
        return {**settings, "source": shortname, "group": group}

    def instance_saved(self, site: Site, instance: EnrolInstance) -> None:
        """Refuse a second link to the same source (only the saved instance knows its id);
        create the group asked for with ``group=new`` (named after the source, as Moodle does)."""
        twin = site.session.scalar(
            select(EnrolInstance.id).where(
                EnrolInstance.course_id == instance.course_id,
                EnrolInstance.method == self.name,
                EnrolInstance.id != instance.id,
                meta_sync.SOURCE_KEY == instance.settings["source"],
            )
        )
        if twin is not None:
            raise SettingsError(
                {"source": [f"this course already links {instance.settings['source']} "
                            f"(instance {twin})"]},
                where=f"settings of {self.name}",
            )  # fmt: skip
        if instance.settings.get("group") == NEW_GROUP:
            source = site.session.scalar(
                select(Course).where(Course.shortname == instance.settings["source"])
            )
            create_instance_group(site, instance, f"{source.fullname or source.shortname} course")

    def sync(self, site: Site, instance: EnrolInstance) -> Plan:
        return meta_sync.plan(site, instance, "link saved")

    def display_name(self, instance: EnrolInstance) -> str:
        return instance.name or Text(
            "%(method)s (%(course)s)",
            method=self.title,
            course=instance.settings.get("source", "?"),
        )


def _check_permission(site: Site, source: Course) -> None:
    """Only a site admin or a teacher of the source may link it. The CLI's operator (no actor)
    is the admin."""
    if not site.actor:
        return
    user = site.session.scalar(select(User).where(User.username == site.actor))
    if user is None:
        raise Refused(f"the acting user {site.actor!r} does not exist")
    if user.siteadmin:
        return
    teaches = site.session.scalar(
        select(RoleAssignment.id)
        .join(Role, Role.id == RoleAssignment.role_id)
        .where(
            RoleAssignment.user_id == user.id,
            RoleAssignment.contextlevel == COURSE,
            RoleAssignment.instanceid == source.id,
            or_(Role.shortname.in_(TEACHER_ROLES), Role.archetype.in_(TEACHER_ROLES)),
        )
        .limit(1)
    )
    if teaches is None:
        raise Refused(
            f"{site.actor} may not link {source.shortname}: only a site admin or a teacher of "
            f"{source.shortname} may use it as the source of a meta link"
        )


def _cycle(site: Site, source: str, target: str) -> list[str] | None:
    """The cycle a new link ``source`` -> ``target`` would close, as course shortnames from the
    source back to it, or None. Links feed their target; disabled links count (they may be
    re-enabled)."""
    feeds: dict[str, set[str]] = {}
    links = select(meta_sync.SOURCE_KEY, Course.shortname).join(
        Course, Course.id == EnrolInstance.course_id
    )
    for src, tgt in site.session.execute(links.where(EnrolInstance.method == meta_sync.NAME)):
        feeds.setdefault(src, set()).add(tgt)
    came_from: dict[str, str | None] = {target: None}
    queue = deque([target])
    while queue:
        node = queue.popleft()
        if node == source:
            path = [node]
            while came_from[path[-1]] is not None:
                path.append(came_from[path[-1]])
            return [source, *reversed(path)]
        for nxt in sorted(feeds.get(node, ())):
            if nxt not in came_from:
                came_from[nxt] = node
                queue.append(nxt)
    return None
