"""The auto-enrol method: users who match an instance's rule are enrolled when they log in, when
they open the course, or when they confirm ("Enrol me"), and by an hourly task."""

from __future__ import annotations

from enrolkit import SUSPEND, EnrolMethod, SettingsError, templating
from enrolkit.models import Course, EnrolInstance, User
from enrolkit.rules import RuleError, parse
from enrolkit.site import Site
from enrolkit.texts import Text

from . import groups, prefilter, view
from .matching import NAME, Verdict, instance_blockers, removal_of, rule_of, user_blockers
from .schema import AutoenrolInstanceSettings, AutoenrolSiteSettings


class AutoenrolMethod(EnrolMethod):
    name = NAME
    title = Text("Auto-enrol")
    instance_schema = AutoenrolInstanceSettings
    site_schema = AutoenrolSiteSettings
    enabled_by_default = False
    default_removal = SUSPEND

    def prepare_instance(self, site: Site, course: Course, settings: dict) -> dict:
        """Check the rule, the group-name and welcome templates against this site, so a mistake
        shows when the instance is saved, never at login or send time. The rule is stored in
        its normal form (Moodle's JSON, ``showc`` included)."""
        errors: dict[str, list[str]] = {}
        rule = None
        try:
            rule = parse(settings.get("rule"), site.plugins.conditions)
        except RuleError as exc:
            errors["rule"] = [str(exc)]
        else:
            if rule.errors(site):
                errors["rule"] = rule.errors(site)
        custom = templating.custom_field_names(site)
        template = settings["group_template"].strip()
        problems = templating.validate_group_template(template, custom)
        if problems:
            errors["group_template"] = [str(problem) for problem in problems]
        if settings["welcome_template"].strip():
            problems = templating.validate_welcome(
                settings["welcome_template"], (), custom, seconds=templating.time_limit(site)
            )
            if problems:
                errors["welcome_template"] = [str(problem) for problem in problems]
        if errors:
            raise SettingsError(errors, where=f"settings of {self.name}")
        return {
            **settings,
            "rule": rule.to_json() if rule is not None and not rule.is_empty else None,
            "group_template": template,
        }

    def instance_saved(self, site: Site, instance: EnrolInstance) -> None:
        prefilter.index(site, instance, rule_of(site, instance))

    def removal_action(self, site: Site, instance: EnrolInstance) -> str:
        return removal_of(site, instance)

    def display_name(self, instance: EnrolInstance) -> str:
        return instance.name or self.title

    def confirm_enrolment(
        self, site: Site, instance: EnrolInstance, user: User, data: dict
    ) -> None:
        view.confirm(site, instance, user)

    def explain(self, site: Site, instance: EnrolInstance, user: User) -> Verdict:
        """Why ``user`` matches the instance's rule or not, condition by condition, what else
        would stop a new enrolment now, and the group they would join."""
        blocked = (
            ["auto-enrolment is disabled on this site"] if not site.method_enabled(NAME) else []
        )
        blocked += instance_blockers(site, instance, site.now()) or user_blockers(
            site, instance, user
        )
        return Verdict(
            instance_id=instance.id,
            username=user.username,
            mode=(instance.settings or {}).get("mode", ""),
            explanation=rule_of(site, instance).explain(site, user),
            blockers=tuple(blocked),
            group=groups.name_for(site, instance, user),
        )
