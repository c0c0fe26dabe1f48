"""The API's marshmallow schemas: what each resource reads (``...In``, ``...Query``) and answers.

Input schemas refuse unknown fields, so a misspelt field is a 422 naming it rather than a silent
no-op. Times go out as Unix seconds and come in as Unix seconds or ISO 8601, as in the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from .. import catalog, people
from ..errors import EnrolkitError
from ..fields import Time

Str = fields.String
Int = fields.Integer
Bool = fields.Boolean

#: Ids the databases can hold: larger ones in a query are refused, not passed to SQL.
ID = validate.Range(min=1, max=2**31 - 1)
NAMES = validate.Length(min=1, max=10_000)


def checked(check: Callable[[str], object], prefix: str = "") -> Callable[[str], None]:
    """A validator running the core's own check of a value (the one the CSV imports, the CLI
    and the web use), so a field's 422 says what they say: lengths from the models included."""

    def validate_value(value: str) -> None:
        try:
            check(value)
        except EnrolkitError as exc:
            raise ValidationError(str(exc).removeprefix(prefix)) from None

    return validate_value


def user_field(name: str) -> fields.Field:
    """A standard user field, checked by :func:`enrolkit.people.check_field`."""
    return Str(validate=checked(partial(people.check_field, name), f"column {name}: "))


def maybe(field: type[fields.Field], **kwargs) -> fields.Field:
    """An output field that may be null."""
    return field(allow_none=True, **kwargs)


# --- shared ------------------------------------------------------------------------------------


class ImportForm(Schema):
    strict = Bool(
        load_default=False,
        metadata={"description": "Apply nothing if any row is bad (default: apply good rows)."},
    )


class ImportFile(Schema):
    file = fields.Raw(
        required=True,
        metadata={"type": "string", "format": "binary", "description": "The CSV file."},
    )


class RowProblem(Schema):
    line = Int()
    message = Str()


class ImportReport(Schema):
    created = Int()
    updated = Int()
    rejected = fields.List(fields.Nested(RowProblem))


class Usernames(Schema):
    usernames = fields.List(
        Str(), required=True, validate=NAMES, metadata={"example": ["ann", "bob"]}
    )


class Outcome(Schema):
    """What one applied plan changed (or would change, in a dry run or when held)."""

    instance_id = Int()
    dry_run = Bool()
    held_plan_id = maybe(Int, metadata={"description": "Set when the plan was held for an admin."})
    enrolled = Int()
    updated = Int()
    suspended = Int()
    unenrolled = Int()
    roles_added = Int()
    roles_removed = Int()
    groups_added = Int()
    groups_removed = Int()


# --- people ------------------------------------------------------------------------------------


class User(Schema):
    id = Int()
    username = Str()
    idnumber = Str()
    email = Str()
    firstname = Str()
    lastname = Str()
    fullname = Str()
    auth = Str()
    lang = Str()
    department = Str()
    institution = Str()
    city = Str()
    country = Str()
    suspended = Bool()
    timezone = Str(metadata={"description": "IANA time zone; empty: the site's."})
    siteadmin = Bool()
    lastlogin = Int()
    timecreated = Int()
    timemodified = Int()


class UserDetail(User):
    profile = fields.Dict(keys=Str(), values=Str(), metadata={"description": "Custom fields."})


class UserQuery(Schema):
    q = Str(metadata={"description": "Part of a username, email or name."})


class UserChange(Schema):
    """Profile fields to change (``enrolkit user set``); fires the profile-changed hook."""

    idnumber = user_field("idnumber")
    email = user_field("email")
    firstname = user_field("firstname")
    lastname = user_field("lastname")
    auth = user_field("auth")
    lang = user_field("lang")
    department = user_field("department")
    institution = user_field("institution")
    city = user_field("city")
    country = user_field("country")
    suspended = Bool()
    timezone = user_field("timezone")
    profile = fields.Dict(
        keys=Str(validate=validate.Length(min=1, max=100)),
        values=Str(),
        metadata={"description": "Custom profile fields by shortname."},
    )


class Password(Schema):
    password = Str(required=True, metadata={"description": "At least 8 characters."})


class Cohort(Schema):
    id = Int()
    idnumber = Str()
    name = Str()
    description = Str()
    category = maybe(Str, metadata={"description": "Category path; null for a site cohort."})
    members = Int()
    timecreated = Int()


class CohortQuery(Schema):
    q = Str(metadata={"description": "Part of the idnumber or name."})


