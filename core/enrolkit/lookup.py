"""Find site objects by the names people use (username, shortname, idnumber, category path).

Each function raises :class:`NotFound` with a message that says what was looked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from .errors import NotFound
from .models import Category, Cohort, Course, EnrolInstance, Role, User


def user(session: Session, username: str) -> User:
    found = session.scalar(select(User).where(User.username == username, User.deleted.is_(False)))
    if found is None:
        raise NotFound(f"no user with username {username!r}")
    return found


class UnknownUser(NotFound):
    """A list of usernames names someone unknown; ``position`` is where in the list, so the API
    can point at the field (``usernames.3``)."""

    def __init__(self, username: str, position: int) -> None:
        super().__init__(f"no user with username {username!r}")
        self.position = position


#: Usernames per ``IN`` list (SQLite's limit on bound values is far above).
NAMES_PER_QUERY = 5000


def users(session: Session, usernames: Sequence[str]) -> list[User]:
    """The users ``usernames`` name, in that order, read in one query per 5,000 names rather
    than one per name; :class:`UnknownUser` for the first unknown one, before anything changes."""
    return _in_order(usernames, _by_name(session, list(dict.fromkeys(usernames))))


def cohort_and_users(
    session: Session, idnumber: str, usernames: Sequence[str]
) -> tuple[Cohort, list[User]]:
    """The cohort ``idnumber`` and the users a membership change names, in one query (an LMS
    sends one such change per enrolment): :class:`NotFound` for an unknown cohort first, then
    :class:`UnknownUser` as :func:`users`."""
    names = list(dict.fromkeys(usernames))
    first, rest = names[:NAMES_PER_QUERY], names[NAMES_PER_QUERY:]
    rows = session.execute(
        select(Cohort, User)
        .select_from(Cohort)
        .outerjoin(User, _named(first))
        .where(Cohort.idnumber == idnumber)
    ).all()
    if not rows:
        raise NotFound(f"no cohort with idnumber {idnumber!r}")
    found = {u.username: u for _, u in rows if u is not None}
    found.update(_by_name(session, rest))
    return rows[0][0], _in_order(usernames, found)


def _named(usernames: list[str]):
    return and_(User.username.in_(usernames), User.deleted.is_(False))


def _by_name(session: Session, names: list[str]) -> dict[str, User]:
    found: dict[str, User] = {}
    for start in range(0, len(names), NAMES_PER_QUERY):
        chunk = names[start : start + NAMES_PER_QUERY]
        found.update((u.username, u) for u in session.scalars(select(User).where(_named(chunk))))
    return found


def _in_order(usernames: Sequence[str], found: dict[str, User]) -> list[User]:
    for position, name in enumerate(usernames):
        if name not in found:
            raise UnknownUser(name, position)
    return [found[name] for name in usernames]


def course(session: Session, shortname: str) -> Course:
    found = session.scalar(select(Course).where(Course.shortname == shortname))
    if found is None:
        raise NotFound(f"no course with shortname {shortname!r}")
    return found


def cohort(session: Session, idnumber: str) -> Cohort:
    found = session.scalar(select(Cohort).where(Cohort.idnumber == idnumber))
    if found is None:
        raise NotFound(f"no cohort with idnumber {idnumber!r}")
    return found


def role(session: Session, shortname: str) -> Role:
    found = session.scalar(select(Role).where(Role.shortname == shortname.strip().lower()))
    if found is None:
        known = ", ".join(session.scalars(select(Role.shortname).order_by(Role.sortorder)))
        raise NotFound(f"no role {shortname!r} (roles: {known})")
    return found


def instance(session: Session, instance_id: int | str) -> EnrolInstance:
    try:
        key = int(instance_id)
    except (TypeError, ValueError):
        raise NotFound(f"{instance_id!r} is not an instance id (a number)") from None
    found = session.get(EnrolInstance, key)
    if found is None:
        raise NotFound(f"no enrolment instance {key}")
    return found


def split_path(path: str) -> list[str]:
    """``"Parent / Child"`` -> ``["Parent", "Child"]``."""
    parts = [part.strip() for part in path.split("/")]
    if not path.strip() or any(not part for part in parts):
        raise NotFound(f"{path!r} is not a category path; write it as 'Parent / Child'")
    return parts


def category(session: Session, path: str) -> Category:
    parent_id = None
    found = None
    for name in split_path(path):
        found = session.scalar(
            select(Category).where(Category.name == name, Category.parent_id.is_(parent_id))
            if parent_id is None
            else select(Category).where(Category.name == name, Category.parent_id == parent_id)
        )
        if found is None:
            raise NotFound(f"no category {path!r} (missing: {name!r})")
        parent_id = found.id
    return found


def category_path(session: Session, category_id: int | None) -> str:
    """The ``Parent / Child`` name of a category, '' for none."""
    if category_id is None:
        return ""
    return category_paths(session, [category_id]).get(category_id, "")


def category_paths(session: Session, category_ids: Iterable[int | None]) -> dict[int, str]:
    """The ``Parent / Child`` name of each of these categories, by id (unknown ids left out).

    One statement per level of the deepest category, however many categories: a page of 50
    courses reads their categories together, not one category (and each of its parents) per
    course (the session's identity map holds objects weakly, so ``session.get`` reads again)."""
    ids = [i for i in category_ids if i is not None]
    rows: dict[int, tuple[str, int | None]] = {}
    wanted = set(ids)
    while wanted:
        found = session.execute(
            select(Category.id, Category.name, Category.parent_id).where(
                Category.id.in_(sorted(wanted))
            )
        ).all()
        rows.update((row.id, (row.name, row.parent_id)) for row in found)
        wanted = {row.parent_id for row in found if row.parent_id is not None} - rows.keys()

    def path(category_id: int) -> str:
        names = []
        current: int | None = category_id
        while current in rows and len(names) <= len(rows):
            name, current = rows[current]
            names.append(name)
        return " / ".join(reversed(names))

    return {i: path(i) for i in ids if i in rows}
