"""The course catalogue: the category tree and courses, including CSV import."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from . import clock, csvfile, db, lengths, lookup
from .csvfile import RowError
from .errors import EnrolkitError
from .models import Category, Course
from .site import Site

COURSE_REQUIRED = ("shortname", "fullname")
COURSE_OPTIONAL = ("idnumber", "category", "startdate", "enddate", "enablecompletion", "visible")


def check_category_path(path: str, label: str = "column category") -> list[str]:
    """The names of ``Parent / Child``, each short enough for a category."""
    names = lookup.split_path(path)
    for name in names:
        lengths.check(Category.name, name, f"{label}: a category name of")
    return names


def ensure_category(site: Site, path: str) -> Category:
    """The category at ``Parent / Child``, creating the missing levels."""
    parent: Category | None = None
    for name in check_category_path(path, "category path"):
        stmt = select(Category).where(Category.name == name)
        stmt = (
            stmt.where(Category.parent_id == parent.id)
            if parent
            else stmt.where(Category.parent_id.is_(None))
        )
        found = site.session.scalar(stmt)
        if found is None:
            found = Category(
                name=name,
                parent_id=parent.id if parent else None,
                depth=(parent.depth + 1) if parent else 1,
            )
            site.session.add(found)
            site.session.flush()
            found.path = f"{parent.path if parent else '/'}{found.id}/"
            site.session.flush()
        parent = found
    return parent


def subtree_ids(site: Site, category: Category) -> list[int]:
    return list(
        site.session.scalars(select(Category.id).where(Category.path.startswith(category.path)))
    )


def _flag(value: str, field: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "yes", "true", "on", "y"):
        return True
    if lowered in ("0", "no", "false", "off", "n"):
        return False
    raise EnrolkitError(f"column {field}: {value!r} is not 0/1 or yes/no")


def import_courses(
    site: Site, path: str | Path, *, strict: bool = False
) -> tuple[int, int, list[RowError]]:
    """Create or update courses from CSV. Returns (created, updated, errors). Invalid rows are
    reported and skipped; with ``strict`` any error applies nothing."""
    db.check_intact(site.session.get_bind().engine)  # never write into a damaged file
    created = updated = 0
    errors: list[RowError] = []
    moved: list[int] = []
    name = Path(path).name
    with site.atomic():
        for item in csvfile.read(path, required=COURSE_REQUIRED, optional=COURSE_OPTIONAL):
            if isinstance(item, RowError):
                errors.append(item)
                continue
            line, row = item
            try:
                values = _course_values(row)
                if row.get("category"):
                    check_category_path(row["category"])
            except EnrolkitError as exc:
                errors.append(RowError(name, line, str(exc)))
                continue
            course, is_new, has_moved = _upsert(site, row, values)
            created += is_new
            updated += not is_new
            if has_moved:
                moved.append(course.id)
        if strict and errors:
            raise ImportRefused(errors)
        site.session.flush()
        if moved:
            site.plugins.courses_changed(site=site, course_ids=tuple(moved))
    return created, updated, errors


def _upsert(site: Site, row: dict[str, str], values: dict) -> tuple[Course, bool, bool]:
    """Create or update the course of a checked row: (course, created, moved to a category)."""
    category = ensure_category(site, row["category"]) if row.get("category") else None
    course = site.session.scalar(select(Course).where(Course.shortname == row["shortname"]))
    if course is None:
        course = Course(
            shortname=row["shortname"],
            timecreated=clock.now(),
            category_id=category.id if category else None,
            **values,
        )
        site.session.add(course)
        site.session.flush()
        return course, True, True
    for key, value in values.items():
        setattr(course, key, value)
    if category is not None and course.category_id != category.id:
        course.category_id = category.id
        return course, False, True
    return course, False, False


def save_course(site: Site, row: dict[str, str]) -> tuple[Course, bool]:
    """Create or update one course from a row as the CSV import takes it (the web's course
    form): the same checks, and the methods that follow a category hear of a move.
    Returns (course, created)."""
    values = _course_values({"fullname": "", **row})
    if row.get("category"):
        check_category_path(row["category"], "category")
    with site.atomic():
        course, created, moved = _upsert(site, row, values)
        site.session.flush()
        if moved:
            site.plugins.courses_changed(site=site, course_ids=(course.id,))
    return course, created


def _course_values(row: dict[str, str]) -> dict:
    if not row["shortname"]:
        raise EnrolkitError("column shortname: empty; every course needs a shortname")
    lengths.check_values(
        Course, {k: row[k] for k in ("shortname", "fullname", "idnumber") if k in row}
    )
    values: dict = {"fullname": row["fullname"] or row["shortname"]}
    if row.get("idnumber"):
        values["idnumber"] = row["idnumber"]
    for field in ("startdate", "enddate"):
        if row.get(field):
            values[field] = clock.parse_time(row[field], field=f"column {field}")
    for field in ("enablecompletion", "visible"):
        if row.get(field):
            values[field] = _flag(row[field], field)
    return values


def move_course(site: Site, course: Course, category: Category) -> None:
    move_courses(site, [course], category)


def move_courses(site: Site, courses: list[Course], category: Category) -> None:
    """Move courses to ``category``; the methods that follow a course's category hear of it."""
    if not courses:
        return
    with site.atomic():
        for course in courses:
            course.category_id = category.id
        site.session.flush()
        site.plugins.courses_changed(site=site, course_ids=tuple(c.id for c in courses))


def move_category(site: Site, category: Category, parent: Category | None) -> None:
    """Move a category (and everything below it) under ``parent``, or to the top. The courses
    below have moved too, so the methods that follow a course's category hear of it now."""
    if parent is not None and parent.path.startswith(category.path):
        raise EnrolkitError(
            f"cannot move {lookup.category_path(site.session, category.id)} into itself or "
            f"one of its subcategories"
        )
    clash = select(Category.id).where(Category.name == category.name, Category.id != category.id)
    clash = clash.where(Category.parent_id == parent.id if parent else Category.parent_id.is_(None))
    if site.session.scalar(clash) is not None:
        where = lookup.category_path(site.session, parent.id) if parent else "the top level"
        raise EnrolkitError(f"{where} already has a category named {category.name!r}")
    with site.atomic():
        old_path, old_depth = category.path, category.depth
        new_path = f"{parent.path if parent else '/'}{category.id}/"
        shift = (parent.depth + 1 if parent else 1) - old_depth
        for below in site.session.scalars(
            select(Category).where(Category.path.startswith(old_path, autoescape=True))
        ):
            below.path = new_path + below.path[len(old_path) :]
            below.depth += shift
        category.parent_id = parent.id if parent else None
        site.session.flush()
        moved = tuple(
            site.session.scalars(
                select(Course.id)
                .join(Category, Category.id == Course.category_id)
                .where(Category.path.startswith(new_path, autoescape=True))
                .order_by(Course.id)
            )
        )
        if moved:
            site.plugins.courses_changed(site=site, course_ids=moved)


class ImportRefused(EnrolkitError):
    """``--strict``: the file had errors, so nothing was applied."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        shown = "; ".join(str(e) for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(f"{len(errors)} bad row(s), nothing applied (--strict): {shown}{more}")
