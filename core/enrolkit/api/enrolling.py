"""Enrolment methods and their site settings, instances in courses, and enrolments.

Settings are validated by each method's own schema, exactly as for ``enrolkit method set`` and
``enrolkit instance add|update``: the JSON values are handed over as the CLI's ``KEY=VALUE``
strings (:func:`.common.cli_value`), and a :class:`SettingsError` comes back as a 422 whose
``errors.json.settings`` holds the per-field messages.
"""

from __future__ import annotations

from flask_smorest import Page
from marshmallow import Schema, missing
from sqlalchemy import select

from .. import lookup
from ..enrolments import (
    add_instance,
    delete_instance,
    enrol_manually,
    list_enrolments,
    unenrol_manually,
    update_instance,
)
from ..fields import shown
from ..methods import EnrolMethod
from ..models import Course, EnrolInstance, Role, User
from . import schemas as s
from .common import ID, Query, SqlPage, blueprint, cli_value, resolve, site

methods = blueprint("methods", "Enrolment methods and their site settings (`enrolkit method`).")
instances = blueprint("instances", "Methods attached to courses (`enrolkit instance`).")
enrolments = blueprint("enrolments", "Who is in a course; manual enrolment (`enrolkit enrolment`).")


def _raw(settings: dict) -> dict[str, str]:
    return {str(key): cli_value(value) for key, value in settings.items()}


# --- methods -----------------------------------------------------------------------------------


def _fields(schema_class: type[Schema] | None) -> list[dict]:
    if schema_class is None:
        return []
    out = []
    for name, field in schema_class().fields.items():
        if field.dump_only:
            continue
        default = field.load_default
        if default is missing or callable(default):
            default = None
        choices = field.metadata.get("choices")
        out.append(
            {
                "name": name,
                "type": type(field).__name__.lower(),
                "required": field.required,
                "default": default if isinstance(default, str | int | float | bool) else None,
                "label": str(field.metadata.get("label", "")),
                "help": str(field.metadata.get("help", "")),
                "choices": [str(c) for c in choices] if choices else None,
            }
        )
    return out


def _settings(method: EnrolMethod) -> dict:
    values = site().method_settings(method.name)
    if method.site_schema is None:
        return values
    return shown(method.site_schema, method.site_schema().dump(values))


def _method_row(method: EnrolMethod, enabled: list[str]) -> dict:
    return {
        "name": method.name,
        "title": method.title,
        "enabled": method.name in enabled,
        "order": enabled.index(method.name) + 1 if method.name in enabled else None,
        "multiple_instances": method.multiple_instances,
        "manual_instances": method.manual_instances,
        "manual_unenrol": method.manual_unenrol,
        "settings": _settings(method),
        "site_fields": _fields(method.site_schema),
        "instance_fields": _fields(method.instance_schema),
        "enrol_me_fields": _fields(method.enrol_me_schema),
    }


@methods.get("/methods")
@methods.response(200, s.Method(many=True))
@methods.paginate(Page)
@methods.reads()
def list_methods():
    """Installed methods by name: enabled or not, their order, settings and setting fields."""
    enabled = site().enabled_methods()
    return [_method_row(m, enabled) for _, m in sorted(site().plugins.methods.items())]


@methods.get("/methods/<name>")
@methods.response(200, s.Method)
@methods.reads(404)
def get_method(name):
    return _method_row(site().plugins.method(name), site().enabled_methods())


@methods.patch("/methods/<name>")
@methods.arguments(s.MethodChange)
@methods.response(200, s.Method)
@methods.writes(404, 422)
def change_method(args, name):
    """Enable or disable a method, and change its site settings, in one transaction."""
    method = site().plugins.method(name)
    with site().atomic():
        if "enabled" in args:
            site().set_method_enabled(name, args["enabled"])
        if args.get("settings"):
            site().set_method_settings(name, _raw(args["settings"]))
    return _method_row(method, site().enabled_methods())


# --- instances ---------------------------------------------------------------------------------


def _instance_row(instance: EnrolInstance) -> dict:
    session = site().session
    role = session.get(Role, instance.role_id) if instance.role_id else None
    method = site().plugins.methods.get(instance.method)
    return {
        "id": instance.id,
        "course": session.get(Course, instance.course_id).shortname,
        "method": instance.method,
        "name": method.display_name(instance) if method else instance.name,
        "enabled": instance.enabled,
        "role": role.shortname if role else None,
        "sortorder": instance.sortorder,
        "settings": shown(method.instance_schema if method else None, instance.settings),
        "timecreated": instance.timecreated,
        "timemodified": instance.timemodified,
    }