class MembersChanged(Schema):
    added = fields.List(Str())
    removed = fields.List(Str())


class Role(Schema):
    id = Int()
    shortname = Str()
    name = Str()
    archetype = Str()
    sortorder = Int()


class RoleAssignment(Schema):
    id = Int()
    role = Str()
    username = Str()
    context = Str(metadata={"description": "site, category or course"})
    category = maybe(Str)
    course = maybe(Str)
    component = Str(metadata={"description": "Owner ('' for an assignment made by hand)."})
    itemid = Int()
    timemodified = Int()


class RoleAssignmentQuery(Schema):
    username = Str()
    role = Str()
    course = Str()
    category = Str()


class RoleAssignmentIn(Schema):
    role = Str(required=True, metadata={"example": "manager"})
    username = Str(required=True, metadata={"example": "ann"})
    category = Str(
        metadata={"description": "Category path 'Parent / Child'.", "example": "Sciences"}
    )
    course = Str(metadata={"description": "Course shortname."})

    @validates_schema
    def _one_context(self, data, **kwargs):
        if data.get("category") and data.get("course"):
            raise ValidationError("give category or course, not both", "course")


class Badge(Schema):
    id = Int()
    name = Str()
    description = Str()
    awarded = Int()


class BadgeAward(Schema):
    badge = Str()
    username = Str()
    timeawarded = Int()


class BadgeAwardQuery(Schema):
    badge = Str()
    username = Str()


class BadgeAwardIn(Schema):
    badge = Str(
        required=True, validate=validate.Length(min=1, max=255), metadata={"example": "First aid"}
    )
    username = Str(required=True, metadata={"example": "ann"})


# --- catalogue ---------------------------------------------------------------------------------


class Category(Schema):
    id = Int()
    name = Str()
    idnumber = Str()
    path = Str(metadata={"description": "'Parent / Child'"})
    parent = maybe(Str)
    depth = Int()


class CategoryIn(Schema):
    path = Str(
        required=True,
        validate=checked(lambda path: catalog.check_category_path(path, "path"), "path: "),
        metadata={
            "description": "'Parent / Child'; missing levels made.",
            "example": "Arts / Music",
        },
    )


class Course(Schema):
    id = Int()
    shortname = Str()
    fullname = Str()
    idnumber = Str()
    category = maybe(Str)
    startdate = Int()
    enddate = Int()
    enablecompletion = Bool()
    visible = Bool()
    timecreated = Int()


class CourseQuery(Schema):
    q = Str(metadata={"description": "Part of the shortname or full name."})
    category = Str(metadata={"description": "Only courses of this category path (and below)."})


class Completion(Schema):
    username = Str()
    timecompleted = Int()


# --- methods, instances, enrolments ------------------------------------------------------------


class SettingField(Schema):
    name = Str()
    type = Str()
    required = Bool()
    default = fields.Raw(allow_none=True)
    label = Str()
    help = Str()
    choices = maybe(fields.List, cls_or_instance=Str())


class Method(Schema):
    name = Str()
    title = Str()
    enabled = Bool()
    order = maybe(Int, metadata={"description": "Place among enabled methods, from 1."})
    multiple_instances = Bool()
    manual_instances = Bool()
    manual_unenrol = Bool()
    settings = fields.Dict(metadata={"description": "The site settings in force."})
    site_fields = fields.List(fields.Nested(SettingField))
    instance_fields = fields.List(fields.Nested(SettingField))
    enrol_me_fields = fields.List(
        fields.Nested(SettingField),
        metadata={
            "description": 'What the method\'s "Enrol me" asks the user: the keys of the '
            "`fields` of `POST /events/enrol-me` (empty when it asks nothing)."
        },
    )


SETTINGS_HELP = (
    "KEY: VALUE pairs as `enrolkit ... KEY=VALUE` takes them; values may be strings, numbers, "
    "booleans, or JSON (sent as its text)."
)


class MethodChange(Schema):
    enabled = Bool()
    settings = fields.Dict(
        keys=Str(), values=fields.Raw(allow_none=True), metadata={"description": SETTINGS_HELP}
    )


class Instance(Schema):
    id = Int()
    course = Str()
    method = Str()
    name = Str()
    enabled = Bool()
    role = maybe(Str)
    sortorder = Int()
    settings = fields.Dict()
    timecreated = Int()
    timemodified = Int()


