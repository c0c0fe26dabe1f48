"""The cohort sync method: who is in the cohort is enrolled, with the instance's role and group."""

from __future__ import annotations

from enrolkit import UNENROL, EnrolMethod, Plan, SettingsError
from enrolkit.errors import Where
from enrolkit.groups import NEW_GROUP, check_group_setting, create_instance_group
from enrolkit.models import Category, Cohort, Course, EnrolInstance, Role, User
from enrolkit.site import Site
from enrolkit.texts import Text
from sqlalchemy import select
from sqlalchemy.orm import object_session

from . import sync as cohort_sync
from .schemas import CohortInstanceSettings, CohortSiteSettings


class CohortMethod(EnrolMethod):
    name = cohort_sync.NAME
    title = Text("Cohort sync")
    instance_schema = CohortInstanceSettings
    site_schema = CohortSiteSettings
    enabled_by_default = True
    manual_unenrol = False
    manual_unenrol_suspended = True
    default_removal = UNENROL
    roles_follow_enabled = True

    def refusal(self, site: Site, instance: EnrolInstance) -> Text:
        return Text(
            "the enrolment comes from the cohort %(cohort)s; remove the user from the cohort "
            "instead (a suspended cohort enrolment may be unenrolled by hand)",
            cohort=_cohort_name(site, instance),
        )

    def where_to_act(
        self, site: Site, instance: EnrolInstance, user: User
    ) -> tuple[str, Where] | None:
        idnumber = instance.settings.get("cohort", "?")
        cohort = site.session.scalar(select(Cohort).where(Cohort.idnumber == idnumber))
        if cohort is None:
            return None
        return f"enrolkit cohort remove {idnumber} {user.username}", Where(
            Text("remove %(user)s from the cohort %(cohort)s", user=user.fullname,
                 cohort=cohort.name),
            "admin.cohort",
            {"cohort_id": cohort.id},
        )  # fmt: skip

    def prepare_instance(self, site: Site, course: Course, settings: dict) -> dict:
        """The cohort must exist and be visible from the course; the group must exist."""
        errors: dict[str, list[str]] = {}
        idnumber = settings["cohort"].strip()
        cohort = site.session.scalar(select(Cohort).where(Cohort.idnumber == idnumber))
        if cohort is None:
            errors["cohort"] = [f"no cohort with idnumber {idnumber!r}"]
        elif not available(site, course, cohort):
            errors["cohort"] = [
                f"cohort {idnumber} belongs to another category; a course may use site "
                f"cohorts and cohorts of its own category or of a parent category"
            ]
        group, problem = check_group_setting(site, course, settings["group"])
        if problem:
            errors["group"] = [problem]
        if errors:
            raise SettingsError(errors, where=f"settings of {self.name}")
        return {**settings, "cohort": idnumber, "group": group}

    def instance_saved(self, site: Site, instance: EnrolInstance) -> None:
        """Refuse a second instance of the same cohort and role in the course; create the group
        asked for with ``group=new``."""
        self._refuse_duplicate(site, instance)
        if instance.settings.get("group") == NEW_GROUP:
            cohort_name = site.session.scalar(
                select(Cohort.name).where(Cohort.idnumber == instance.settings["cohort"])
            )
            create_instance_group(site, instance, f"{cohort_name} cohort")

    def sync(self, site: Site, instance: EnrolInstance) -> Plan:
        return cohort_sync.plan(instance, "cohort instance saved")

    def display_name(self, instance: EnrolInstance) -> str:
        if instance.name:
            return instance.name
        session = object_session(instance)
        role = session.get(Role, instance.role_id) if session and instance.role_id else None
        cohort = instance.settings.get("cohort", "?")
        return Text(
            "%(method)s (%(cohort)s - %(role)s)",
            method=self.title,
            cohort=cohort,
            role=role.label if role else Text("no role"),
        )

    def _refuse_duplicate(self, site: Site, instance: EnrolInstance) -> None:
        twin = site.session.scalar(
            select(EnrolInstance.id).where(
                EnrolInstance.course_id == instance.course_id,
                EnrolInstance.method == self.name,
                EnrolInstance.id != instance.id,
                cohort_sync.COHORT_KEY == instance.settings["cohort"],
                EnrolInstance.role_id.is_(None)
                if instance.role_id is None
                else EnrolInstance.role_id == instance.role_id,
            )
        )
        if twin is not None:
            raise SettingsError(
                {"cohort": [f"cohort {instance.settings['cohort']} is already synchronised with "
                            f"this role in the course (instance {twin})"]},
                where=f"settings of {self.name}",
            )  # fmt: skip


def available(site: Site, course: Course, cohort: Cohort) -> bool:
    """Site cohorts, and cohorts of the course's category or one of its parents."""
    if cohort.category_id is None:
        return True
    if course.category_id is None:
        return False
    path = site.session.scalar(select(Category.path).where(Category.id == course.category_id))
    return f"/{cohort.category_id}/" in (path or "")


__all__ = ["CohortMethod"]


def _cohort_name(site: Site, instance: EnrolInstance) -> str:
    idnumber = instance.settings.get("cohort", "?")
    name = site.session.scalar(select(Cohort.name).where(Cohort.idnumber == idnumber))
    return name or idnumber
