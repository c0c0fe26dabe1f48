"""The built-in rule condition types (registered like any plugin's by
:mod:`enrolkit.builtin.conditions`).

``profile``, ``date`` and ``badge`` read Moodle's own JSON (availability_profile, availability_date,
availability_badge). ``completion`` (``{"course": SHORTNAME}``), ``cohort``, ``language`` and
``auth`` (``{"id": VALUE}``) are enrolkit's: Moodle's ``completion`` condition is about activities,
which enrolkit does not model.

Profile comparisons are case-sensitive, as Moodle's are (``===``, ``strpos``, ``substr``). Two PHP
accidents are not copied: ``"0"`` is not empty here (PHP's ``empty("0")`` is true), and
``endswith ''`` matches every value (Moodle's PHP matches only an empty value, its SQL everyone).
``doesnotcontain ''`` matches everyone, as in Moodle. A user without a row for an existing custom
field has the value ''.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, false, func, not_, select, true
from sqlalchemy.orm import Session

from ..models import (
    STANDARD_FIELDS,
    Badge,
    BadgeAward,
    Cohort,
    CohortMember,
    Course,
    CourseCompletion,
    ProfileData,
    ProfileField,
    User,
)
from ..texts import N_, Text
from .condition import ConditionType, JsonPath, SqlContext, UserContext

if TYPE_CHECKING:
    from ..site import Site


def _check_keys(node: Mapping, path: JsonPath, allowed: tuple[str, ...]) -> None:
    for key in node:
        if key != "type" and key not in allowed:
            raise path.key(str(key)).error(
                f"unknown key for a {node['type']} condition (keys: {', '.join(allowed)})"
            )


def _name(node: Mapping, path: JsonPath, key: str, what: str) -> str:
    value = node.get(key)
    if not isinstance(value, str) or not value.strip():
        raise path.key(key).error(f"give {what} as a non-empty string")
    return value


# --- profile ---------------------------------------------------------------------------------

PROFILE_OPS = (
    "isequalto",
    "contains",
    "doesnotcontain",
    "startswith",
    "endswith",
    "isempty",
    "isnotempty",
)
NO_VALUE_OPS = ("isempty", "isnotempty")
#: How an explanation says that a value does or does not compare.
PHRASES = {
    "contains": (N_("%(shown)s, which contains %(wanted)s"),
                 N_("%(shown)s, which does not contain %(wanted)s")),
    "startswith": (N_("%(shown)s, which starts with %(wanted)s"),
                   N_("%(shown)s, which does not start with %(wanted)s")),
    "endswith": (N_("%(shown)s, which ends with %(wanted)s"),
                 N_("%(shown)s, which does not end with %(wanted)s")),
}  # fmt: skip
PHRASES["doesnotcontain"] = PHRASES["contains"]


@dataclass(frozen=True)
class ProfileParams:
    field: str
    custom: bool
    op: str
    value: str

    @property
    def label(self) -> str:
        return f"profile_field_{self.field}" if self.custom else self.field


def _compare(op: str, actual: str, wanted: str) -> bool:
    if op == "isequalto":
        return actual == wanted
    if op == "contains":
        return wanted in actual
    if op == "doesnotcontain":
        return not wanted or wanted not in actual
    if op == "startswith":
        return actual.startswith(wanted)
    if op == "endswith":
        return actual.endswith(wanted)
    if op == "isempty":
        return actual == ""
    return actual != ""


def _compare_sql(op: str, column: ColumnElement[str], wanted: str) -> ColumnElement[bool]:
    # No LIKE: SQLite's is case-insensitive, PostgreSQL's is not. replace/substr/length compare
    # exactly, in characters, on both.
    if op == "isequalto":
        return column == wanted
    if op in ("contains", "doesnotcontain"):
        if not wanted:
            return true()
        unchanged = func.replace(column, wanted, "") == column
        return not_(unchanged) if op == "contains" else unchanged
    if op == "startswith":
        return func.substr(column, 1, len(wanted)) == wanted if wanted else true()
    if op == "endswith":
        if not wanted:
            return true()
        # A value shorter than ``wanted`` yields a start <= 0 and at most the whole (shorter)
        # value, so it never compares equal.
        return func.substr(column, func.length(column) - (len(wanted) - 1)) == wanted
    if op == "isempty":
        return column == ""
    return column != ""


def _custom_values(ctx: UserContext) -> dict[str, str]:
    """Every custom field's value for the user ('' without a row), in one query."""
    rows = ctx.site.session.execute(
        select(ProfileField.shortname, ProfileData.value).outerjoin(
            ProfileData,
            and_(ProfileData.field_id == ProfileField.id, ProfileData.user_id == ctx.user.id),
        )
    )
    return {shortname: value or "" for shortname, value in rows}