class InstanceIn(Schema):
    method = Str(required=True, metadata={"example": "cohort"})
    settings = fields.Dict(
        keys=Str(),
        values=fields.Raw(allow_none=True),
        load_default=dict,
        metadata={
            "description": "name, role, enabled and the method's own settings. " + SETTINGS_HELP,
            "example": {"cohort": "promo", "role": "student"},
        },
    )
    dry_run = Bool(load_default=False)
    backfill = Bool(load_default=False)


class InstanceChange(Schema):
    settings = fields.Dict(
        keys=Str(),
        values=fields.Raw(allow_none=True),
        required=True,
        metadata={"description": SETTINGS_HELP, "example": {"enabled": False}},
    )
    dry_run = Bool(load_default=False)


class Scheduled(Schema):
    username = Str()
    action = Str()
    due = Int()


class InstanceResult(Schema):
    instance = fields.Nested(Instance, allow_none=True)
    dry_run = Bool()
    outcome = fields.Nested(Outcome, allow_none=True)
    scheduled = fields.List(fields.Nested(Scheduled))


class Enrolment(Schema):
    username = Str()
    method = Str()
    instance = Int()
    roles = fields.List(Str())
    status = Str(metadata={"description": "active or suspended"})
    timestart = Int()
    timeend = Int()
    timecreated = Int()
    groups = fields.List(Str())


class EnrolmentIn(Schema):
    username = Str(required=True, metadata={"example": "bob"})
    role = Str(metadata={"description": "Role shortname (default: the method's, student)."})
    start = Time()
    end = Time()


class UnenrolQuery(Schema):
    instance = Int(validate=ID, metadata={"description": "Only this instance."})


class Outcomes(Schema):
    outcomes = fields.List(fields.Nested(Outcome))


# --- events ------------------------------------------------------------------------------------


class UserEvent(Schema):
    username = Str(required=True, metadata={"example": "ann"})


class CourseEvent(Schema):
    username = Str(required=True, metadata={"example": "ann"})
    course = Str(required=True, metadata={"description": "Course shortname.", "example": "MATH101"})


class CompletionEvent(CourseEvent):
    time = Time(metadata={"description": "When; default now. Unix seconds or ISO 8601."})


class Login(Schema):
    username = Str()
    lastlogin = Int()


class EnrolMe(CourseEvent):
    instance = maybe(
        Int,
        metadata={
            "description": "The offer to accept (an `offers[].instance_id` of the course view), "
            "needed when the course makes several."
        },
    )
    fields = fields.Dict(
        keys=Str(),
        values=Str(),
        load_default=dict,
        metadata={
            "description": "What the offer's method asks (its `offers[].fields`, or "
            '`enrol_me_fields` of `GET /methods/{name}`), e.g. `{"key": "..."}`; '
            "validated by the method's schema: 422 with `errors.json.fields` per field."
        },
    )


class OfferField(Schema):
    name = Str()
    label = Str()
    help = Str()
    required = Bool()
    secret = Bool(metadata={"description": "Typed without echo (an enrolment key)."})


class Offer(Schema):
    instance_id = Int()
    reason = Str()
    fields = fields.List(fields.Nested(OfferField))


class Access(Schema):
    decision = Str(metadata={"description": "granted, confirm or denied"})
    reason = Str()
    instance_id = maybe(Int)
    redirect = maybe(Str)
    offers = fields.List(
        fields.Nested(Offer),
        metadata={"description": "With `confirm`: every enrolment offered, each its own."},
    )


class CompletionRecorded(Schema):
    username = Str()
    course = Str()
    recorded = Bool(metadata={"description": "False when the completion was already known."})
    timecompleted = Int()


# --- oversight ---------------------------------------------------------------------------------


class Task(Schema):
    name = Str()
    component = Str()
    schedule = Str()
    default_schedule = Str()
    enabled = Bool()
    last_run = Int()
    next_run = Int()
    last_duration = fields.Float()
    last_result = Str()
    locked_by = Str()
    lock_until = Int()


class TaskChange(Schema):
    schedule = Str(metadata={"description": "Five cron fields in UTC, e.g. '*/10 * * * *'."})
    enabled = Bool()


class TaskRun(Schema):
    name = Str()
    component = Str()
    status = Str(metadata={"description": "ok, failed or locked"})
    result = Str()
    duration = fields.Float()


class CronIn(Schema):
    force = Bool(load_default=False, metadata={"description": "Run every enabled task now."})


class LogQuery(Schema):
    component = Str()
    event = Str()
    course = Str(metadata={"description": "Course shortname."})
    username = Str()
    since = Time()
    until = Time()