def outcome_row(outcome) -> dict | None:
    if outcome is None:
        return None
    return {
        "instance_id": outcome.instance_id,
        "dry_run": outcome.dry_run,
        "held_plan_id": outcome.held_plan_id,
        **outcome.counts(),
    }


def _result(result) -> dict:
    ids = [user_id for user_id, _action, _due in result.scheduled]
    names = (
        dict(site().session.execute(select(User.id, User.username).where(User.id.in_(ids))).all())
        if ids
        else {}
    )
    return {
        "instance": None if result.dry_run else _instance_row(result.instance),
        "dry_run": result.dry_run,
        "outcome": outcome_row(result.outcome),
        "scheduled": [
            {"username": names.get(user_id, str(user_id)), "action": action, "due": due}
            for user_id, action, due in result.scheduled
        ],
    }


@instances.get("/courses/<shortname>/instances")
@instances.response(200, s.Instance(many=True))
@instances.paginate(SqlPage)
@instances.reads(404)
def list_instances(shortname):
    """The course's instances in their order."""
    course = lookup.course(site().session, shortname)
    return Query(
        select(EnrolInstance)
        .where(EnrolInstance.course_id == course.id)
        .order_by(EnrolInstance.sortorder, EnrolInstance.id),
        _instance_row,
    )


@instances.post("/courses/<shortname>/instances")
@instances.arguments(s.InstanceIn)
@instances.response(201, s.InstanceResult)
@instances.alt_response(200, schema=s.InstanceResult, description="A dry run: nothing changed.")
@instances.writes(404, 409, 422)
def add(args, shortname):
    """Attach a method to the course and run its first sync (or, with `backfill`, its
    backfill), in one transaction. `dry_run` reports what the first sync would do."""
    course = lookup.course(site().session, shortname)
    resolve("method", lambda: site().plugins.method(args["method"]))
    result = add_instance(
        site(),
        course,
        args["method"],
        _raw(args["settings"]),
        dry_run=args["dry_run"],
        backfill=args["backfill"],
    )
    return _result(result), 200 if result.dry_run else 201


def _instance(instance_id: int) -> EnrolInstance:
    return lookup.instance(site().session, instance_id)


@instances.get(f"/instances/<{ID}:instance_id>")
@instances.response(200, s.Instance)
@instances.reads(404)
def get_instance(instance_id):
    return _instance_row(_instance(instance_id))


@instances.patch(f"/instances/<{ID}:instance_id>")
@instances.arguments(s.InstanceChange)
@instances.response(200, s.InstanceResult)
@instances.writes(404, 409, 422)
def update(args, instance_id):
    """Change an instance's settings, then re-sync it (`dry_run`: report only)."""
    instance = _instance(instance_id)
    return _result(
        update_instance(site(), instance, _raw(args["settings"]), dry_run=args["dry_run"])
    )


@instances.delete(f"/instances/<{ID}:instance_id>")
@instances.response(200, s.Outcome)
@instances.writes(404, 409)
def delete(instance_id):
    """Delete the instance: its users are unenrolled and the groups it owns removed."""
    return outcome_row(delete_instance(site(), _instance(instance_id)))


# --- enrolments --------------------------------------------------------------------------------


@enrolments.get("/courses/<shortname>/enrolments")
@enrolments.response(200, s.Enrolment(many=True))
@enrolments.paginate(Page)
@enrolments.reads(404)
def list_course_enrolments(shortname):
    """One row per user and instance, with the roles and groups that instance gave."""
    return list_enrolments(site(), lookup.course(site().session, shortname))


@enrolments.post("/courses/<shortname>/enrolments")
@enrolments.arguments(s.EnrolmentIn)
@enrolments.response(200, s.Outcome)
@enrolments.writes(404, 409, 422)
def enrol(args, shortname):
    """Enrol a user by hand (the manual method), with a role and dates."""
    session = site().session
    course = lookup.course(session, shortname)
    user = resolve("username", lambda: lookup.user(session, args["username"]))
    role = resolve("role", lambda: lookup.role(session, args["role"])) if args.get("role") else None
    outcome = enrol_manually(
        site(), user, course, role=role, timestart=args.get("start"), timeend=args.get("end")
    )
    return outcome_row(outcome)


@enrolments.delete("/courses/<shortname>/enrolments/<username>")
@enrolments.arguments(s.UnenrolQuery, location="query")
@enrolments.response(200, s.Outcomes)
@enrolments.writes(404, 409, 422)
def unenrol(args, shortname, username):
    """Unenrol a user by hand, from every instance of the course or from `instance`; refused
    (409) when a method that forbids it owns one of the enrolments."""
    session = site().session
    outcomes = unenrol_manually(
        site(),
        lookup.user(session, username),
        lookup.course(session, shortname),
        args.get("instance"),
    )
    return {"outcomes": [outcome_row(o) for o in outcomes]}
