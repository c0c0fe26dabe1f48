"""User-written templates: welcome messages (sandboxed Jinja2) and group names (placeholders).

Teachers and admins write these; users control much of the data that fills them (names, profile
fields). So a template must not run code, reach the database or exhaust the machine, and user text
must never turn into markup. Welcome messages render in a Jinja2 sandbox that sees plain data only
(never ORM objects), under named limits: a wall-clock deadline checked inside the sandbox, a work
cost by the size of what filters and sequence operations go through, caps on list length, value
size and output (counted as it streams). Group names are plain substitution that also compiles to
one SQL expression for set-based syncs. Problems are found when a template is saved
(``validate_welcome``, which also renders it once for a sample user, ``validate_group_template``)
and reported with line numbers; rendering later shows an unknown variable as empty text instead of
failing a mail. Welcome mails are rendered by the mail delivery task, never inside the transaction
that enrols (``mail.queue_template``). See docs/templates.md.
"""

from __future__ import annotations

import json
import re
import time
import traceback
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache, wraps
from html.parser import HTMLParser
from types import SimpleNamespace
from typing import Any

from jinja2 import ChainableUndefined, Environment, Undefined, meta, nodes, pass_context
from jinja2.compiler import CodeGenerator
from jinja2.exceptions import SecurityError, TemplateRuntimeError, TemplateSyntaxError
from jinja2.filters import make_attrgetter
from jinja2.runtime import LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, _PassArg
from jinja2.visitor import NodeTransformer
from markupsafe import Markup, escape
from sqlalchemy import ColumnElement, String, case, exists, func, literal, select

from .errors import EnrolkitError
from .models import STANDARD_FIELDS, Group, ProfileData, ProfileField, Role, User
from .models import Course as CourseRow
from .names import format_string
from .site import Site
from .texts import Gettext

#: Longest template source accepted, in characters.
MAX_SOURCE = 20_000
#: Most characters a render may write (all output, including ``{% set %}`` blocks and macros),
#: and the longest string any single expression may build or print.
MAX_OUTPUT = 100_000
#: Longest list, tuple, dict or ``range`` a template may build or loop over.
MAX_ITEMS = 10_000
#: Most loop rounds plus function, macro and filter calls in one render.
MAX_STEPS = 10_000
#: Most items and characters that filters and operations over sequences (sort, join, list,
#: ``*``, ``+``, printing a list) may go through in one render, summed over the whole render.
MAX_WORK = 1_000_000
#: Widest ``%`` format width or precision.
MAX_FORMAT_WIDTH = 1_000
#: Largest integer, in bits, that arithmetic may build.
MAX_INT_BITS = 4_096
#: Seconds of wall-clock time one render may take, unless the site sets
#: ``core``/``template_time_limit`` (see :func:`time_limit`).
TIME_LIMIT = 0.5
TIME_LIMIT_KEY = "template_time_limit"
#: The range a site may choose for its time limit, in seconds.
TIME_LIMIT_RANGE = (0.05, 10.0)

#: The configuration keys (component "core") that name the site in messages.
SITE_NAME, SITE_URL = "site_name", "site_url"
DEFAULT_SITE_NAME, DEFAULT_SITE_URL = "enrolkit", "http://127.0.0.1:5000"

PROFILE_PREFIX = "profile_field_"

DEFAULT_WELCOME = """\
Dear {{ user.fullname }},

you have been enrolled in the course "{{ course.fullname }}".
Open it here: {{ course.url }}

If you have not done so already, please complete your profile: {{ profileurl }}
"""


# --- problems and errors -------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateProblem:
    """One thing wrong with a template, at a line of its source (1-based)."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class TemplateError(EnrolkitError):
    """A template cannot be saved or rendered; ``problems`` lists why, each with its line."""

    def __init__(self, problems: Sequence[TemplateProblem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(map(str, self.problems)))


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


# --- the sandbox ---------------------------------------------------------------------------


class _TooMuch(TemplateRuntimeError):
    """A render went over one of the limits; the message starts with the limit's name."""


def _too_long(value: Any) -> _TooMuch:
    if isinstance(value, str):
        return _TooMuch(f"size limit: a value longer than {MAX_OUTPUT} characters")
    return _TooMuch(f"size limit: a value longer than {MAX_ITEMS} items")


class _Budget:
    """What one render has spent so far and when it must end; shared by every loop, call,
    filter and piece of output in it. Every charge also looks at the clock, so a render stops
    within a few milliseconds of its deadline whatever it is doing."""

    __slots__ = ("steps", "work", "chars", "seconds", "deadline")

    def __init__(self, seconds: float = TIME_LIMIT) -> None:
        self.steps = 0
        self.work = 0
        self.chars = 0
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def clock(self) -> None:
        if time.monotonic() > self.deadline:
            raise _TooMuch(f"time limit: the template took longer than {self.seconds:g} s")

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise _TooMuch(
                f"step limit: the template does too much work "
                f"(over {MAX_STEPS} loop rounds and calls)"
            )
        self.clock()

    def spend(self, units: int) -> None:
        self.work += units
        if self.work > MAX_WORK:
            raise _TooMuch(
                f"work limit: the template does too much work on lists and text "
                f"(over {MAX_WORK} items and characters)"
            )
        self.clock()

    def emit(self, count: int) -> None:
        self.chars += count
        if self.chars > MAX_OUTPUT:
            raise _TooMuch(f"output limit: the template writes more than {MAX_OUTPUT} characters")
        self.clock()


_BUDGET: ContextVar[_Budget | None] = ContextVar("enrolkit_template_budget", default=None)


def _budget() -> _Budget:
    # Outside a render (Jinja folding constants at compile time) a throwaway budget still
    # enforces the per-value caps.
    return _BUDGET.get() or _Budget()


def _sized(value: Any) -> Any:
    if isinstance(value, str):
        if len(value) > MAX_OUTPUT:
            raise _too_long(value)
    elif isinstance(value, list | tuple | dict | set | frozenset | range):
        if len(value) > MAX_ITEMS:
            raise _too_long(value)
    elif isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise _TooMuch(f"size limit: a number larger than {MAX_INT_BITS} bits")
    return value


_VIEWS = (type({}.keys()), type({}.values()), type({}.items()))
_COLLECTIONS = (list, tuple, set, frozenset, *_VIEWS)  # noqa: UP038


