"""The condition tree: parsing Moodle availability JSON, and evaluating it three ways.

A rule is a group ``{"op": OP, "c": [child, ...]}`` whose children are conditions (objects with a
``type``) or nested groups. See :mod:`enrolkit.rules` for the semantics.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, not_, or_, true

from .. import jsontext
from .condition import ConditionType, JsonPath, RuleError, SqlContext, UserContext
from .explain import GROUP, GROUP_LABELS, Explanation

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement

    from ..models import User
    from ..site import Site

OPERATORS = ("&", "|", "!&", "!|")
#: Keys a group may carry. ``show``/``showc`` only steer Moodle's display: read and ignored.
GROUP_KEYS = frozenset({"op", "c", "show", "showc"})
#: Deeper nesting than this is refused: no real rule needs it, and it bounds recursion.
MAX_DEPTH = 20


@dataclass(frozen=True)
class Condition:
    kind: ConditionType
    params: Any
    #: The node as given (validated), written back by :meth:`Rule.to_json`.
    node: dict
    path: JsonPath


@dataclass(frozen=True)
class Group:
    op: str
    children: tuple[Condition | Group, ...]
    path: JsonPath

    @property
    def negated(self) -> bool:
        return self.op.startswith("!")

    @property
    def any(self) -> bool:
        return self.op.endswith("|")


def parse(data: str | bytes | Mapping | None, conditions: Mapping[str, ConditionType]) -> Rule:
    """A :class:`Rule` from availability JSON (text or already decoded).

    ``conditions`` is the site's registry of condition types (``site.plugins.conditions``).
    None, blank text and ``{}`` are the empty rule, which everyone matches.
    Raises :class:`RuleError` naming the JSON path of the first bad node.
    """
    if isinstance(data, str | bytes):
        if not data.strip():
            data = None
        else:
            try:
                data = jsontext.loads(data)
            except jsontext.TooDeep as exc:
                raise RuleError("", str(exc)) from None
            except ValueError as exc:
                raise RuleError("", f"not valid JSON: {exc}") from None
    if data is None or (isinstance(data, Mapping) and not data):
        return Rule(Group("&", (), JsonPath()))
    if not isinstance(data, Mapping):
        raise RuleError("", f"must be a JSON object with 'op' and 'c', not {_kind(data)}")
    if "type" in data:
        raise RuleError("", "must be a group with 'op' and 'c'; put the condition inside 'c'")
    return Rule(_parse_group(data, JsonPath(), conditions, depth=0))


def _parse_group(
    node: Mapping, path: JsonPath, conditions: Mapping[str, ConditionType], depth: int
) -> Group:
    if depth > MAX_DEPTH:
        raise path.error(f"groups are nested more than {MAX_DEPTH} deep")
    for key in node:
        if key not in GROUP_KEYS:
            raise path.key(str(key)).error(
                "unknown key; a group has 'op' and 'c' (a condition needs 'type')"
            )
    if "op" not in node:
        raise path.key("op").error(f"missing; give one of {', '.join(OPERATORS)}")
    op = node["op"]
    if op not in OPERATORS:
        raise path.key("op").error(f"unknown operator {op!r} (operators: {', '.join(OPERATORS)})")
    items = node.get("c")
    if not isinstance(items, list):
        raise path.key("c").error(f"must be a list of conditions, not {_kind(items)}")
    if not items and path:
        # Moodle counts an empty group as passed even under a negation, which no one can mean:
        # refuse it rather than guess.
        raise path.key("c").error("an empty group; add a condition to it or remove it")
    children = []
    for index, item in enumerate(items):
        at = path.key("c").item(index)
        if not isinstance(item, Mapping):
            raise at.error(f"must be an object (a condition or a group), not {_kind(item)}")
        if "type" in item:
            children.append(_parse_condition(item, at, conditions))
        else:
            children.append(_parse_group(item, at, conditions, depth + 1))
    return Group(op, tuple(children), path)


def _parse_condition(
    node: Mapping, path: JsonPath, conditions: Mapping[str, ConditionType]
) -> Condition:
    name = node["type"]
    if not isinstance(name, str):
        raise path.key("type").error(f"must be a string, not {_kind(name)}")
    kind = conditions.get(name)
    if kind is None:
        known = ", ".join(sorted(conditions)) or "none"
        raise path.key("type").error(f"unknown condition type {name!r} (types: {known})")
    node = copy.deepcopy(dict(node))
    return Condition(kind, kind.parse(node, path), node, path)


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


class Rule:
    """A parsed condition tree. Immutable; cheap to keep per enrolment instance."""

    def __init__(self, root: Group) -> None:
        self.root = root

    @property
    def is_empty(self) -> bool:
        """True for the rule without conditions, which everyone matches."""
        return not self.root.children

    # --- evaluation ---------------------------------------------------------------------

    def matches(self, site: Site, user: User, context: UserContext | None = None) -> bool:
        """Whether ``user`` matches now, evaluated in Python (a few queries at most).

        Checking one user against several rules (a login), pass them one ``context``
        (``UserContext(site, user, site.now())``): the rows its cache loads (badges, cohorts,
        custom fields, ...) are then read once for all the rules."""
        return _evaluate(self.root, context or UserContext(site, user, site.now()))

    def sql(self, site: Site) -> ColumnElement[bool]:
        """The rule as one SQL condition over ``users``: ``select(User.id).where(rule.sql(site))``.

        Names (badges, courses, cohorts, custom fields) are resolved and the time is read now, so
        compile the rule again for a later run.
        """
        return _compile(self.root, SqlContext(site, site.now()))

    def explain(self, site: Site, user: User) -> Explanation:
        """Each node's result and reason for ``user`` (``str()`` for text, ``.to_json()``)."""
        if self.is_empty:
            return Explanation(True, GROUP, "no conditions: everyone matches", "", self.root.op)
        return _explain(self.root, UserContext(site, user, site.now()))

    # --- inspection ---------------------------------------------------------------------

    def errors(self, site: Site) -> list[str]:
        """Names the rule uses that must exist when it is saved, and do not, as ``"c[0]: ..."``
        lines: a save refuses the rule with these."""
        return [
            f"{condition.path}: {error}"
            for condition in _conditions(self.root)
            for error in condition.kind.errors(condition.params, site)
        ]

    def problems(self, site: Site) -> list[str]:
        """Names the rule uses that the site lacks, as ``"c[0]: no badge named 'X'"`` lines.

        Parsing accepts them (a badge may be created later); such conditions are false for
        everyone until then, so a form should show these as warnings when a rule is saved.
        """
        return [
            f"{condition.path}: {problem}"
            for condition in _conditions(self.root)
            for problem in condition.kind.problems(condition.params, site)
        ]

    def fields(self) -> set[str]:
        """The profile fields the rule reads anywhere in it (standard names and
        ``profile_field_<shortname>``), e.g. to tell an admin which rules use a field."""
        return {name for c in _conditions(self.root) for name in c.kind.fields(c.params)}

    def prefilter(self) -> tuple[tuple[str, str], ...]:
        """``(field, value)`` pairs every matching user has, e.g. ``("department", "IT")`` or
        ``("profile_field_campus", "North")``.

        Taken from conditions that the rule requires outright: children of the top-level "all
        of" group and of "all of" groups nested in it, never from under an "any of" or a
        negation. A caller can test a user against these (no query) before evaluating the whole
        rule, or use them to index which rules could match a department. Empty when the rule has
        no such equality.
        """
        return tuple(_required(self.root))

    def to_json(self) -> dict:
        """The rule as Moodle availability JSON (with the ``showc``/``show`` Moodle wants at the
        root, all shown), so it can be pasted back into Moodle."""
        data = _group_json(self.root)
        if self.root.op in ("&", "!|"):
            data["showc"] = [True] * len(self.root.children)
        else:
            data["show"] = True
        return data

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rule) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_json(), sort_keys=True))

    def __repr__(self) -> str:
        return f"Rule({json.dumps(self.to_json())})"


