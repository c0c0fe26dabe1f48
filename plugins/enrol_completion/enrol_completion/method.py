"""The course-completed method: an instance in course B names a source course A; completing A
enrols in B (now, or after a delay), with a role, a duration, a group and a welcome message."""

from __future__ import annotations

from enrolkit import EnrolMethod, Plan, SettingsError, lookup, templating
from enrolkit.errors import NotFound
from enrolkit.models import Course, EnrolInstance
from enrolkit.site import Site
from enrolkit.texts import Text

from . import backfill, sources
from .schemas import CompletionInstanceSettings, CompletionSiteSettings
from .welcome import EXTRA_VARIABLES


class CompletionMethod(EnrolMethod):
    name = "completion"
    title = Text("Course completed")
    instance_schema = CompletionInstanceSettings
    site_schema = CompletionSiteSettings

    def prepare_instance(self, site: Site, course: Course, settings: dict) -> dict:
        """The source must be another course that tracks completion; the welcome template must
        render (checked now, with this site's profile fields, never at send time)."""
        errors: dict[str, list[str]] = {}
        shortname = settings["source"].strip()
        try:
            source = lookup.course(site.session, shortname)
        except NotFound as exc:
            errors["source"] = [str(exc)]
        else:
            if source.id == course.id:
                errors["source"] = ["a course cannot require its own completion"]
            elif not source.enablecompletion:
                errors["source"] = [f"{shortname} does not track completion; enable it first"]
        template = settings["welcome_template"]
        if template.strip():
            problems = templating.validate_welcome(
                template,
                EXTRA_VARIABLES,
                templating.custom_field_names(site),
                seconds=templating.time_limit(site),
            )
            if problems:
                errors["welcome_template"] = [str(problem) for problem in problems]
        if errors:
            raise SettingsError(errors, where=f"settings of {self.name}")
        return {**settings, "source": shortname, "group": settings["group"].strip()}

    def instance_saved(self, site: Site, instance: EnrolInstance) -> None:
        source = lookup.course(site.session, instance.settings["source"])
        sources.remember(site, instance.id, source.id)

    def backfill(self, site: Site, instance: EnrolInstance) -> Plan | None:
        return backfill.plan(site, instance)

    def display_name(self, instance: EnrolInstance) -> str:
        return instance.name or Text(
            "After completing %(course)s", course=instance.settings.get("source", "?")
        )