def _field_id(session: Session, shortname: str) -> int | None:
    return session.scalar(select(ProfileField.id).where(ProfileField.shortname == shortname))


class ProfileCondition(ConditionType):
    """A standard (``sf``) or custom (``cf``) profile field compared with ``v``."""

    type = "profile"

    def parse(self, node: Mapping[str, Any], path: JsonPath) -> ProfileParams:
        _check_keys(node, path, ("sf", "cf", "op", "v"))
        if ("sf" in node) == ("cf" in node):
            raise path.error("give exactly one of 'sf' (standard field) or 'cf' (custom field)")
        custom = "cf" in node
        field = _name(node, path, "cf" if custom else "sf", "the field's name")
        if not custom and field not in STANDARD_FIELDS:
            raise path.key("sf").error(
                f"unknown standard field {field!r} (fields: {', '.join(STANDARD_FIELDS)})"
            )
        op = node.get("op")
        if op not in PROFILE_OPS:
            raise path.key("op").error(
                f"unknown operator {op!r} (operators: {', '.join(PROFILE_OPS)})"
            )
        if op in NO_VALUE_OPS:
            if "v" in node:
                raise path.key("v").error(f"{op} takes no value; remove 'v'")
            return ProfileParams(field, custom, op, "")
        value = node.get("v")
        if not isinstance(value, str):
            raise path.key("v").error(f"{op} needs the value to compare with, as a string")
        return ProfileParams(field, custom, op, value)

    def _actual(self, params: ProfileParams, ctx: UserContext) -> str | None:
        if not params.custom:
            return getattr(ctx.user, params.field)
        return ctx.memo("profile", lambda: _custom_values(ctx)).get(params.field)

    def evaluate(self, params: ProfileParams, ctx: UserContext) -> bool:
        actual = self._actual(params, ctx)
        return actual is not None and _compare(params.op, actual, params.value)

    def sql(self, params: ProfileParams, ctx: SqlContext) -> ColumnElement[bool]:
        if not params.custom:
            return _compare_sql(params.op, getattr(User, params.field), params.value)
        field_id = _field_id(ctx.site.session, params.field)
        if field_id is None:
            return false()
        stored = (
            select(ProfileData.value)
            .where(ProfileData.user_id == User.id, ProfileData.field_id == field_id)
            .scalar_subquery()
        )
        return _compare_sql(params.op, func.coalesce(stored, ""), params.value)

    def explain(self, params: ProfileParams, ctx: UserContext, passed: bool) -> Text:
        actual = self._actual(params, ctx)
        if actual is None:
            return Text("no custom profile field %(field)s exists", field=repr(params.field))
        name, op, wanted = params.label, params.op, repr(params.value)
        if actual:
            shown = Text("%(field)s is %(value)s", field=name, value=repr(actual))
        else:
            shown = Text("%(field)s is empty", field=name)
        if passed and op in ("isequalto", "isempty", "isnotempty"):
            return shown
        if op == "isequalto":
            return Text("%(shown)s, expected %(wanted)s", shown=shown, wanted=wanted)
        if op == "isempty":
            return Text("%(shown)s, expected empty", shown=shown)
        if op == "isnotempty":
            return Text("%(shown)s, expected a value", shown=shown)
        if op == "doesnotcontain" and not params.value:
            return Text("%(shown)s (not containing '' matches everyone)", shown=shown)
        holds = _compare("contains" if op == "doesnotcontain" else op, actual, params.value)
        yes, no = PHRASES[op]
        return Text(yes if holds else no, shown=shown, wanted=wanted)

    def errors(self, params: ProfileParams, site: Site) -> list[str]:
        if not params.custom or _field_id(site.session, params.field) is not None:
            return []
        known = site.session.scalars(
            select(ProfileField.shortname).order_by(ProfileField.shortname)
        )
        names = ", ".join(known) or "none yet: add one under Site administration, Profile fields"
        return [f"unknown custom profile field {params.field!r} (custom fields: {names})"]

    def fields(self, params: ProfileParams) -> tuple[str, ...]:
        return (params.label,)

    def prefilter(self, params: ProfileParams) -> tuple[str, str] | None:
        if params.op != "isequalto":
            return None
        return (params.label, params.value)


# --- date ------------------------------------------------------------------------------------

#: Latest time accepted: 9999-12-31T23:59:59Z.
MAX_TIME = 253402300799


