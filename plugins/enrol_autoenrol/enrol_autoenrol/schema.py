"""The settings of an auto-enrol instance and of the method, as marshmallow schemas.

They load what people type (``enrolkit instance add C autoenrol mode=login rule='{...}'``) and dump
plain JSON for ``enrol_instances.settings``; the settings form is rendered from them. Checks that
need the site (the rule's condition types, custom profile fields in templates) and the defaults
taken from the site settings happen in :meth:`AutoenrolMethod.prepare_instance`.
"""

from __future__ import annotations

import json

from enrolkit import KEEP, SUSPEND, UNENROL, jsontext
from enrolkit.fields import Duration, Time
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

LOGIN, VIEW, CONFIRM = "login", "view", "confirm"
MODES = (LOGIN, VIEW, CONFIRM)
#: What happens to an enrolment that no longer matches, ran out, or whose user went inactive.
REMOVALS = (UNENROL, SUSPEND, KEEP)
#: An instance's removal action ``site``: the site setting's, whatever it is at the time.
SITE = "site"
#: How a course view that the rule refuses is answered: a message, or a redirect.
MESSAGE, REDIRECT = "message", "redirect"


class RuleField(fields.Field):
    """The condition tree as Moodle availability JSON. Loads text or an object into an object
    (None for "everyone"); dumps JSON text ('' for everyone), which is what is stored, shown in
    listings and forms, and pasted back into Moodle. Its conditions are checked against the
    site in ``prepare_instance``."""

    def _deserialize(self, value, attr, data, **kwargs) -> dict | None:
        if isinstance(value, str | bytes):
            if not value.strip():
                return None
            try:
                value = jsontext.loads(value)
            except jsontext.TooDeep as exc:
                raise ValidationError(str(exc)) from None
            except ValueError as exc:
                raise ValidationError(f"not valid JSON: {exc}") from None
        if value is None or value == {}:
            return None
        if not isinstance(value, dict):
            raise ValidationError('must be a JSON object such as {"op": "&", "c": [...]}')
        return value

    def _serialize(self, value, attr, obj, **kwargs) -> str:
        if isinstance(value, dict):
            return json.dumps(value, ensure_ascii=False)
        return value or ""


def _whole(label: str, help_text: str) -> fields.Integer:
    return fields.Integer(
        load_default=0, validate=validate.Range(min=0), metadata={"label": label, "help": help_text}
    )


class AutoenrolInstanceSettings(Schema):
    mode = fields.String(
        load_default=VIEW,
        validate=validate.OneOf(MODES),
        metadata={
            "label": "Enrol when",
            "help": "login: when the user logs in (and by the hourly task); view: when the user "
            'opens the course; confirm: the course offers an "Enrol me" button.',
            "choices": MODES,
        },
    )
    rule = RuleField(
        load_default=None,
        allow_none=True,
        dump_default="",
        metadata={
            "label": "Rule",
            "help": "Who may be enrolled: a condition tree (Moodle availability JSON). Empty: "
            "everyone. Test it on a real account with the rule tester of the course's Rules page.",
            "widget": "textarea",
        },
    )
    duration = Duration(
        metadata={
            "label": "Enrolment duration",
            "help": "How long an enrolment lasts, e.g. 30d, 12h, 1w or P30D; empty = open-ended.",
        }
    )
    enrolstart = Time(
        load_default=0,
        metadata={
            "label": "New enrolments from",
            "help": "No new enrolment before this time (ISO 8601 or Unix seconds); 0 = no start.",
        },
    )
    enrolend = Time(
        load_default=0,
        metadata={
            "label": "New enrolments until",
            "help": "No new enrolment from this time on; 0 = no end. Existing enrolments stay.",
        },
    )
    newenrols = fields.Boolean(
        load_default=True,
        metadata={
            "label": "Allow new enrolments",
            "help": "Off: existing enrolments are kept and re-checked, nobody new joins.",
        },
    )
    maxenrolled = _whole(
        "Maximum enrolled",
        "At most this many enrolments (any status) in the instance; 0 = no limit.",
    )
    group_template = fields.String(
        load_default="",
        validate=validate.Length(max=255),
        metadata={
            "label": "Group name",
            "help": "e.g. Groupe_{profile_field_department}: each user joins the group named by "
            "their values (created when first needed); an empty value means no group.",
        },
    )
    unenrol_on_mismatch = fields.Boolean(
        load_default=True,
        metadata={
            "label": "Remove users who no longer match",
            "help": "Re-check enrolled users (at login and by the daily task) and apply the "
            "removal action to those the rule no longer lets in.",
        },
    )
    removal = fields.String(
        load_default=SITE,
        validate=validate.OneOf((SITE, *REMOVALS)),
        metadata={
            "label": "Removal action",
            "help": "For users who no longer match, whose duration ran out or who were inactive "
            "too long: unenrol, suspend, keep, or site (the site setting, suspend by default).",
            "choices": (SITE, *REMOVALS),
        },
    )
    inactive_days = fields.Integer(
        load_default=0,
        validate=validate.Range(min=0, max=36500),
        metadata={
            "label": "Remove after days without login",
            "help": "Apply the removal action to users who have not logged in for this many days "
            "since their last login or enrolment; 0 = never.",
        },
    )
    welcome = fields.Boolean(
        load_default=False,
        metadata={"label": "Send a welcome message", "help": "Mail each user when enrolled."},
    )
    welcome_template = fields.String(
        load_default="",
        metadata={
            "label": "Welcome message",
            "help": "Jinja2 (user, course, enrolment, site; Moodle's {$a->...} placeholders "
            "work too). Empty = the default text.",
            "widget": "textarea",
        },
    )

    @validates_schema
    def _window(self, data, **kwargs) -> None:
        start, end = data.get("enrolstart", 0), data.get("enrolend", 0)
        if start and end and end <= start:
            raise ValidationError("must come after enrolstart", "enrolend")


def _local_path(value: str) -> None:
    # Only a path on this site: an absolute or scheme-relative URL would be an open redirect.
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        raise ValidationError("give a path on this site, starting with one /")


class AutoenrolSiteSettings(Schema):
    role = fields.String(
        load_default="student",
        metadata={"label": "Default role", "help": "Role of new instances (shortname)."},
    )
    loginenrol = fields.Boolean(
        load_default=True,
        metadata={
            "label": "Enrol on login",
            "help": "Off: logins enrol nobody (login-mode instances then fill through the hourly "
            "task only); existing enrolments are still re-checked at login.",
        },
    )
    removal = fields.String(
        load_default=SUSPEND,
        validate=validate.OneOf(REMOVALS),
        metadata={
            "label": "Removal action",
            "help": "Of the instances whose removal action is 'site'. Suspend keeps the user's "
            "data in the course; unenrol deletes the enrolment, its roles and groups.",
            "choices": REMOVALS,
        },
    )
    allowunsuspend = fields.Boolean(
        load_default=False,
        metadata={
            "label": "Reactivate on match",
            "help": "Reactivate a suspended auto-enrolment when its user matches the rule again "
            "(at login).",
        },
    )
    denied = fields.String(
        load_default=MESSAGE,
        validate=validate.OneOf((MESSAGE, REDIRECT)),
        metadata={
            "label": "When a course view is refused",
            "help": "message: show why; redirect: send the user to the page below.",
            "choices": (MESSAGE, REDIRECT),
        },
    )
    denied_url = fields.String(
        load_default="/",
        validate=_local_path,
        metadata={"label": "Redirect to", "help": "A path on this site, e.g. /"},
    )
