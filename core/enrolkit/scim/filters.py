"""SCIM filters (already parsed and validated by scim2-models) compiled to SQLAlchemy clauses.

Filtering runs in the database, so ``totalResults`` and paging stay right over 100,000 users.
Each resource declares which SCIM attribute reads which column; string comparisons are
case-insensitive, as RFC 7643 makes every attribute enrolkit maps (``caseExact`` false). An
attribute with no column here matches nothing (RFC 7644 §3.4.2.1 for undeclared attributes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scim2_models import InvalidFilterException
from scim2_models.path.expressions import (
    AttrPath,
    Comparison,
    LogicalExpr,
    Not,
    Present,
    ValuePath,
)
from sqlalchemy import String, and_, cast, false, func, not_, or_, true
from sqlalchemy.sql.elements import ColumnElement

#: attribute name (lowercase, ``attr`` or ``attr.sub``) -> column expression, or a callable
#: (op, value) -> clause for attributes that are not one column.
Columns = dict[str, Any]


def _name(path: AttrPath, prefix: str = "") -> str:
    name = path.attr.lower() + (f".{path.sub_attr.lower()}" if path.sub_attr else "")
    if path.uri:
        name = f"{path.uri.lower()}:{name}"
    return f"{prefix}.{name}" if prefix else name


def compare(column, op: str, value: Any) -> ColumnElement:
    if isinstance(value, bool) or column.type.python_type is bool:
        if op == "eq":
            return column.is_(bool(value))
        if op == "ne":
            return column.is_not(bool(value))
        raise InvalidFilterException(detail=f"{op} does not apply to a boolean")
    if value is None:
        return column.is_(None) if op == "eq" else column.is_not(None)
    text = str(value).lower()
    lowered = (
        func.lower(cast(column, String))
        if column.type.python_type is not str
        else func.lower(column)
    )
    match op:
        case "eq":
            return lowered == text
        case "ne":
            return lowered != text
        case "co":
            return lowered.contains(text, autoescape=True)
        case "sw":
            return lowered.startswith(text, autoescape=True)
        case "ew":
            return lowered.endswith(text, autoescape=True)
        case "gt":
            return lowered > text
        case "ge":
            return lowered >= text
        case "lt":
            return lowered < text
        case "le":
            return lowered <= text
    raise InvalidFilterException(detail=f"unknown operator {op}")


def compile_filter(node: Any, columns: Columns, prefix: str = "") -> ColumnElement:
    """The WHERE clause of a filter node, for the resource whose ``columns`` are given."""
    if isinstance(node, LogicalExpr):
        terms = [compile_filter(term, columns, prefix) for term in node.terms]
        return and_(*terms) if node.op.value == "and" else or_(*terms)
    if isinstance(node, Not):
        return not_(compile_filter(node.expr, columns, prefix))
    if isinstance(node, ValuePath):
        return compile_filter(node.val_filter, columns, _name(node.attr_path, prefix))
    if isinstance(node, Comparison | Present):
        name = _name(node.attr_path, prefix)
        target = columns.get(name)
        if target is None and "." not in name:  # "emails eq x" means emails.value
            target = columns.get(f"{name}.value")
        if target is None:
            return false()
        if callable(target) and not hasattr(target, "type"):
            op = "pr" if isinstance(node, Present) else node.op.value
            return target(op, None if isinstance(node, Present) else node.value)
        if isinstance(node, Present):
            if target.type.python_type is str:
                return and_(target.is_not(None), target != "")
            return target.is_not(None)
        return compare(target, node.op.value, node.value)
    raise InvalidFilterException(detail=f"cannot filter on {node}")


def constant(value: Any) -> Callable[[str, Any], ColumnElement]:
    """An attribute every row has with the same value (``emails.type`` is always ``work``)."""

    def clause(op: str, compared: Any) -> ColumnElement:
        if op == "pr":
            return true()
        if op == "eq":
            return true() if str(compared).lower() == str(value).lower() else false()
        if op == "ne":
            return false() if str(compared).lower() == str(value).lower() else true()
        return false()

    return clause
