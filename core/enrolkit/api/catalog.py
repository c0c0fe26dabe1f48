"""The catalogue: categories, courses and their completions; and the events an LMS fires (a
login, a course view, "Enrol me", a completion), through the same services as the CLI."""

from __future__ import annotations

from flask_smorest import Page, abort
from sqlalchemy import or_, select

from .. import access, catalog, clock, confirmation, lookup, people
from ..errors import NotFound, SettingsError
from ..models import Category, Course, CourseCompletion, User
from . import schemas as s
from .common import ID, Query, SqlPage, blueprint, containing, resolve, site
from .uploads import run_import

categories = blueprint("categories", "The course category tree.")
courses = blueprint("courses", "Courses and their completions (`enrolkit course`).")
#: Dumps a course's own columns (a schema is built once: building one per row costs more than
#: the dump).
_COURSE = s.Course(exclude=("category",))
events = blueprint(
    "events", "What an LMS reports: logins, course views, self-enrolment, completions."
)


def _category_row(category: Category) -> dict:
    return _category_rows([category])[0]


def _category_rows(found: list[Category]) -> list[dict]:
    """Categories with their paths and their parents', read together."""
    ids = [c.id for c in found] + [c.parent_id for c in found]
    paths = lookup.category_paths(site().session, ids)
    return [
        {
            "id": category.id,
            "name": category.name,
            "idnumber": category.idnumber,
            "path": paths.get(category.id, ""),
            "parent": paths.get(category.parent_id) if category.parent_id else None,
            "depth": category.depth,
        }
        for category in found
    ]


@categories.get("/categories")
@categories.response(200, s.Category(many=True))
@categories.paginate(SqlPage)
@categories.reads()
def list_categories():
    """Every category, parents before their children."""
    return Query(select(Category).order_by(Category.path), shape_page=_category_rows)


@categories.get(f"/categories/<{ID}:category_id>")
@categories.response(200, s.Category)
@categories.reads(404)
def get_category(category_id):
    found = site().session.get(Category, category_id)
    if found is None:
        raise NotFound(f"no category {category_id}")
    return _category_row(found)


@categories.post("/categories")
@categories.arguments(s.CategoryIn)
@categories.response(201, s.Category)
@categories.alt_response(200, schema=s.Category, description="The category existed.")
@categories.writes(422)
def create_category(args):
    """Make the category at `Parent / Child`, with any missing parents."""
    session = site().session
    resolve("path", lambda: lookup.split_path(args["path"]))
    try:
        return _category_row(lookup.category(session, args["path"])), 200
    except NotFound:
        pass
    with site().atomic():
        made = catalog.ensure_category(site(), args["path"])
    return _category_row(made), 201


def _course_row(course: Course) -> dict:
    return _course_rows([course])[0]


def _course_rows(found: list[Course]) -> list[dict]:
    """Courses with their category paths, read together."""
    paths = lookup.category_paths(site().session, [c.category_id for c in found])
    return [{**_COURSE.dump(c), "category": paths.get(c.category_id) or None} for c in found]


@courses.get("/courses")
@courses.arguments(s.CourseQuery, location="query")
@courses.response(200, s.Course(many=True))
@courses.paginate(SqlPage)
@courses.reads(404)
def list_courses(args):
    """Courses by shortname."""
    stmt = select(Course).order_by(Course.shortname)
    if args.get("q"):
        pattern = containing(args["q"])
        stmt = stmt.where(
            or_(
                Course.shortname.ilike(pattern, escape="\\"),
                Course.fullname.ilike(pattern, escape="\\"),
            )
        )
    if args.get("category"):
        category = lookup.category(site().session, args["category"])
        stmt = stmt.where(Course.category_id.in_(catalog.subtree_ids(site(), category)))
    return Query(stmt, shape_page=_course_rows)


@courses.get("/courses/<shortname>")
@courses.response(200, s.Course)
@courses.reads(404)
def get_course(shortname):
    return _course_row(lookup.course(site().session, shortname))


@courses.post("/courses/import")
@courses.arguments(s.ImportForm, location="form")
@courses.arguments(s.ImportFile, location="files")
@courses.response(200, s.ImportReport)
@courses.writes(422)
def import_courses(form, files):
    """Create or update courses from CSV (`enrolkit course import`): shortname,fullname[,idnumber,
    category,startdate,enddate,enablecompletion,visible]; missing categories are created."""
    return run_import(files["file"], catalog.import_courses, site(), form["strict"])


@courses.get("/courses/<shortname>/completions")
@courses.response(200, s.Completion(many=True))
@courses.paginate(Page)
@courses.reads(404)
def list_completions(shortname):
    """Who completed the course, and when (oldest first)."""
    return access.completions(site(), lookup.course(site().session, shortname))


# --- events ------------------------------------------------------------------------------------


def _who(args) -> User:
    return resolve("username", lambda: lookup.user(site().session, args["username"]))


def _where(args) -> Course:
    return resolve("course", lambda: lookup.course(site().session, args["course"]))


def _access(decision) -> dict:
    return {
        "decision": decision.decision,
        "reason": decision.reason,
        "instance_id": decision.instance_id,
        "redirect": decision.redirect,
        "offers": [
            {
                "instance_id": offer.instance_id,
                "reason": offer.reason,
                "fields": confirmation.fields_of(site(), offer.instance_id),
            }
            for offer in decision.offers
        ],
    }


@events.post("/events/login")
@events.arguments(s.UserEvent)
@events.response(200, s.Login)
@events.writes(422)
def login(args):
    """A site login (fires on_login), as `enrolkit user login`."""
    user = _who(args)
    people.login(site(), user)
    return {"username": user.username, "lastlogin": user.lastlogin}


@events.post("/events/course-view")
@events.arguments(s.CourseEvent)
@events.response(200, s.Access)
@events.writes(422)
def course_view(args):
    """A user opens a course (fires on_course_view): granted, confirm ("Enrol me") or denied."""
    return _access(access.view_course(site(), _who(args), _where(args)))


@events.post("/events/enrol-me")
@events.arguments(s.EnrolMe)
@events.response(200, s.Access)
@events.writes(409, 422, 429)
def enrol_me(args):
    """The user confirms a self-enrolment a course view offered, with what its method asks
    (`fields`). A refusal is logged (`enrol_me_refused`); a method may limit the attempts per
    user and instance (429 with `Retry-After`)."""
    user, course = _who(args), _where(args)
    try:
        decision = access.enrol_me(
            site(), user, course, args["fields"], instance_id=args.get("instance")
        )
    except SettingsError as exc:
        site().session.rollback()
        abort(422, errors={"json": {"fields": exc.messages}})
    return _access(decision)


@events.post("/events/completion")
@events.arguments(s.CompletionEvent)
@events.response(200, s.CompletionRecorded)
@events.writes(422)
def completion(args):
    """A course completion (fires on_completion once per new completion)."""
    user, course = _who(args), _where(args)
    when = args.get("time") or clock.now()
    recorded = access.complete_course(site(), user, course, when)
    stored = site().session.get(CourseCompletion, (user.id, course.id))
    return {
        "username": user.username,
        "course": course.shortname,
        "recorded": recorded,
        "timecompleted": stored.timecompleted,
    }