def _when(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class DateParams:
    direction: str
    time: int


class DateCondition(ConditionType):
    """``d`` ``">="`` (from ``t``) or ``"<"`` (until ``t``), Unix seconds, against now."""

    type = "date"

    def parse(self, node: Mapping[str, Any], path: JsonPath) -> DateParams:
        _check_keys(node, path, ("d", "t"))
        direction = node.get("d")
        if direction not in (">=", "<"):
            raise path.key("d").error(
                f"unknown direction {direction!r}; use '>=' (from) or '<' (until)"
            )
        time = node.get("t")
        if isinstance(time, bool) or not isinstance(time, int) or not 0 <= time <= MAX_TIME:
            raise path.key("t").error("give the time as whole Unix seconds (0 to 253402300799)")
        return DateParams(direction, time)

    def evaluate(self, params: DateParams, ctx: UserContext) -> bool:
        return self._holds(params, ctx.now)

    def _holds(self, params: DateParams, now: int) -> bool:
        return now >= params.time if params.direction == ">=" else now < params.time

    def sql(self, params: DateParams, ctx: SqlContext) -> ColumnElement[bool]:
        return true() if self._holds(params, ctx.now) else false()

    def explain(self, params: DateParams, ctx: UserContext, passed: bool) -> Text:
        if ctx.now < params.time:
            return Text("it is %(now)s, before %(time)s", now=_when(ctx.now),
                        time=_when(params.time))  # fmt: skip
        return Text("it is %(now)s, on or after %(time)s", now=_when(ctx.now),
                    time=_when(params.time))  # fmt: skip


# --- badge -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BadgeParams:
    badge_id: int | None
    name: str | None

    @property
    def label(self) -> Text:
        if self.name is not None:
            return Text("badge %(name)s", name=repr(self.name))
        return Text("badge #%(id)s", id=self.badge_id)


def _user_badges(ctx: UserContext) -> tuple[set[int], set[str]]:
    rows = ctx.site.session.execute(
        select(Badge.id, Badge.name)
        .join(BadgeAward, BadgeAward.badge_id == Badge.id)
        .where(BadgeAward.user_id == ctx.user.id)
    ).all()
    return {row.id for row in rows}, {row.name for row in rows}


class BadgeCondition(ConditionType):
    """Awarded the badge ``id``: its numeric id (Moodle's form) or its name."""

    type = "badge"

    def parse(self, node: Mapping[str, Any], path: JsonPath) -> BadgeParams:
        _check_keys(node, path, ("id",))
        value = node.get("id")
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return BadgeParams(value, None)
        if isinstance(value, str) and value.strip():
            return BadgeParams(None, value)
        raise path.key("id").error("give the badge's name or its id (a positive number)")

    def evaluate(self, params: BadgeParams, ctx: UserContext) -> bool:
        ids, names = ctx.memo("badge", lambda: _user_badges(ctx))
        return params.badge_id in ids if params.name is None else params.name in names

    def _resolve(self, params: BadgeParams, session: Session) -> int | None:
        if params.name is None:
            return params.badge_id if session.get(Badge, params.badge_id) else None
        return session.scalar(select(Badge.id).where(Badge.name == params.name))

    def sql(self, params: BadgeParams, ctx: SqlContext) -> ColumnElement[bool]:
        badge_id = self._resolve(params, ctx.site.session)
        if badge_id is None:
            return false()
        return (
            select(BadgeAward.user_id)
            .where(BadgeAward.user_id == User.id, BadgeAward.badge_id == badge_id)
            .exists()
        )

    def explain(self, params: BadgeParams, ctx: UserContext, passed: bool) -> Text:
        if passed:
            return Text("%(badge)s awarded", badge=params.label)
        if self._resolve(params, ctx.site.session) is None:
            return Text("no %(badge)s exists", badge=params.label)
        return Text("%(badge)s not awarded", badge=params.label)

    def problems(self, params: BadgeParams, site: Site) -> list[str]:
        return [f"no {params.label}"] if self._resolve(params, site.session) is None else []


# --- course completion -----------------------------------------------------------------------


def _user_completions(ctx: UserContext) -> set[str]:
    return set(
        ctx.site.session.scalars(
            select(Course.shortname)
            .join(CourseCompletion, CourseCompletion.course_id == Course.id)
            .where(CourseCompletion.user_id == ctx.user.id, CourseCompletion.timecompleted != 0)
        )
    )


def _course_id(session: Session, shortname: str) -> int | None:
    return session.scalar(select(Course.id).where(Course.shortname == shortname))


class CompletionCondition(ConditionType):
    """Completed the course ``course`` (a shortname)."""

    type = "completion"

    def parse(self, node: Mapping[str, Any], path: JsonPath) -> str:
        if "cm" in node:
            raise path.key("cm").error(
                "activity completion is not supported; give a course shortname as 'course'"
            )
        _check_keys(node, path, ("course",))
        return _name(node, path, "course", "the course's shortname")

    def evaluate(self, params: str, ctx: UserContext) -> bool:
        return params in ctx.memo("completion", lambda: _user_completions(ctx))

    def sql(self, params: str, ctx: SqlContext) -> ColumnElement[bool]:
        course_id = _course_id(ctx.site.session, params)
        if course_id is None:
            return false()
        return (
            select(CourseCompletion.user_id)
            .where(
                CourseCompletion.user_id == User.id,
                CourseCompletion.course_id == course_id,
                CourseCompletion.timecompleted != 0,
            )
            .exists()
        )

    def explain(self, params: str, ctx: UserContext, passed: bool) -> Text:
        if passed:
            return Text("completed course %(course)s", course=repr(params))
        if _course_id(ctx.site.session, params) is None:
            return Text("no course %(course)s exists", course=repr(params))
        return Text("has not completed course %(course)s", course=repr(params))

    def problems(self, params: str, site: Site) -> list[str]:
        return [f"no course {params!r}"] if _course_id(site.session, params) is None else []


# --- cohort ----------------------------------------------------------------------------------


def _user_cohorts(ctx: UserContext) -> set[str]:
    return set(
        ctx.site.session.scalars(
            select(Cohort.idnumber)
            .join(CohortMember, CohortMember.cohort_id == Cohort.id)
            .where(CohortMember.user_id == ctx.user.id)
        )
    )


def _cohort_id(session: Session, idnumber: str) -> int | None:
    return session.scalar(select(Cohort.id).where(Cohort.idnumber == idnumber))


class CohortCondition(ConditionType):
    """A member of the cohort ``id`` (its idnumber)."""

    type = "cohort"

    def parse(self, node: Mapping[str, Any], path: JsonPath) -> str:
        _check_keys(node, path, ("id",))
        return _name(node, path, "id", "the cohort's idnumber")

    def evaluate(self, params: str, ctx: UserContext) -> bool:
        return params in ctx.memo("cohort", lambda: _user_cohorts(ctx))

    def sql(self, params: str, ctx: SqlContext) -> ColumnElement[bool]:
        cohort_id = _cohort_id(ctx.site.session, params)
        if cohort_id is None:
            return false()
        return (
            select(CohortMember.user_id)
            .where(CohortMember.user_id == User.id, CohortMember.cohort_id == cohort_id)
            .exists()
        )

    def explain(self, params: str, ctx: UserContext, passed: bool) -> Text:
        if passed:
            return Text("member of cohort %(cohort)s", cohort=repr(params))
        if _cohort_id(ctx.site.session, params) is None:
            return Text("no cohort %(cohort)s exists", cohort=repr(params))
        return Text("not a member of cohort %(cohort)s", cohort=repr(params))

    def problems(self, params: str, site: Site) -> list[str]:
        return [f"no cohort {params!r}"] if _cohort_id(site.session, params) is None else []


# --- user columns: language, auth ------------------------------------------------------------


class ColumnCondition(ConditionType):
    """A ``users`` column equal to ``id`` (exactly, case-sensitive)."""

    column = ""
    what = ""

    def parse(self, node: Mapping[str, Any], path: JsonPath) -> str:
        _check_keys(node, path, ("id",))
        return _name(node, path, "id", self.what)

    def evaluate(self, params: str, ctx: UserContext) -> bool:
        return getattr(ctx.user, self.column) == params

    def sql(self, params: str, ctx: SqlContext) -> ColumnElement[bool]:
        return getattr(User, self.column) == params

    def explain(self, params: str, ctx: UserContext, passed: bool) -> Text:
        shown = Text("%(field)s is %(value)s", field=self.type,
                     value=repr(getattr(ctx.user, self.column)))  # fmt: skip
        return shown if passed else Text("%(shown)s, expected %(wanted)s", shown=shown,
                                         wanted=repr(params))  # fmt: skip

    def prefilter(self, params: str) -> tuple[str, str]:
        return (self.column, params)


class LanguageCondition(ColumnCondition):
    """The user's language (``users.lang``) is ``id``, e.g. ``"fr"``."""

    type = "language"
    column = "lang"
    what = "the language code"


class AuthCondition(ColumnCondition):
    """The user's authentication method (``users.auth``) is ``id``, e.g. ``"ldap"``."""

    type = "auth"
    column = "auth"
    what = "the authentication method"


#: The condition types the core registers, in the order the rule builder offers them.
STANDARD_TYPES = (
    ProfileCondition,
    DateCondition,
    BadgeCondition,
    CompletionCondition,
    CohortCondition,
    LanguageCondition,
    AuthCondition,
)
