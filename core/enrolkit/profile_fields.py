"""Custom profile fields (Moodle's user_info_field): what on the site reads one, and the changes
an admin makes to one: its name and description, its shortname, its removal.

Rules (``cf: "campus"``), group-name templates (``{profile_field_campus}``) and welcome templates
(``user.profile_field_campus``) name a field by its shortname. Moodle lets an admin rename or
delete a field under them, and they then silently stop matching. Here a rename or a deletion is
refused while an enrolment instance reads the field, with the list of those instances, so the
admin changes them first (a rewrite of rules and templates behind the admin's back would change
what they wrote, and could not reach the CSV files, API clients and identity providers that use
the name too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import delete, func, select

from . import lengths
from .changes import ProfileChange
from .errors import EnrolkitError
from .log import record
from .models import STANDARD_FIELDS, Course, EnrolInstance, ProfileData, ProfileField
from .rules import RuleError, parse
from .site import Site
from .templating import PROFILE_PREFIX, group_placeholders, welcome_custom_fields
from .texts import Text

#: A shortname: what ``profile_field_<shortname>`` and ``cf`` can hold in every entrance.
SHORTNAME = re.compile(r"[a-z][a-z0-9_]*")

#: The instance settings that can read a custom field, and what each is, as people read it.
RULE, GROUP_TEMPLATE, WELCOME_TEMPLATE = "rule", "group_template", "welcome_template"
SETTING_LABELS = {
    RULE: Text("auto-enrol rule"),
    GROUP_TEMPLATE: Text("group name template"),
    WELCOME_TEMPLATE: Text("welcome message"),
}


@dataclass(frozen=True)
class Use:
    """One enrolment instance setting that reads a custom field."""

    instance: EnrolInstance
    course: Course
    setting: str  # RULE, GROUP_TEMPLATE or WELCOME_TEMPLATE


class FieldInUse(EnrolkitError):
    """A rename or deletion refused while rules or templates read the field."""

    def __init__(self, field: ProfileField, uses: list[Use], action: str) -> None:
        where = Text.join(
            "; ",
            (
                Text(
                    "%(course)s: %(instance)s (%(setting)s)",
                    course=use.course.shortname,
                    instance=use.instance.name or use.instance.method,
                    setting=SETTING_LABELS[use.setting],
                )
                for use in uses
            ),
        )
        facts = {"field": field.shortname, "count": len(uses), "where": where}
        if action == "rename":
            text = Text(
                "The profile field %(field)s cannot be renamed: %(count)s setting(s) read it "
                "(%(where)s). Change them first.",
                **facts,
            )
        else:
            text = Text(
                "The profile field %(field)s cannot be deleted: %(count)s setting(s) read it "
                "(%(where)s). Change them first.",
                **facts,
            )
        super().__init__(text)
        self.field = field
        self.uses = uses


def _reads(settings: dict, shortname: str, site: Site) -> list[str]:
    """Which of an instance's settings read the custom field ``shortname``."""
    found = []
    rule = settings.get(RULE)
    if rule:
        try:
            if PROFILE_PREFIX + shortname in parse(rule, site.plugins.conditions).fields():
                found.append(RULE)
        except RuleError:
            pass  # a rule that no longer parses reads nothing; its own page reports it
    template = settings.get(GROUP_TEMPLATE)
    if isinstance(template, str) and PROFILE_PREFIX + shortname in group_placeholders(template):
        found.append(GROUP_TEMPLATE)
    welcome = settings.get(WELCOME_TEMPLATE)
    if isinstance(welcome, str) and shortname in welcome_custom_fields(welcome):
        found.append(WELCOME_TEMPLATE)
    return found


def uses(site: Site, shortname: str) -> list[Use]:
    """Every enrolment instance setting that reads the custom field, by course then instance."""
    rows = site.session.execute(
        select(EnrolInstance, Course)
        .join(Course, Course.id == EnrolInstance.course_id)
        .order_by(Course.shortname, EnrolInstance.sortorder, EnrolInstance.id)
    ).all()
    return [
        Use(instance, course, setting)
        for instance, course in rows
        for setting in _reads(instance.settings or {}, shortname, site)
    ]


def users_with_value(site: Site, field: ProfileField) -> int:
    """How many users have a non-empty value in the field."""
    return site.session.scalar(
        select(func.count())
        .select_from(ProfileData)
        .where(ProfileData.field_id == field.id, ProfileData.value != "")
    )


def check_shortname(site: Site, shortname: str, field: ProfileField | None = None) -> None:
    """Refuse a shortname that is malformed, a standard field's, or another field's."""
    if not SHORTNAME.fullmatch(shortname) or shortname in STANDARD_FIELDS:
        raise EnrolkitError(
            Text(
                "Short name: use lower-case letters, digits and _ (starting with a letter), "
                "and not the name of a standard field."
            )
        )
    lengths.check(ProfileField.shortname, shortname, "shortname")
    other = site.session.scalar(select(ProfileField).where(ProfileField.shortname == shortname))
    if other is not None and other is not field:
        raise EnrolkitError(Text("A profile field named %(name)s exists already.", name=shortname))


def create(site: Site, shortname: str, name: str, description: str = "") -> ProfileField:
    """A new text field; every user's value in it is '' until set."""
    check_shortname(site, shortname)
    lengths.check_values(ProfileField, {"name": name, "description": description})
    with site.atomic():
        field = ProfileField(shortname=shortname, name=name or shortname, description=description)
        site.session.add(field)
        site.session.flush()
        record(site, "profile_field_created", "core", reason=shortname)
    return field


def update(
    site: Site, field: ProfileField, *, shortname: str, name: str, description: str
) -> list[str]:
    """Change a field's name, description and shortname; return what changed. The values users
    hold stay (they belong to the field, not to its name). A new shortname is refused with
    :class:`FieldInUse` while a setting reads the old one."""
    check_shortname(site, shortname, field)
    lengths.check_values(ProfileField, {"name": name, "description": description})
    changed = [
        key
        for key, value in (("shortname", shortname), ("name", name), ("description", description))
        if getattr(field, key) != value
    ]
    if not changed:
        return []
    with site.atomic():  # checked in the write's transaction: no rule saved in between
        if "shortname" in changed and (found := uses(site, field.shortname)):
            raise FieldInUse(field, found, "rename")
        reason = (
            field.shortname if shortname == field.shortname else f"{field.shortname} -> {shortname}"
        )
        field.shortname, field.name, field.description = shortname, name or shortname, description
        record(site, "profile_field_updated", "core", reason=reason)
    return changed


def remove(site: Site, field: ProfileField) -> int:
    """Delete the field and every user's value in it; return how many users had a value. Refused
    with :class:`FieldInUse` while a setting reads it. Fires ``profile_changed`` for them."""
    with site.atomic():  # checked in the write's transaction: no rule saved in between
        if found := uses(site, field.shortname):
            raise FieldInUse(field, found, "delete")
        holders = tuple(
            site.session.scalars(
                select(ProfileData.user_id).where(
                    ProfileData.field_id == field.id, ProfileData.value != ""
                )
            )
        )
        site.session.execute(delete(ProfileData).where(ProfileData.field_id == field.id))
        site.session.delete(field)
        site.session.flush()
        record(site, "profile_field_deleted", "core", reason=field.shortname)
        if holders:
            change = ProfileChange(holders, (PROFILE_PREFIX + field.shortname,))
            site.plugins.profile_changed(site=site, change=change)
    return len(holders)