class LogEntry(Schema):
    id = Int()
    time = Int()
    event = Str()
    component = Str()
    course = maybe(Str)
    username = maybe(Str)
    instance = maybe(Int)
    origin = Str()
    reason = Str()


PLAN_STATUSES = ("held", "approved", "discarded", "superseded")


class PlanQuery(Schema):
    status = Str(
        load_default="held",
        validate=validate.OneOf((*PLAN_STATUSES, "all")),
        metadata={"description": "held (default), approved, discarded, superseded or all"},
    )


class Plan(Schema):
    id = Int()
    status = Str()
    instance = Int()
    method = maybe(Str)
    course = maybe(Str)
    created = Int()
    origin = Str()
    reason = Str()
    summary = fields.Dict()
    decided = Int()
    decided_by = Str()


class PlanDetail(Plan):
    would_unenrol = fields.List(Str())
    would_suspend = fields.List(Str())


# --- flat file ---------------------------------------------------------------------------------


class DropFile(Schema):
    name = Str()
    size = Int()
    modified = Int()


class FlatfileRun(Schema):
    file = Str(metadata={"description": "A file waiting in the drop folder; default: all."})
    dry_run = Bool(load_default=False)


class FlatfileResult(Schema):
    file = Str()
    dry_run = Bool()
    #: applied (renamed .done), applied_changed (applied as read; the file changed since and was
    #: left in place), not_applied (it changed while being read; left for the next run), or
    #: dry_run.
    outcome = Str()
    note = Str()
    counts = fields.Dict(keys=Str(), values=Int())
    renamed_to = maybe(Str)
    errors_file = maybe(Str)
    #: The first rejected lines, their text cut to 200 characters; errors_not_shown says how
    #: many more the error report holds.
    errors = fields.List(fields.Dict())
    errors_not_shown = Int()
    changes = fields.List(fields.Dict())


class ProcessedFile(Schema):
    id = Int()
    name = Str()
    status = Str()
    counts = fields.Dict()
    target = Str()
    timestarted = Int()
    timefinished = Int()


# --- webhooks ----------------------------------------------------------------------------------


class WebhookIn(Schema):
    url = Str(required=True, validate=validate.Length(min=1, max=2000))
    events = fields.List(
        Str(), required=True, validate=validate.Length(min=1), metadata={"description": "Events."}
    )
    course = Str(metadata={"description": "Only this course's events (shortname)."})
    method = Str(load_default="", metadata={"description": "Only this method's events."})


class Webhook(Schema):
    id = Int()
    url = Str()
    events = fields.List(Str())
    course_id = maybe(Int)
    method = Str()
    status = Str(metadata={"description": "active or disabled"})
    disabled_reason = Str()
    failing_since = Int()
    created = Int()
    waiting = Int(metadata={"description": "Events not yet accepted by the receiver."})
    last_delivered = Int(metadata={"description": "When a batch was last accepted; 0: never."})
    failures = Int(metadata={"description": "Failed attempts since the last accepted batch."})
    last_error = Str(metadata={"description": "What the last failed attempt got."})


class WebhookCreated(Webhook):
    secret = Str(metadata={"description": "The whsec_ signing secret, shown this once."})


class WebhookChange(Schema):
    status = Str(required=True, validate=validate.OneOf(("active", "disabled")))


class DeliveryQuery(Schema):
    failed = Bool(load_default=False, metadata={"description": "Only failing batches."})


class Delivery(Schema):
    id = Int()
    subscription_id = Int()
    webhook_id = Str()
    events = Int()
    status = Str(metadata={"description": "pending or delivered"})
    attempts = Int()
    last_status = Int()
    last_error = Str()
    created = Int()
    next_attempt = Int()
    delivered = Int()


# --- the change feed ---------------------------------------------------------------------------


class ChangesQuery(Schema):
    after = Str(metadata={"description": "The 'next' cursor of the previous page; none: start."})
    limit = Int(load_default=100, validate=validate.Range(min=1, max=1000))


class Change(Schema):
    cursor = Str(metadata={"description": "This change's position in the feed."})
    time = Int()
    event = Str()
    user_id = maybe(Int)
    username = maybe(Str)
    course_id = maybe(Int)
    course = maybe(Str)
    instance_id = maybe(Int)
    component = Str()
    origin = Str()
    reason = Str()


class ChangesPage(Schema):
    changes = fields.List(fields.Nested(Change))
    next = Str(metadata={"description": "Pass as 'after' to get what follows."})
