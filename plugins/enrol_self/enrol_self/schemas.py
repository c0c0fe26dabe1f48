"""The settings of a self-enrolment instance and of the method, and what "Enrol me" asks."""

from __future__ import annotations

from enrolkit import KEEP, SUSPEND_NOROLES, UNENROL, expiry_field
from enrolkit.fields import Hashed, Secret, SecretInput, Time
from marshmallow import Schema, ValidationError, fields, validate, validates_schema


class GroupKeys(Secret):
    """Group enrolment keys, typed ``Group A=key one; Group B=key two``: each key admits a user
    and puts them in that group (Moodle's group enrolment keys). Stored as group name -> hash,
    write-only like every secret: shown as the group names, never a key."""

    def _deserialize(self, value, attr, data, **kwargs) -> dict[str, str]:
        from werkzeug.security import generate_password_hash

        if isinstance(value, dict):  # a stored value reloaded by an update
            return {str(k): Hashed(v) for k, v in value.items()}
        if not isinstance(value, str):
            raise ValidationError("expected GROUP=KEY pairs separated by ';'")
        keys: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in value.split(";"))):
            group, sep, key = part.partition("=")
            if not sep or not group.strip() or not key.strip():
                raise ValidationError(f"expected GROUP=KEY, not {part.split('=')[0]!r}=...")
            keys[group.strip()] = generate_password_hash(key.strip())
        return keys

    def _serialize(self, value, attr, obj, **kwargs):
        return dict(value or {})

    def shown(self, value) -> str:
        return ", ".join(sorted(value)) + ": set" if value else "not set"


class InstanceSettings(Schema):
    key = Secret(
        metadata={
            "label": "Enrolment key",
            "help": "Users must type it to enrol; empty: anyone may enrol. Stored hashed.",
        }
    )
    group_keys = GroupKeys(
        load_default=dict,
        metadata={
            "label": "Group enrolment keys",
            "help": "GROUP=KEY pairs separated by ';': typing a group's key enrols the user "
            "and puts them in that group. Give them all again to change one.",
        },
    )
    newenrols = fields.Boolean(
        load_default=True,
        metadata={"label": "Allow new enrolments", "help": "Off: nobody new may enrol."},
    )
    maxenrolled = fields.Integer(
        load_default=0,
        validate=validate.Range(min=0),
        metadata={
            "label": "Maximum enrolled users",
            "help": "Places in this instance (suspended enrolments count); 0: no limit.",
        },
    )
    enrolstartdate = Time(
        load_default=0, metadata={"label": "Enrolment opens", "help": "Empty: at once."}
    )
    enrolenddate = Time(
        load_default=0, metadata={"label": "Enrolment closes", "help": "Empty: never."}
    )
    enrolperiod = fields.Integer(
        load_default=0,
        validate=validate.Range(min=0),
        metadata={
            "label": "Enrolment duration",
            "help": "Seconds each enrolment lasts from the moment the user enrols "
            "(604800 = 7 days); 0: no end.",
        },
    )
    longtimenosee = fields.Integer(
        load_default=0,
        validate=validate.Range(min=0),
        metadata={
            "label": "Unenrol inactive after",
            "help": "Seconds without opening the course after which a user is unenrolled "
            "(2592000 = 30 days); 0: never.",
        },
    )
    welcome = fields.Boolean(
        load_default=True,
        metadata={"label": "Send a welcome message", "help": "Mail each user who enrols."},
    )
    welcome_template = fields.String(
        load_default="",
        metadata={
            "label": "Welcome message",
            "help": "Jinja2 with the usual variables; empty: the default text.",
            "widget": "textarea",
        },
    )

    @validates_schema
    def _window(self, data, **kwargs) -> None:
        start, end = data.get("enrolstartdate", 0), data.get("enrolenddate", 0)
        if start and end and end <= start:
            raise ValidationError("must come after enrolstartdate", "enrolenddate")


class SiteSettings(Schema):
    role = fields.String(
        load_default="student",
        metadata={"label": "Default role", "help": "Role of new instances (shortname)."},
    )
    # Read by EnrolMethod.expiry_action(): Moodle's expiredaction, keep by default.
    expiry_action = expiry_field(KEEP, choices=(KEEP, SUSPEND_NOROLES, UNENROL))


class KeyInput(Schema):
    """What "Enrol me" asks on an instance with a key: the enrolment key or a group key."""

    key = SecretInput(
        required=True,
        validate=validate.Length(min=1, max=255),
        metadata={"label": "Enrolment key", "help": "Given by your teacher."},
    )
