"""Searchable pickers: small JSON endpoints that list cohorts, users, courses, categories and
roles matching what a person types, for ``static/picker.js`` to offer as suggestions.

They are progressive enhancement: every picker is a plain text input that takes the identifier
(a username, a shortname ...) without the script. Only people who manage enrolments somewhere (a
site admin, or a teacher of some course) may search; each answer is one page of at most
``PAGE`` items with ``more`` telling whether another page follows.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, abort, jsonify, request
from sqlalchemy import Select, or_, select

from .. import lookup
from ..models import Category, Cohort, Course, Role, User
from .guards import site, staff_required

bp = Blueprint("pick", __name__, url_prefix="/web/pick")

#: Items in one answer; the script asks for the next page when ``more`` is true.
PAGE = 20


def _like(query: str) -> str:
    """A LIKE pattern for ``query``, its own wildcards taken literally."""
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _users(query: str) -> tuple[Select, Callable]:
    like = _like(query)
    stmt = select(User).where(User.deleted.is_(False)).order_by(User.lastname, User.firstname)
    if query:
        stmt = stmt.where(
            or_(
                User.username.ilike(like, escape="\\"),
                User.firstname.ilike(like, escape="\\"),
                User.lastname.ilike(like, escape="\\"),
                (User.firstname + " " + User.lastname).ilike(like, escape="\\"),
            )
        )
    return stmt, lambda u: (u.username, f"{u.firstname} {u.lastname} ({u.username})".strip())


def _cohorts(query: str) -> tuple[Select, Callable]:
    like = _like(query)
    stmt = select(Cohort).order_by(Cohort.name)
    if query:
        stmt = stmt.where(
            or_(Cohort.idnumber.ilike(like, escape="\\"), Cohort.name.ilike(like, escape="\\"))
        )
    return stmt, lambda c: (c.idnumber, f"{c.name} ({c.idnumber})")


def _courses(query: str) -> tuple[Select, Callable]:
    like = _like(query)
    stmt = select(Course).order_by(Course.shortname)
    if query:
        stmt = stmt.where(
            or_(Course.shortname.ilike(like, escape="\\"), Course.fullname.ilike(like, escape="\\"))
        )
    return stmt, lambda c: (c.shortname, f"{c.fullname} ({c.shortname})")


def _categories(query: str) -> tuple[Select, Callable]:
    stmt = select(Category).order_by(Category.path, Category.name)
    if query:
        stmt = stmt.where(Category.name.ilike(_like(query), escape="\\"))
    session = site().session

    def item(category: Category) -> tuple[str, str]:
        path = lookup.category_path(session, category.id)
        return path, path

    return stmt, item


def _roles(query: str) -> tuple[Select, Callable]:
    like = _like(query)
    stmt = select(Role).order_by(Role.sortorder, Role.shortname)
    if query:
        stmt = stmt.where(
            or_(Role.shortname.ilike(like, escape="\\"), Role.name.ilike(like, escape="\\"))
        )
    return stmt, lambda r: (r.shortname, f"{r.name or r.shortname} ({r.shortname})")


#: What each picker searches: a query and how one row is shown (value typed, label read).
KINDS: dict[str, Callable[[str], tuple[Select, Callable]]] = {
    "users": _users,
    "cohorts": _cohorts,
    "courses": _courses,
    "categories": _categories,
    "roles": _roles,
}


@bp.get("/<any(users, cohorts, courses, categories, roles):kind>")
@staff_required
def items(kind: str):
    """``{"results": [{"value", "label"}], "page", "more"}`` for ``?q=`` (and ``&page=``)."""
    query = request.args.get("q", "").strip()[:100]
    try:
        page = max(1, int(request.args.get("page", "1")))
    except ValueError:
        abort(400)
    stmt, show = KINDS[kind](query)
    rows = site().session.scalars(stmt.offset((page - 1) * PAGE).limit(PAGE + 1)).all()
    results = [dict(zip(("value", "label"), show(row), strict=True)) for row in rows[:PAGE]]
    return jsonify(results=results, page=page, more=len(rows) > PAGE)