def _evaluate(node: Condition | Group, ctx: UserContext) -> bool:
    if isinstance(node, Condition):
        return bool(node.kind.evaluate(node.params, ctx))
    if not node.children:
        return True
    combine = any if node.any else all
    result = combine(_evaluate(child, ctx) for child in node.children)
    return not result if node.negated else result


def _compile(node: Condition | Group, ctx: SqlContext) -> ColumnElement[bool]:
    if isinstance(node, Condition):
        return node.kind.sql(node.params, ctx)
    if not node.children:
        return true()
    combine = or_ if node.any else and_
    expression = combine(*(_compile(child, ctx) for child in node.children))
    return not_(expression) if node.negated else expression


def _explain(node: Condition | Group, ctx: UserContext) -> Explanation:
    if isinstance(node, Condition):
        passed = bool(node.kind.evaluate(node.params, ctx))
        reason = node.kind.explain(node.params, ctx, passed)
        return Explanation(passed, node.kind.type, reason, node.path)
    children = tuple(_explain(child, ctx) for child in node.children)
    result = (any if node.any else all)(child.passed for child in children)
    passed = not result if node.negated else result
    return Explanation(passed, GROUP, GROUP_LABELS[node.op], node.path, node.op, children)


def _conditions(node: Condition | Group):
    if isinstance(node, Condition):
        yield node
        return
    for child in node.children:
        yield from _conditions(child)


def _required(group: Group):
    if group.op != "&":
        return
    for child in group.children:
        if isinstance(child, Group):
            yield from _required(child)
            continue
        pair = child.kind.prefilter(child.params)
        if pair is not None:
            yield pair


def _group_json(group: Group) -> dict:
    return {
        "op": group.op,
        "c": [
            _group_json(child) if isinstance(child, Group) else copy.deepcopy(child.node)
            for child in group.children
        ],
    }
