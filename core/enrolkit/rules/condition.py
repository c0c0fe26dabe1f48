"""What a condition type is: the base class plugins subclass, and what it is handed.

A condition type answers four questions about one node of a rule, such as
``{"type": "badge", "id": "First aid"}``: is the node well formed (at save time), does one user
pass it (in Python), which users pass it (as SQL, so a whole site is one query), and why did this
user pass or fail (in words). Python and SQL must agree for every user: the property test in
``tests/test_rules.py`` holds the built-in types to that, and third-party types should hold
themselves to it too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from ..errors import EnrolkitError

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement

    from ..models import User
    from ..site import Site

T = TypeVar("T")


class JsonPath(str):
    """Where a node sits in the rule's JSON, as people read it: ``c[1].c[0].op``; '' is the root."""

    def key(self, name: str) -> JsonPath:
        return JsonPath(f"{self}.{name}" if self else name)

    def item(self, index: int) -> JsonPath:
        return JsonPath(f"{self}[{index}]")

    def error(self, problem: str) -> RuleError:
        return RuleError(self, problem)


class RuleError(EnrolkitError):
    """A malformed rule. The message starts with the JSON path of the bad node or key."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path or 'rule'}: {problem}")


class UserContext:
    """One user being checked against a rule, with a per-check cache.

    Types that need rows beyond the ``users`` table (badges, cohorts, ...) load them through
    :meth:`memo`: the first condition that asks runs one query for all of that user's rows, later
    conditions of the same kind reuse them. So a rule costs a few queries per user however many
    conditions it has.
    """

    def __init__(self, site: Site, user: User, now: int) -> None:
        self.site = site
        self.user = user
        #: The check's time, read once so every date condition sees the same moment.
        self.now = now
        self._memo: dict[str, Any] = {}

    def memo(self, key: str, load: Callable[[], T]) -> T:
        """``load()``'s result, computed once per check. Use a key unique to your plugin."""
        if key not in self._memo:
            self._memo[key] = load()
        return self._memo[key]


class SqlContext:
    """What a type compiles its SQL against: the site (to resolve names to ids) and the time."""

    def __init__(self, site: Site, now: int) -> None:
        self.site = site
        self.now = now


class ConditionType:
    """A kind of rule condition, named by the ``type`` key of its JSON node.

    Subclass it, set :attr:`type`, implement :meth:`parse`, :meth:`evaluate`, :meth:`sql` and
    :meth:`explain`, and register an instance from the ``register_conditions`` hook. The same
    instance serves every rule on the site, so keep per-rule data in the object :meth:`parse`
    returns (the *params*), never on ``self``.
    """

    #: The JSON ``type`` this class handles. Unique on the site.
    type: ClassVar[str] = ""

    def parse(self, node: Mapping[str, Any], path: JsonPath) -> Any:
        """Validate ``node`` (the whole JSON object, ``type`` included) and return its params.

        Raise ``path.key("field").error("what is wrong")`` for a bad node: the rule is refused at
        save time with that message. Parse only the shape; names that may not exist yet (a badge,
        a course) are checked by :meth:`problems`.
        """
        raise NotImplementedError

    def evaluate(self, params: Any, ctx: UserContext) -> bool:
        """Whether ``ctx.user`` passes. Load extra rows through ``ctx.memo``."""
        raise NotImplementedError

    def sql(self, params: Any, ctx: SqlContext) -> ColumnElement[bool]:
        """A boolean SQL expression, correlated to the ``users`` table, true for passing users.

        It may never be NULL (wrap nullable values in ``coalesce``), or a negated condition would
        drop the user. It may run queries now (to turn a name into an id).
        """
        raise NotImplementedError

    def explain(self, params: Any, ctx: UserContext, passed: bool) -> str:
        """Why ``ctx.user`` passed or failed, as a short phrase: "department is 'Sales', expected
        'IT'". ``passed`` is what :meth:`evaluate` returned."""
        raise NotImplementedError

    def errors(self, params: Any, site: Site) -> list[str]:
        """What this node names that the site lacks and that must exist before the rule is saved
        (a custom profile field: Moodle offers only existing ones), each saying what exists.
        Default: nothing to check."""
        return []

    def problems(self, params: Any, site: Site) -> list[str]:
        """What this node names that the site lacks (an unknown badge ...), for a save-time
        warning. Such a condition is simply false for everyone. Default: nothing to check."""
        return []

    def fields(self, params: Any) -> tuple[str, ...]:
        """The profile fields this node reads: standard names or ``profile_field_<shortname>``,
        so a custom field that a rule reads is not renamed or deleted under it. Default: none."""
        return ()

    def prefilter(self, params: Any) -> tuple[str, str] | None:
        """``(field, value)`` when every passing user has exactly that value in that field (an
        equality the caller may test, or look up in an index, before running the whole rule).
        ``field`` is a standard field (a ``users`` column) or ``profile_field_<shortname>`` for a
        custom profile field, whose value is '' for a user without one."""
        return None