def _weigh(value: Any) -> int:
    """What printing ``value`` costs: the characters of its strings plus its items, through
    nested lists, dicts and namespaces, charged as work. Counting stops, and the render fails,
    as soon as it passes :data:`MAX_OUTPUT`, so ``[big] * 10000`` is refused before ``str()``
    builds gigabytes."""
    if isinstance(value, str):
        total = len(value)
    else:
        total, stack, budget, rounds = 0, [value], _budget(), 0
        while stack:
            rounds += 1
            if rounds % 1024 == 0:
                budget.clock()
            item = stack.pop()
            if isinstance(item, str):
                total += len(item)
            elif isinstance(item, (dict, *_COLLECTIONS)):
                total += len(item)
                if total > MAX_OUTPUT:
                    break
                for inner in item.items() if isinstance(item, dict) else item:
                    kind = type(inner)
                    if kind is str:
                        total += len(inner)
                    elif kind not in _ATOMS:
                        stack.append(inner)
            elif isinstance(item, SimpleNamespace | Namespace):
                stack.append(_namespace_attrs(item))
            else:
                total += 1
            if total > MAX_OUTPUT:
                break
        if total > MAX_OUTPUT:
            raise _TooMuch(
                f"size limit: a value holding more than {MAX_OUTPUT} characters and items"
            )
    _budget().spend(total)
    return total


_ATOMS = frozenset({int, float, bool, type(None)})


def _namespace_attrs(item: Any) -> dict:
    if isinstance(item, Namespace):
        return item._Namespace__attrs  # type: ignore[attr-defined]
    return vars(item)


def _counted(items: Any) -> Iterator[Any]:
    """A lazy sequence handed to a filter, charged item by item as the filter pulls it."""
    budget = _budget()
    for count, item in enumerate(items, 1):
        if count > MAX_ITEMS:
            raise _too_long(())
        budget.spend(1)
        yield item


def _charged(value: Any) -> Any:
    """A filter's or call's argument, paid for: sized values by weight, iterators per item."""
    if isinstance(value, (str, dict, *_COLLECTIONS)):
        _weigh(value)
        return value
    if isinstance(value, range):  # lazy, and no longer than MAX_ITEMS
        _budget().spend(len(value))
        return value
    if isinstance(value, Iterator):
        return _counted(value)
    return value


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d*)(?:\.(\*|\d*))?")


def _check_percent(fmt: str) -> None:
    for width, precision in _PERCENT_SPEC.findall(fmt):
        for number in (width, precision):
            if number == "*" or (number and int(number[:6]) > MAX_FORMAT_WIDTH):
                raise _TooMuch(f"size limit: a format width over {MAX_FORMAT_WIDTH}")


def _plus(left: Any, right: Any) -> Any:
    for side in (left, right):
        if isinstance(side, str | list | tuple):
            _budget().spend(len(side))
    return _sized(left + right)


def _times(left: Any, right: Any) -> Any:
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, str | list | tuple) and isinstance(count, int):
            size = len(seq) * max(count, 0)
            if size > (MAX_OUTPUT if isinstance(seq, str) else MAX_ITEMS):
                raise _too_long(seq)
            _budget().spend(size)
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise _TooMuch(f"size limit: a number larger than {MAX_INT_BITS} bits")
    return left * right


def _power(left: Any, right: Any) -> Any:
    if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
        if left.bit_length() * right > MAX_INT_BITS:
            raise _TooMuch(f"size limit: a number larger than {MAX_INT_BITS} bits")
    return left**right


def _modulo(left: Any, right: Any) -> Any:
    if isinstance(left, str):
        _check_percent(left)
        _weigh(left)
        _weigh(right)
    return _sized(left % right)


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": _plus,
    "*": _times,
    "**": _power,
    "%": _modulo,
}

#: Methods a template may call on strings and dicts; everything else callable is refused.
_STR_METHODS = frozenset(
    "capitalize endswith lower lstrip rstrip split startswith strip title upper".split()
)
_DICT_METHODS = frozenset({"get", "items", "keys", "values"})

#: Filters whose work does not grow with their input: they are not charged by its size.
_CHEAP_FILTERS = frozenset("abs count d default first float int length round".split())
#: Filters that sort, charged ``n log n``.
_SORTING_FILTERS = frozenset({"sort", "dictsort", "unique"})


def _guarded_filter(name: str, original: Callable) -> Callable:
    """Every filter: one step, its inputs paid for by size (sorting by ``n log n``), its
    result sized."""
    cheap, sorting = name in _CHEAP_FILTERS, name in _SORTING_FILTERS
    passes = _PassArg.from_obj(original)

    @wraps(original)  # keeps Jinja's pass_context/pass_eval_context marker
    def filter_(*args, **kwargs):
        budget = _budget()
        budget.step()
        if not cheap:
            start = 1 if passes is not None else 0
            args = (*args[:start], *map(_charged, args[start:]))
            kwargs = {key: _charged(value) for key, value in kwargs.items()}
            if sorting and len(args) > start and hasattr(args[start], "__len__"):
                size = len(args[start])
                budget.spend(size * max(size.bit_length(), 1))
        return _sized(original(*args, **kwargs))

    return filter_


def _checked_replace(original: Callable) -> Callable:
    @wraps(original)
    def replace(eval_ctx, value, old, new, count=None):
        text, old, new = str(value), str(old), str(new)
        hits = text.count(old) if count is None else min(text.count(old), count)
        if len(text) + hits * (len(new) - len(old)) > MAX_OUTPUT:
            raise _too_long(text)
        return original(eval_ctx, value, old, new, count)

    return replace


def _checked_join(original: Callable) -> Callable:
    @wraps(original)
    def join(eval_ctx, value, d="", attribute=None):
        items = list(value)
        size = len(str(d)) * max(len(items) - 1, 0)
        for item in items:  # stops at the first item past the cap, not after weighing all
            size += _weigh(item)
            if size > MAX_OUTPUT:
                raise _too_long("")
        return original(eval_ctx, items, d, attribute)

    return join


def _checked_format(original: Callable) -> Callable:
    @wraps(original)
    def format_(value, *args, **kwargs):
        _check_percent(str(value))
        return original(value, *args, **kwargs)

    return format_


