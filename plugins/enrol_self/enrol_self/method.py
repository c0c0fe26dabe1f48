"""The self-enrolment method: its settings, the key check and the enrolment plan."""

from __future__ import annotations

from enrolkit import Change, EnrolMethod, Plan, SettingsError
from enrolkit.errors import Refused
from enrolkit.fields import matches
from enrolkit.models import Course, EnrolInstance, Group, User
from enrolkit.site import Site
from enrolkit.texts import Text
from marshmallow import Schema
from sqlalchemy import select

from . import NAME
from .offers import closed, has_key
from .schemas import InstanceSettings, KeyInput, SiteSettings


class SelfMethod(EnrolMethod):
    name = NAME
    title = Text("Self enrolment")
    instance_schema = InstanceSettings
    site_schema = SiteSettings
    enrol_me_schema = KeyInput
    #: Wrong keys: five tries per user and instance in 15 minutes (the core counts them).
    enrol_me_attempts = 5
    enrol_me_window = 15 * 60

    def display_name(self, instance: EnrolInstance) -> str:
        return instance.name or self.title

    def enrol_me_schema_for(self, site: Site, instance: EnrolInstance) -> type[Schema] | None:
        return KeyInput if has_key(instance) else None

    def prepare_instance(self, site: Site, course: Course, settings: dict) -> dict:
        """Group keys must name groups of the course; the welcome template must render."""
        from enrolkit import templating

        errors: dict[str, list[str]] = {}
        wanted = set(settings.get("group_keys") or {})
        if wanted:
            known = set(
                site.session.scalars(
                    select(Group.name).where(Group.course_id == course.id, Group.name.in_(wanted))
                )
            )
            missing = sorted(wanted - known)
            if missing:
                errors["group_keys"] = [
                    f"no group {', '.join(missing)} in {course.shortname}; create it first"
                ]
        if settings.get("welcome_template", "").strip():
            problems = templating.validate_welcome(
                settings["welcome_template"],
                (),
                templating.custom_field_names(site),
                seconds=templating.time_limit(site),
            )
            if problems:
                errors["welcome_template"] = [str(problem) for problem in problems]
        if errors:
            raise SettingsError(errors, where=f"settings of {NAME}")
        return settings

    def confirm_enrolment(self, site: Site, instance: EnrolInstance, user: User, data: dict):
        """Check the window and the key, then enrol with the instance's duration, in the
        group whose key was given, within the instance's places."""
        why = closed(site, instance, user)
        if why:
            raise Refused(f"{self.display_name(instance)}: {why}")
        group_id = self._group_of_key(site, instance, data.get("key", ""))
        settings = instance.settings or {}
        now = site.now()
        period = settings.get("enrolperiod") or 0
        reason = f"{NAME}: enrolled themselves" + (" with a group key" if group_id else "")
        change = Change(
            user.id, timestart=now, timeend=now + period if period else 0, group_id=group_id,
            reason=reason,
        )  # fmt: skip
        limit = settings.get("maxenrolled") or None
        outcome = site.engine.apply(Plan(instance.id, reason, changes=[change], capacity=limit))
        if outcome.full:
            raise Refused(f"{self.display_name(instance)}: no places left (at most {limit} users)")

    def _group_of_key(self, site: Site, instance: EnrolInstance, given: str) -> int | None:
        """None for the instance's key (or no key needed), a group id for a group key; a wrong
        key is refused."""
        settings = instance.settings or {}
        if not has_key(instance):
            return None
        if settings.get("key") and matches(settings["key"], given):
            return None
        for name, hashed in (settings.get("group_keys") or {}).items():
            if matches(hashed, given):
                group = site.session.scalar(
                    select(Group.id).where(
                        Group.course_id == instance.course_id, Group.name == name
                    )
                )
                if group is not None:
                    return group
        raise Refused("wrong enrolment key; ask your teacher for the key of this course")