def _checked_sum(original: Callable) -> Callable:
    """``sum`` adds numbers only: adding lists or strings one by one is quadratic."""

    @wraps(original)
    def sum_(environment, iterable, attribute=None, start=0):
        items = list(iterable)
        if attribute is not None:
            getter = make_attrgetter(environment, attribute)
            items = [getter(item) for item in items]
        if not all(isinstance(item, int | float) for item in [start, *items]):
            raise TemplateRuntimeError("sum adds numbers only")
        return original(environment, items, start=start)

    return sum_


#: The filters templates may use; the rest (``safe``, ``indent``, ``center``, ``wordwrap``,
#: ``tojson``, ...) could defeat escaping or blow up the output.
_FILTERS = (
    "abs capitalize count d default dictsort e escape first float format int join last length "
    "list lower map max min reject rejectattr replace reverse round select selectattr sort string "
    "striptags sum title trim truncate unique upper urlencode wordcount"
).split()
_CHECKED = {
    "replace": _checked_replace,
    "join": _checked_join,
    "format": _checked_format,
    "sum": _checked_sum,
}

_STEP, _EMIT, _SIZE, _WEIGH = (
    "_enrolkit_step",
    "_enrolkit_emit",
    "_enrolkit_size",
    "_enrolkit_weigh",
)


@pass_context
def _step_filter(context, iterable):
    budget = _budget()
    for item in iterable:
        budget.step()
        yield item


@pass_context
def _emit_filter(context, value):
    _budget().emit(_weigh(value))
    return value


@pass_context
def _size_filter(context, value):
    return _sized(value)


@pass_context
def _weigh_filter(context, value):
    _weigh(value)
    return value


def _range(*args: int) -> range:
    """``range`` with :data:`MAX_ITEMS` as its longest."""
    numbers = range(*args)
    if len(numbers) > MAX_ITEMS:
        raise _TooMuch(f"size limit: a range longer than {MAX_ITEMS} items")
    return numbers


def _filter(node: nodes.Expr, name: str) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


class _Guards(NodeTransformer):
    """Rewrites a parsed template so every loop round, every piece of output and every ``~``
    join passes through the budget, and autoescape cannot be switched off."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _filter(node.iter, _STEP)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [_filter(child, _WEIGH) for child in node.nodes]
        return _filter(node, _SIZE)

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [_filter(child, _EMIT) for child in node.nodes]
        return node

    def visit_ScopedEvalContextModifier(self, node: nodes.ScopedEvalContextModifier) -> list:
        self.generic_visit(node)
        return node.body

    def visit_EvalContextModifier(self, node: nodes.EvalContextModifier) -> None:
        return None


class _GuardedCodeGenerator(CodeGenerator):
    def visit_Template(self, node: nodes.Template, frame=None) -> None:
        _Guards().visit(node)
        super().visit_Template(node, frame)


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, narrowed: callable attributes only from a short allow-list,
    no ``str.format``, unsafe attributes raise at once, arithmetic, filters and calls are
    charged by size, and every call and lookup looks at the render's clock."""

    code_generator_class = _GuardedCodeGenerator
    intercepted_binops = frozenset(_BINOPS)

    def __init__(self, *, autoescape: bool) -> None:
        super().__init__(
            autoescape=autoescape,
            undefined=ChainableUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.globals = {"range": _range, "dict": self.globals["dict"]}
        self.globals["namespace"] = Namespace
        builtin = self.filters
        self.filters = {
            name: _guarded_filter(name, _CHECKED.get(name, lambda f: f)(builtin[name]))
            for name in _FILTERS
        }
        self.filters.update(
            {_STEP: _step_filter, _EMIT: _emit_filter, _SIZE: _size_filter, _WEIGH: _weigh_filter}
        )

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not super().is_safe_attribute(obj, attr, value):
            return False
        if not callable(value) or isinstance(obj, LoopContext | Undefined):
            return True
        if isinstance(obj, str):
            return attr in _STR_METHODS
        return isinstance(obj, dict) and attr in _DICT_METHODS

    def unsafe_undefined(self, obj: Any, attribute: str):
        raise SecurityError(
            f"{attribute!r} of a {type(obj).__name__} value is not available in templates"
        )

    def wrap_str_format(self, value: Any) -> None:
        return None

    def getattr(self, obj: Any, attribute: str) -> Any:
        _budget().clock()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _budget().clock()
        return super().getitem(obj, argument)

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        return _BINOPS[operator](left, right)

    def call(self, context, obj, /, *args, **kwargs) -> Any:
        _budget().step()
        args = tuple(map(_charged, args))
        kwargs = {key: _charged(value) for key, value in kwargs.items()}
        return _sized(super().call(context, obj, *args, **kwargs))


_HTML_ENV = _Sandbox(autoescape=True)
_TEXT_ENV = _Sandbox(autoescape=False)
_TEMPLATE_FILE = "<template>"


@lru_cache(maxsize=128)
def _compiled(env: _Sandbox, source: str):
    return env.from_string(source)


def _template_line(exc: BaseException) -> int:
    """The template line where a render failed (Jinja maps its frames back to the source)."""
    line = 1
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == _TEMPLATE_FILE:
            line = lineno
    return line


def _failure(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "depth limit: the template calls itself too deeply"
    if isinstance(exc, MemoryError):
        return "size limit: the template needs too much memory"
    text = getattr(exc, "message", None) or str(exc)
    return text if text else type(exc).__name__


def _render(env: _Sandbox, source: str, variables: Mapping[str, Any], seconds: float) -> str:
    """Render under a fresh budget, streaming: the output is counted chunk by chunk as it is
    produced, so an over-long message stops at the cap instead of being built first."""
    if len(source) > MAX_SOURCE:
        raise TemplateError([TemplateProblem(1, f"longer than {MAX_SOURCE} characters")])
    budget = _Budget(seconds)
    token = _BUDGET.set(budget)
    try:
        parts: list[str] = []
        written = 0
        for chunk in _compiled(env, source).generate(variables):
            written += len(chunk)
            if written > MAX_OUTPUT:
                raise _TooMuch(
                    f"output limit: the template writes more than {MAX_OUTPUT} characters"
                )
            budget.clock()
            parts.append(chunk)
        return "".join(parts)
    except TemplateSyntaxError as exc:
        raise TemplateError([TemplateProblem(exc.lineno or 1, exc.message or str(exc))]) from None
    except Exception as exc:  # whatever the template's own code raised
        raise TemplateError([TemplateProblem(_template_line(exc), _failure(exc))]) from None
    finally:
        _BUDGET.reset(token)


def time_limit(site: Site) -> float:
    """The site's wall-clock limit per render (``core``/``template_time_limit``, seconds),
    kept within :data:`TIME_LIMIT_RANGE`; :data:`TIME_LIMIT` when unset or not a number."""
    try:
        seconds = float(site.get_config("core", TIME_LIMIT_KEY, TIME_LIMIT))
    except (TypeError, ValueError):
        return TIME_LIMIT
    low, high = TIME_LIMIT_RANGE
    return min(max(seconds, low), high) if seconds == seconds else TIME_LIMIT


# --- welcome messages: variables -------------------------------------------------------------

_USER_FIELDS = (
    "username",
    "firstname",
    "lastname",
    "fullname",
    "email",
    "idnumber",
    "department",
    "institution",
    "city",
    "country",
    "lang",
    "auth",
    "profile",
)
_SCHEMA: dict[str, frozenset[str]] = {
    "user": frozenset(_USER_FIELDS),
    "course": frozenset({"shortname", "fullname", "idnumber", "url", "startdate"}),
    "enrolment": frozenset({"role", "start", "end"}),
    "site": frozenset({"name", "url"}),
}
#: Moodle's placeholder names, top-level, so messages written for Moodle keep working.
MOODLE_NAMES = frozenset(
    "coursename fullname firstname lastname email profileurl courselink link courserole "
    "coursestartdate".split()
)
WELCOME_VARIABLES = frozenset(_SCHEMA) | MOODLE_NAMES


def _date(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).date().isoformat() if seconds else ""


def site_vars(site: Site) -> SimpleNamespace:
    """``site`` in templates: its name and base URL (config ``core``/``site_name``,
    ``site_url``; unset, the address the web request came to)."""
    configured = site.get_config("core", SITE_URL, "")
    url = str(configured or site.serving_url or DEFAULT_SITE_URL).rstrip("/")
    name = format_string(str(site.get_config("core", SITE_NAME, DEFAULT_SITE_NAME)))
    return SimpleNamespace(name=name, url=url)


def course_vars(site: Site, course: CourseRow) -> SimpleNamespace:
    """``course`` in templates; methods pass it for other courses too (``completed_course``)."""
    return SimpleNamespace(
        shortname=format_string(course.shortname),
        fullname=format_string(course.fullname or course.shortname),
        idnumber=course.idnumber,
        url=f"{site_vars(site).url}/course/{course.id}",
        startdate=_date(course.startdate),
    )


def _user_namespace(fields: Mapping[str, str], profile: Mapping[str, str]) -> SimpleNamespace:
    values = {name: fields.get(name) or "" for name in _USER_FIELDS if name != "profile"}
    values.update({PROFILE_PREFIX + name: value for name, value in profile.items()})
    return SimpleNamespace(**values, profile=dict(profile))


def user_vars(site: Site, user: User) -> SimpleNamespace:
    """``user`` in templates: standard fields, ``profile`` (every custom field by shortname,
    '' when unset) and the same values as ``profile_field_<shortname>``."""
    return user_vars_many(site, [user])[user.id]


#: Users whose custom fields one query reads.
_USERS_PER_QUERY = 500


def user_vars_many(site: Site, users: Iterable[User]) -> dict[int, SimpleNamespace]:
    """:func:`user_vars` of many users by id, their custom fields read in one query per 500
    users (welcome messages for a batch of enrolments)."""
    people = {user.id: user for user in users}
    ids = list(people)
    shortnames: set[str] = set()
    values: dict[int, dict[str, str]] = {user_id: {} for user_id in ids}
    for start in range(0, len(ids), _USERS_PER_QUERY):
        # Every field comes back at least once (the outer join), with the values these users have.
        rows = site.session.execute(
            select(ProfileField.shortname, ProfileData.user_id, ProfileData.value).outerjoin(
                ProfileData,
                (ProfileData.field_id == ProfileField.id)
                & ProfileData.user_id.in_(ids[start : start + _USERS_PER_QUERY]),
            )
        )
        for shortname, user_id, value in rows:
            shortnames.add(shortname)
            if user_id is not None:
                values[user_id][shortname] = value or ""
    ordered = sorted(shortnames)
    return {
        user_id: _user_namespace(
            {name: getattr(user, name) for name in _USER_FIELDS[:-1]},
            {shortname: values[user_id].get(shortname, "") for shortname in ordered},
        )
        for user_id, user in people.items()
    }


#: The built-in sample user of previews and of the trial render at save time: made-up data that
#: belongs to nobody, so a template can be tried without reading a real person's profile.
SAMPLE_USER = {
    "username": "sample.student",
    "firstname": "Sam",
    "lastname": "Sample",
    "fullname": "Sam Sample",
    "email": "sam.sample@example.org",
    "idnumber": "S-0001",
    "department": "Sample department",
    "institution": "Sample institution",
    "city": "Sampleville",
    "country": "FR",
    "lang": "en",
    "auth": "manual",
}
SAMPLE_USERNAME = SAMPLE_USER["username"]


def sample_user_vars(profile_fields: Collection[str]) -> SimpleNamespace:
    """``user`` for :data:`SAMPLE_USER`, each custom field filled with ``sample <shortname>``."""
    return _user_namespace(SAMPLE_USER, {name: f"sample {name}" for name in sorted(profile_fields)})


def masked_user_vars(the_user: SimpleNamespace, shown: Collection[str]) -> SimpleNamespace:
    """``the_user`` with every field outside ``shown`` (and every custom field) replaced by its
    name in brackets, e.g. ``[city]``: what a teacher's preview shows of a real user, who may
    see no more there than on the participants page."""
    fields = {
        name: value if name in shown else f"[{name}]"
        for name, value in vars(the_user).items()
        if name != "profile" and not name.startswith(PROFILE_PREFIX)
    }
    profile = {name: f"[{PROFILE_PREFIX}{name}]" for name in the_user.profile}
    return _user_namespace(fields, profile)


def _plain(value: Any, where: str) -> Any:
    """Only plain data reaches a template: a stray ORM object would open the database to it."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v, where) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, where) for v in value]
    if isinstance(value, SimpleNamespace):
        return SimpleNamespace(**{k: _plain(v, where) for k, v in vars(value).items()})
    raise TypeError(f"template variable {where}: {type(value).__name__} is not plain data")


def context_for(
    site: Site,
    user: User | None,
    course: CourseRow,
    *,
    role: Role | None = None,
    timestart: int = 0,
    timeend: int = 0,
    extra: Mapping[str, Any] | None = None,
    shown: Collection[str] | None = None,
    user_values: SimpleNamespace | None = None,
) -> dict[str, Any]:
    """Every variable a welcome message sees, as plain data read from the database. ``user``
    None means :data:`SAMPLE_USER`; ``shown`` limits what is shown of a real user
    (:func:`masked_user_vars`); ``user_values``: the user's :func:`user_vars`, when the caller
    read them for many users at once (:func:`user_vars_many`)."""
    if user is None:
        the_user = sample_user_vars(custom_field_names(site))
    else:
        the_user = user_values if user_values is not None else user_vars(site, user)
        if shown is not None:
            the_user = masked_user_vars(the_user, shown)
    return _context(
        the_user,
        course_vars(site, course),
        site_vars(site),
        user_id=user.id if user is not None else 0,
        role=format_string(role.name or role.shortname) if role is not None else "",
        timestart=timestart,
        timeend=timeend,
        extra=extra,
    )


def _context(
    the_user: SimpleNamespace,
    the_course: SimpleNamespace,
    the_site: SimpleNamespace,
    *,
    user_id: int,
    role: str = "",
    timestart: int = 0,
    timeend: int = 0,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    variables: dict[str, Any] = {
        "user": the_user,
        "course": the_course,
        "enrolment": SimpleNamespace(role=role, start=_date(timestart), end=_date(timeend)),
        "site": the_site,
        "coursename": the_course.fullname,
        "fullname": the_user.fullname,
        "firstname": the_user.firstname,
        "lastname": the_user.lastname,
        "email": the_user.email,
        "profileurl": f"{the_site.url}/user/{user_id}",
        "courselink": the_course.url,
        "link": the_course.url,
        "courserole": role,
        "coursestartdate": the_course.startdate,
    }
    for name, value in (extra or {}).items():
        variables[name] = _plain(value, name)
    return variables


def sample_context(profile_fields: Collection[str] | None) -> dict[str, Any]:
    """The variables of the trial render at save time, read from nothing: the sample user in a
    sample course of a default site."""
    the_site = SimpleNamespace(name=DEFAULT_SITE_NAME, url=DEFAULT_SITE_URL)
    the_course = SimpleNamespace(
        shortname="SAMPLE101",
        fullname="Sample course",
        idnumber="",
        url=f"{DEFAULT_SITE_URL}/course/0",
        startdate="",
    )
    return _context(
        sample_user_vars(profile_fields or ()), the_course, the_site, user_id=0, role="Student"
    )


def freeze_variables(variables: Mapping[str, Any]) -> str:
    """``variables`` (plain data, as :func:`context_for` returns) as JSON for the outbox, so
    the delivery task renders exactly what the enrolment saw."""

    def encode(value: Any) -> Any:
        if isinstance(value, SimpleNamespace):
            return {_NAMESPACE: vars(value)}
        raise TypeError(f"{type(value).__name__} is not plain data")

    return json.dumps(dict(variables), default=encode, sort_keys=True)


def thaw_variables(text: str) -> dict[str, Any]:
    """The variables :func:`freeze_variables` stored."""

    def decode(value: dict) -> Any:
        if set(value) == {_NAMESPACE}:
            return SimpleNamespace(**value[_NAMESPACE])
        return value

    return json.loads(text, object_hook=decode)


_NAMESPACE = "__namespace__"


def custom_field_names(site: Site) -> set[str]:
    """Shortnames of the site's custom profile fields."""
    return set(site.session.scalars(select(ProfileField.shortname)))


# --- welcome messages: validation ------------------------------------------------------------

_MOODLE_PLACEHOLDER = re.compile(r"\{\$a->([A-Za-z_][A-Za-z0-9_]*)\}")
_HTML_TAG = re.compile(r"<[A-Za-z/!]")


def _from_moodle(source: str) -> str:
    """``{$a->coursename}`` (Moodle's syntax) means ``{{ coursename }}``."""
    return _MOODLE_PLACEHOLDER.sub(r"{{ \1 }}", source)


def _assigned_names(tree: nodes.Template) -> set[str]:
    names = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    names.update(m.name for m in tree.find_all(nodes.Macro))
    return names


def _field_problem(base: str, attr: str, profile_fields: Collection[str] | None) -> str | None:
    if base == "user" and attr.startswith(PROFILE_PREFIX) and len(attr) > len(PROFILE_PREFIX):
        shortname = attr.removeprefix(PROFILE_PREFIX)
        if profile_fields is None or shortname in profile_fields:
            return None
        return f"no custom profile field {shortname!r}"
    if attr in _SCHEMA[base]:
        return None
    return f"{base} has no field {attr!r} (fields: {', '.join(sorted(_SCHEMA[base]))})"


def _attribute_of(node: nodes.Node) -> tuple[nodes.Expr, str] | None:
    if isinstance(node, nodes.Getattr):
        return node.node, node.attr
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        if isinstance(node.arg.value, str):
            return node.node, node.arg.value
    return None


def _undeclared(tree: nodes.Template) -> set[str]:
    """Names the template reads from its context. Jinja's tracker stops at an unknown filter,
    so it runs with stand-ins for every filter and test: those are reported on their own."""
    tracker = Environment()
    tracker.filters = {n.name: _identity for n in tree.find_all(nodes.Filter)}
    tracker.tests = {n.name: _identity for n in tree.find_all(nodes.Test)}
    codegen = meta.TrackingCodeGenerator(tracker)
    codegen.visit(tree)
    return codegen.undeclared_identifiers


def _identity(value: Any, *args: Any, **kwargs: Any) -> Any:
    return value


def _tree_problems(
    tree: nodes.Template, known: set[str], profile_fields: Collection[str] | None
) -> list[TemplateProblem]:
    problems: list[TemplateProblem] = []
    for node in tree.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
        problems.append(TemplateProblem(node.lineno, "templates cannot include other templates"))
    for node in tree.find_all(nodes.Filter):
        if node.name not in _HTML_ENV.filters or node.name.startswith("_"):
            problems.append(TemplateProblem(node.lineno, f"no filter named {node.name!r}"))
    for node in tree.find_all(nodes.Test):
        if node.name not in _HTML_ENV.tests:
            problems.append(TemplateProblem(node.lineno, f"no test named {node.name!r}"))
    for node in tree.find_all((nodes.EvalContextModifier, nodes.ScopedEvalContextModifier)):
        problems.append(TemplateProblem(node.lineno, "autoescape cannot be changed"))

    for name in sorted(_undeclared(tree) - known - set(_HTML_ENV.globals)):
        lines = [n.lineno for n in tree.find_all(nodes.Name) if n.name == name]
        line = min(lines, default=1)
        problems.append(TemplateProblem(line, f"unknown variable {name!r}"))

    problems.extend(_attribute_problems(tree, profile_fields))
    return sorted(set(problems), key=lambda p: (p.line, p.message))


_METHODS = _STR_METHODS | _DICT_METHODS | {"cycle", "changed"}


def _is_user_profile(node: nodes.Node, shadowed: set[str]) -> bool:
    inner = _attribute_of(node)
    return (
        inner is not None
        and inner[1] == "profile"
        and isinstance(inner[0], nodes.Name)
        and inner[0].name == "user"
        and "user" not in shadowed
    )


def _attribute_problems(
    tree: nodes.Template, profile_fields: Collection[str] | None
) -> Iterator[TemplateProblem]:
    """Private attributes, methods off the allow-list, and fields that ``user``, ``course``,
    ``enrolment``, ``site`` and ``user.profile`` do not have."""
    shadowed = _assigned_names(tree)
    called = {id(call.node) for call in tree.find_all(nodes.Call)}
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        found = _attribute_of(node)
        if found is None:
            continue
        base, attr = found
        if attr.startswith("_"):
            yield TemplateProblem(node.lineno, f"{attr!r} is private")
        elif id(node) in called and isinstance(node, nodes.Getattr):
            if attr not in _METHODS:
                yield TemplateProblem(node.lineno, f"method {attr!r} is not available")
        elif _is_user_profile(base, shadowed):
            if profile_fields is not None and attr not in profile_fields:
                yield TemplateProblem(node.lineno, f"no custom profile field {attr!r}")
        elif isinstance(base, nodes.Name) and base.name in _SCHEMA and base.name not in shadowed:
            message = _field_problem(base.name, attr, profile_fields)
            if message:
                yield TemplateProblem(node.lineno, message)


def welcome_custom_fields(source: str) -> set[str]:
    """The custom profile fields a welcome template reads (``user.profile_field_x``,
    ``user.profile.x``, ``user.profile["x"]``), by shortname; none for a template that does not
    parse (the form that saved it refused it)."""
    try:
        tree = _HTML_ENV.parse(_from_moodle(source))
    except TemplateSyntaxError:
        return set()
    shadowed = _assigned_names(tree)
    found = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        attribute = _attribute_of(node)
        if attribute is None:
            continue
        base, attr = attribute
        if _is_user_profile(base, shadowed):
            found.add(attr)
        elif (
            isinstance(base, nodes.Name)
            and base.name == "user"
            and "user" not in shadowed
            and attr.startswith(PROFILE_PREFIX)
        ):
            found.add(attr.removeprefix(PROFILE_PREFIX))
    return found


#: The names every limit's message starts with (``"time limit: ..."``).
LIMITS = ("time limit", "work limit", "step limit", "output limit", "size limit", "depth limit")


def is_limit(problem: TemplateProblem) -> bool:
    """Whether ``problem`` is a template going over one of the render limits."""
    return problem.message.startswith(LIMITS)


def validate_welcome(
    source: str,
    extra_vars: Collection[str] = frozenset(),
    profile_fields: Collection[str] | None = None,
    *,
    seconds: float = TIME_LIMIT,
) -> list[TemplateProblem]:
    """Everything wrong with a welcome template, for the form or command that saves it.

    ``extra_vars`` names the variables the calling method adds (e.g. ``completed_course``);
    ``profile_fields`` (from :func:`custom_field_names`) lets ``user.profile.x`` be checked too.
    A template that passes the checks is then rendered once for :data:`SAMPLE_USER` within
    ``seconds``: one that goes over a limit there (or a sandbox rule) is refused with the limit
    named. An empty list means it will render."""
    if len(source) > MAX_SOURCE:
        return [TemplateProblem(1, f"longer than {MAX_SOURCE} characters")]
    converted = _from_moodle(source)
    token = _BUDGET.set(_Budget(seconds))
    try:
        tree = _HTML_ENV.parse(converted)
        problems = _tree_problems(tree, set(WELCOME_VARIABLES) | set(extra_vars), profile_fields)
        problems.extend(_constant_sizes(tree))
        if not problems:
            _HTML_ENV.compile(converted)  # what only code generation finds
    except TemplateSyntaxError as exc:
        return [TemplateProblem(exc.lineno or 1, exc.message or str(exc))]
    finally:
        _BUDGET.reset(token)
    if problems:
        return problems
    try:
        render_message(source, sample_context(profile_fields), subject="", seconds=seconds)
    except TemplateError as exc:
        return [p for p in exc.problems if is_limit(p) or "not available" in p.message]
    return []


def _constant_sizes(tree: nodes.Template) -> Iterator[TemplateProblem]:
    """Sizes written in the source that are over a limit whatever the data: ``range(100000)``,
    ``[x] * 100000``, ``'x' * 10**9``; found even in a branch the sample user skips."""
    for call in tree.find_all(nodes.Call):
        if isinstance(call.node, nodes.Name) and call.node.name == "range" and not call.kwargs:
            try:
                numbers = [int(arg.as_const()) for arg in call.args]
                length = len(range(*numbers))
            except (nodes.Impossible, TypeError, ValueError):
                continue
            if length > MAX_ITEMS:
                yield TemplateProblem(
                    call.lineno, f"size limit: a range longer than {MAX_ITEMS} items"
                )
    for product in tree.find_all(nodes.Mul):
        for seq, count in ((product.left, product.right), (product.right, product.left)):
            try:
                times = count.as_const()
            except nodes.Impossible:
                continue
            if not isinstance(times, int) or isinstance(times, bool):
                continue
            if isinstance(seq, nodes.List | nodes.Tuple) and len(seq.items) * times > MAX_ITEMS:
                yield TemplateProblem(
                    product.lineno, f"size limit: a value longer than {MAX_ITEMS} items"
                )
            if isinstance(seq, nodes.Const) and isinstance(seq.value, str):
                if len(seq.value) * times > MAX_OUTPUT:
                    yield TemplateProblem(
                        product.lineno, f"size limit: a value longer than {MAX_OUTPUT} characters"
                    )


# --- welcome messages: rendering -------------------------------------------------------------


#: The default subject (a message id: the reader's language is looked up in the catalogs).
WELCOME_SUBJECT = "Welcome to %(course)s"


def welcome_subject(course_fullname: str, gettext: Gettext = str) -> str:
    """Moodle's subject in the language of ``gettext``, with the course name read as a name
    (``R&amp;D`` -> ``R&D``)."""
    return gettext(WELCOME_SUBJECT) % {"course": format_string(course_fullname)}


def render_message(
    source: str, variables: Mapping[str, Any], *, subject: str, seconds: float = TIME_LIMIT
) -> RenderedMail:
    """Render a message in both forms, within ``seconds`` of wall-clock time. Source with HTML
    tags is rendered autoescaped to HTML and the text part derived from it; otherwise the source
    is plain text, rendered unescaped, and the HTML part is the escaped text with paragraphs and
    links."""
    source = _from_moodle(source)
    if _HTML_TAG.search(source):
        body = _render(_HTML_ENV, source, variables, seconds)
        return RenderedMail(subject=subject, text=html_to_text(body), html=body)
    text = _render(_TEXT_ENV, source, variables, seconds)
    return RenderedMail(subject=subject, text=text, html=text_to_html(text))


def welcome_source(source: str, gettext: Gettext = str) -> str:
    """What a welcome setting renders: blank means :data:`DEFAULT_WELCOME`, in the language of
    ``gettext`` (the recipient's: :func:`enrolkit.catalogs.reader_language`)."""
    return source if source.strip() else gettext(DEFAULT_WELCOME)


def _recipients_gettext(site: Site, user: User | None) -> Gettext:
    from .catalogs import gettext_for, reader_language

    return gettext_for(site, reader_language(site, user))


def render_welcome(
    site: Site,
    source: str,
    *,
    user: User,
    course: CourseRow,
    role: Role | None = None,
    timestart: int = 0,
    timeend: int = 0,
    extra: Mapping[str, Any] | None = None,
) -> RenderedMail:
    """The welcome mail for ``user`` in ``course``, within the site's :func:`time_limit`.
    Blank ``source`` means :data:`DEFAULT_WELCOME`. Unknown variables render empty (validation
    reports them at save time); sandbox violations and exceeded limits raise
    :class:`TemplateError`."""
    variables = context_for(
        site, user, course, role=role, timestart=timestart, timeend=timeend, extra=extra
    )
    gettext = _recipients_gettext(site, user)
    return render_message(
        welcome_source(source, gettext),
        variables,
        subject=welcome_subject(course.fullname, gettext),
        seconds=time_limit(site),
    )


def preview_welcome(
    site: Site,
    source: str,
    *,
    user: User | None,
    course: CourseRow,
    role: Role | None = None,
    timestart: int = 0,
    timeend: int = 0,
    extra: Mapping[str, Any] | None = None,
    shown: Collection[str] | None = None,
) -> RenderedMail:
    """Validate against this site (its custom fields), then render for ``user`` (None: the
    sample user; ``shown``: the fields of a real user the viewer may see): what a save form
    shows."""
    seconds = time_limit(site)
    problems = validate_welcome(source, set(extra or ()), custom_field_names(site), seconds=seconds)
    if problems:
        raise TemplateError(problems)
    variables = context_for(
        site,
        user,
        course,
        role=role,
        timestart=timestart,
        timeend=timeend,
        extra=extra,
        shown=shown,
    )
    gettext = _recipients_gettext(site, user)
    return render_message(
        welcome_source(source, gettext),
        variables,
        subject=welcome_subject(course.fullname, gettext),
        seconds=seconds,
    )


_BLOCK_TAGS = frozenset(
    "address blockquote div dl dt dd form h1 h2 h3 h4 h5 h6 hr ol p pre table tr ul".split()
)


class _TextOfHtml(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0
        self.links: list[tuple[str, int]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in ("script", "style", "head", "title"):
            self.hidden += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")
        if tag == "a":
            self.links.append((dict(attrs).get("href") or "", len(self.parts)))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head", "title"):
            self.hidden = max(self.hidden - 1, 0)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            label = "".join(self.parts[start:]).strip()
            if href and href != label:
                self.parts.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(markup: str) -> str:
    """The plain-text part of an HTML mail: tags dropped, blocks on their own lines, entities
    decoded, a link's address after its label."""
    parser = _TextOfHtml()
    parser.feed(markup)
    parser.close()
    lines = [line.strip() for line in "".join(parser.parts).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


_URL = re.compile(r"https?://[^\s<>\"']+")


def _linked(text: str) -> Markup:
    out = Markup()
    pos = 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(".,;:!?)")
        out += escape(text[pos : match.start()])
        out += Markup('<a href="{0}">{0}</a>').format(url)
        pos = match.start() + len(url)
    return out + escape(text[pos:])


def text_to_html(text: str) -> str:
    """The HTML part of a plain-text mail: escaped, blank lines make paragraphs, line breaks
    stay, http(s) addresses become links."""
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", text.strip()) if p.strip()]
    blocks = ["<br>\n".join(_linked(line) for line in p.split("\n")) for p in paragraphs]
    return "".join(f"<p>{block}</p>\n" for block in blocks)


# --- group names -----------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_]+)\}")
#: What "trimmed" removes, in Python and SQL alike.
WHITESPACE = " \t\r\n"


def group_placeholders(template: str) -> list[str]:
    """The placeholder names in a group-name template, in order, without duplicates."""
    return list(dict.fromkeys(_PLACEHOLDER.findall(template)))


def _reads(name: str, custom_fields: Collection[str]) -> tuple[str, str] | None:
    """What a placeholder reads: ("custom", shortname), ("standard", column) or None."""
    if name.startswith(PROFILE_PREFIX) and len(name) > len(PROFILE_PREFIX):
        field = name.removeprefix(PROFILE_PREFIX)
        if field in custom_fields:
            return "custom", field
        return ("standard", field) if field in STANDARD_FIELDS else None
    return ("standard", name) if name in STANDARD_FIELDS else None


def validate_group_template(template: str, custom_fields: Collection[str]) -> list[TemplateProblem]:
    """Everything wrong with a group-name template, given the site's custom field shortnames
    (:func:`custom_field_names`)."""
    problems = []
    if "\n" in template or "\r" in template:
        problems.append(TemplateProblem(1, "a group name template is one line"))
    for name in group_placeholders(template):
        if _reads(name, custom_fields) is None:
            problems.append(
                TemplateProblem(
                    1,
                    f"unknown placeholder {{{name}}}; use {{profile_field_<shortname>}} or a "
                    f"user field: {', '.join('{' + f + '}' for f in STANDARD_FIELDS)}",
                )
            )
    return problems


def render_group_name(values: Mapping[str, str], template: str) -> str | None:
    """The group name for one user, from ``values`` keyed by placeholder name (as
    :func:`group_values` loads them). Each value is trimmed; if any is empty (or missing) the
    user gets no group: None. The name is trimmed and cut to ``Group.NAME_LENGTH``."""
    pieces = []
    pos = 0
    for match in _PLACEHOLDER.finditer(template):
        value = (values.get(match.group(1)) or "").strip(WHITESPACE)
        if not value:
            return None
        pieces += [template[pos : match.start()], value]
        pos = match.end()
    pieces.append(template[pos:])
    name = "".join(pieces).strip(WHITESPACE)[: Group.NAME_LENGTH].rstrip(WHITESPACE)
    return name or None


def group_values(
    site: Site, user: User | None, template: str, shown: Collection[str] | None = None
) -> dict[str, str]:
    """The values the template's placeholders read for one user ('' when unset). ``user`` None
    means :data:`SAMPLE_USER`; with ``shown``, a placeholder that reads a custom field or a
    field outside ``shown`` gives its own name in brackets, as :func:`masked_user_vars` does."""
    names = group_placeholders(template)
    if user is None:
        custom_fields = custom_field_names(site)
        values = {}
        for name in names:
            reads = _reads(name, custom_fields)
            if reads is not None:
                kind, field = reads
                values[name] = f"sample {field}" if kind == "custom" else SAMPLE_USER[field]
        return values
    wanted = {n.removeprefix(PROFILE_PREFIX) for n in names if n.startswith(PROFILE_PREFIX)}
    custom = {
        shortname: value or ""
        for shortname, value in site.session.execute(
            select(ProfileField.shortname, ProfileData.value)
            .outerjoin(
                ProfileData,
                (ProfileData.field_id == ProfileField.id) & (ProfileData.user_id == user.id),
            )
            .where(ProfileField.shortname.in_(wanted))
        )
    }
    values = {}
    for name in names:
        reads = _reads(name, custom)
        if reads is not None:
            kind, field = reads
            if shown is not None and (kind == "custom" or field not in shown):
                values[name] = f"[{name}]"
            else:
                values[name] = custom[field] if kind == "custom" else getattr(user, field) or ""
    return values


def group_name_for(
    site: Site, user: User | None, template: str, shown: Collection[str] | None = None
) -> str | None:
    """The group ``user`` belongs in under ``template``, or None for no group (``user`` and
    ``shown`` as in :func:`group_values`)."""
    return render_group_name(group_values(site, user, template, shown), template)


def _custom_value_sql(shortname: str) -> ColumnElement:
    users = User.__table__
    data = ProfileData.__table__.alias("pd")
    fields = ProfileField.__table__.alias("pf")
    return (
        select(data.c.value)
        .join(fields, fields.c.id == data.c.field_id)
        .where(data.c.user_id == users.c.id, fields.c.shortname == shortname)
        .correlate(users)
        .scalar_subquery()
    )


def _placeholder_sql(name: str) -> ColumnElement:
    """One placeholder's value for the current ``users`` row, NULL when empty."""
    users = User.__table__
    if name.startswith(PROFILE_PREFIX) and len(name) > len(PROFILE_PREFIX):
        field = name.removeprefix(PROFILE_PREFIX)
        custom = func.coalesce(_custom_value_sql(field), "")
        if field in STANDARD_FIELDS:
            is_custom = exists(
                select(ProfileField.id).where(ProfileField.shortname == field)
            ).correlate_except(ProfileField)
            value = case((is_custom, custom), else_=users.c[field])
        else:
            value = custom
    elif name in STANDARD_FIELDS:
        value = users.c[name]
    else:
        value = literal(None, String)
    return func.nullif(func.trim(func.coalesce(value, ""), literal(WHITESPACE)), "")


def group_name_sql(template: str) -> ColumnElement[str]:
    """:func:`render_group_name` as one SQL expression over the ``users`` table (custom fields
    through correlated subqueries), so a sync names the groups of 100k users in one query:
    ``select(users.c.id, group_name_sql(t).label("name"))``. NULL means no group."""
    pieces: list[ColumnElement] = []
    pos = 0
    for match in _PLACEHOLDER.finditer(template):
        pieces += [literal(template[pos : match.start()], String), _placeholder_sql(match[1])]
        pos = match.end()
    pieces.append(literal(template[pos:], String))
    raw = pieces[0]
    for piece in pieces[1:]:
        raw = raw.concat(piece)
    trimmed = func.trim(raw, literal(WHITESPACE))
    cut = func.rtrim(func.substr(trimmed, 1, Group.NAME_LENGTH), literal(WHITESPACE))
    return func.nullif(cut, "", type_=String)


__all__ = [
    "DEFAULT_WELCOME",
    "LIMITS",
    "MAX_ITEMS",
    "MAX_OUTPUT",
    "MAX_SOURCE",
    "MAX_STEPS",
    "MAX_WORK",
    "RenderedMail",
    "SAMPLE_USER",
    "SAMPLE_USERNAME",
    "TIME_LIMIT",
    "TemplateError",
    "TemplateProblem",
    "context_for",
    "course_vars",
    "custom_field_names",
    "freeze_variables",
    "group_name_for",
    "group_name_sql",
    "group_placeholders",
    "group_values",
    "html_to_text",
    "is_limit",
    "masked_user_vars",
    "preview_welcome",
    "render_group_name",
    "render_message",
    "render_welcome",
    "sample_context",
    "sample_user_vars",
    "site_vars",
    "text_to_html",
    "thaw_variables",
    "time_limit",
    "user_vars",
    "validate_group_template",
    "validate_welcome",
    "welcome_source",
    "welcome_subject",
]
