"""People: users and their profiles, cohorts and members, roles and role assignments, badges.

Each write goes through the service the CLI uses (``people``, ``cohorts``, ``roles``,
``badges``), so hooks, log entries and checks are the same.
"""

from __future__ import annotations

from sqlalchemy import func, or_, select

from .. import badges, cohorts, lookup, people, roles
from ..catalog import subtree_ids
from ..errors import EnrolkitError, Refused
from ..models import (
    CATEGORY,
    COURSE,
    Badge,
    BadgeAward,
    Cohort,
    CohortMember,
    Course,
    Role,
    RoleAssignment,
    User,
)
from . import schemas as s
from .common import ID, FieldError, Query, SqlPage, blueprint, containing, resolve, site
from .uploads import run_import

users = blueprint("users", "Users and their profiles (`enrolkit user`).")
cohort_bp = blueprint("cohorts", "Cohorts and their members (`enrolkit cohort`).")
role_bp = blueprint("roles", "Roles and role assignments (`enrolkit role`).")
badge_bp = blueprint("badges", "Badges and their awards (`enrolkit badge`).")


# --- users -------------------------------------------------------------------------------------


@users.get("/users")
@users.arguments(s.UserQuery, location="query")
@users.response(200, s.User(many=True))
@users.paginate(SqlPage)
@users.reads()
def list_users(args):
    """Users by username (deleted ones left out)."""
    stmt = select(User).where(User.deleted.is_(False)).order_by(User.username)
    if args.get("q"):
        pattern = containing(args["q"])
        stmt = stmt.where(
            or_(
                *(
                    column.ilike(pattern, escape="\\")
                    for column in (User.username, User.email, User.firstname, User.lastname)
                )
            )
        )
    return Query(stmt)


def _user_detail(user: User) -> dict:
    data = s.User().dump(user)
    data["profile"] = people.profile_values(site(), user.id)
    return data


@users.get("/users/<username>")
@users.response(200, s.UserDetail)
@users.reads(404)
def get_user(username):
    """A user with their custom profile fields."""
    return _user_detail(lookup.user(site().session, username))


@users.patch("/users/<username>")
@users.arguments(s.UserChange)
@users.response(200, s.UserDetail)
@users.writes(404, 422)
def change_user(args, username):
    """Change profile fields (fires the profile-changed hook), as `enrolkit user set`."""
    user = lookup.user(site().session, username)
    assignments = {
        field: ("1" if value else "0") if field == "suspended" else value
        for field, value in args.items()
        if field != "profile"
    }
    for shortname, value in args.get("profile", {}).items():
        assignments[people.PROFILE_PREFIX + shortname] = value
    people.set_fields(site(), user, assignments)
    return _user_detail(user)


@users.put("/users/<username>/password")
@users.arguments(s.Password)
@users.response(204)
@users.writes(404, 422)
def set_password(args, username):
    """Set a user's password (stored hashed), as `enrolkit user passwd`."""
    with site().atomic():
        user = lookup.user(site().session, username)
        people.set_password(user, args["password"])


@users.post("/users/import")
@users.arguments(s.ImportForm, location="form")
@users.arguments(s.ImportFile, location="files")
@users.response(200, s.ImportReport)
@users.writes(422)
def import_users(form, files):
    """Create or update users from CSV (`enrolkit user import`): username,email,firstname,
    lastname[,idnumber,auth,lang,department,institution,city,country,suspended,
    profile_field_<shortname>...]. Bad rows are reported; with `strict`, nothing is applied."""
    return run_import(files["file"], people.import_users, site(), form["strict"])


# --- cohorts -----------------------------------------------------------------------------------


def _cohort_row(cohort: Cohort, members: int) -> dict:
    return {
        "id": cohort.id,
        "idnumber": cohort.idnumber,
        "name": cohort.name,
        "description": cohort.description,
        "category": lookup.category_path(site().session, cohort.category_id) or None,
        "members": members,
        "timecreated": cohort.timecreated,
    }


_MEMBERS = (
    select(func.count())
    .where(CohortMember.cohort_id == Cohort.id)
    .correlate(Cohort)
    .scalar_subquery()
)


@cohort_bp.get("/cohorts")
@cohort_bp.arguments(s.CohortQuery, location="query")
@cohort_bp.response(200, s.Cohort(many=True))
@cohort_bp.paginate(SqlPage)
@cohort_bp.reads()
def list_cohorts(args):
    """Cohorts by idnumber, with their member counts."""
    stmt = select(Cohort, _MEMBERS).order_by(Cohort.idnumber)
    if args.get("q"):
        pattern = containing(args["q"])
        stmt = stmt.where(
            or_(
                Cohort.idnumber.ilike(pattern, escape="\\"), Cohort.name.ilike(pattern, escape="\\")
            )
        )
    return Query(stmt, lambda row: _cohort_row(*row), scalars=False)


@cohort_bp.get("/cohorts/<idnumber>")
@cohort_bp.response(200, s.Cohort)
@cohort_bp.reads(404)
def get_cohort(idnumber):
    cohort = lookup.cohort(site().session, idnumber)
    members = site().session.scalar(select(func.count()).where(CohortMember.cohort_id == cohort.id))
    return _cohort_row(cohort, members)


@cohort_bp.delete("/cohorts/<idnumber>")
@cohort_bp.response(204)
@cohort_bp.writes(404)
def delete_cohort(idnumber):
    """Delete a cohort; methods syncing it react through cohort_deleted."""
    cohorts.delete_cohort(site(), lookup.cohort(site().session, idnumber))


@cohort_bp.post("/cohorts/import")
@cohort_bp.arguments(s.ImportForm, location="form")
@cohort_bp.arguments(s.ImportFile, location="files")
@cohort_bp.response(200, s.ImportReport)
@cohort_bp.writes(422)
def import_cohorts(form, files):
    """Create or update cohorts from CSV (`enrolkit cohort import`): idnumber,name[,category,
    description]."""
    return run_import(files["file"], cohorts.import_cohorts, site(), form["strict"])


@cohort_bp.get("/cohorts/<idnumber>/members")
@cohort_bp.response(200, s.User(many=True))
@cohort_bp.paginate(SqlPage)
@cohort_bp.reads(404)
def list_members(idnumber):
    cohort = lookup.cohort(site().session, idnumber)
    return Query(
        select(User)
        .join(CohortMember, CohortMember.user_id == User.id)
        .where(CohortMember.cohort_id == cohort.id)
        .order_by(User.username)
    )


def _cohort_and_users(idnumber: str, usernames: list[str]) -> tuple[Cohort, list[User]]:
    """The URL's cohort (404) and the body's users (422 naming ``usernames.N``), one query."""
    try:
        return lookup.cohort_and_users(site().session, idnumber, usernames)
    except lookup.UnknownUser as exc:
        raise FieldError(f"usernames.{exc.position}", str(exc)) from None


def _names(user_ids: list[int], found: list[User]) -> list[str]:
    by_id = {u.id: u.username for u in found}
    return [by_id[i] for i in user_ids]


@cohort_bp.post("/cohorts/<idnumber>/members")
@cohort_bp.arguments(s.Usernames)
@cohort_bp.response(200, s.MembersChanged)
@cohort_bp.writes(404, 422)
def add_members(args, idnumber):
    """Add users (fires cohort_members_changed once); those already in are skipped."""
    cohort, found = _cohort_and_users(idnumber, args["usernames"])
    added = cohorts.add_members(site(), cohort, found)
    return {"added": _names(added, found), "removed": []}


@cohort_bp.post("/cohorts/<idnumber>/members/remove")
@cohort_bp.arguments(s.Usernames)
@cohort_bp.response(200, s.MembersChanged)
@cohort_bp.writes(404, 422)
def remove_members(args, idnumber):
    """Remove users from the cohort (fires cohort_members_changed once)."""
    cohort, found = _cohort_and_users(idnumber, args["usernames"])
    removed = cohorts.remove_members(site(), cohort, found)
    return {"added": [], "removed": _names(removed, found)}


# --- roles -------------------------------------------------------------------------------------


@role_bp.get("/roles")
@role_bp.response(200, s.Role(many=True))
@role_bp.paginate(SqlPage)
@role_bp.reads()
def list_roles():
    return Query(select(Role).order_by(Role.sortorder, Role.id))


def _assignment_row(ra: RoleAssignment, role: str, username: str) -> dict:
    session = site().session
    course = session.get(Course, ra.instanceid) if ra.contextlevel == COURSE else None
    return {
        "id": ra.id,
        "role": role,
        "username": username,
        "context": ra.contextlevel,
        "category": lookup.category_path(session, ra.instanceid)
        if ra.contextlevel == CATEGORY
        else None,
        "course": course.shortname if course else None,
        "component": ra.component,
        "itemid": ra.itemid,
        "timemodified": ra.timemodified,
    }


@role_bp.get("/role-assignments")
@role_bp.arguments(s.RoleAssignmentQuery, location="query")
@role_bp.response(200, s.RoleAssignment(many=True))
@role_bp.paginate(SqlPage)
@role_bp.reads(404)
def list_assignments(args):
    """Role assignments, filtered by user, role, course or category (with its subcategories);
    those owned by an enrolment method name it in `component`."""
    session = site().session
    stmt = (
        select(RoleAssignment, Role.shortname, User.username)
        .join(Role, Role.id == RoleAssignment.role_id)
        .join(User, User.id == RoleAssignment.user_id)
        .order_by(RoleAssignment.id)
    )
    if args.get("username"):
        stmt = stmt.where(RoleAssignment.user_id == lookup.user(session, args["username"]).id)
    if args.get("role"):
        stmt = stmt.where(RoleAssignment.role_id == lookup.role(session, args["role"]).id)
    if args.get("course"):
        course = lookup.course(session, args["course"])
        stmt = stmt.where(
            RoleAssignment.contextlevel == COURSE, RoleAssignment.instanceid == course.id
        )
    if args.get("category"):
        category = lookup.category(session, args["category"])
        stmt = stmt.where(
            RoleAssignment.contextlevel == CATEGORY,
            RoleAssignment.instanceid.in_(subtree_ids(site(), category)),
        )
    return Query(stmt, lambda row: _assignment_row(*row), scalars=False)


@role_bp.post("/role-assignments")
@role_bp.arguments(s.RoleAssignmentIn)
@role_bp.response(201, s.RoleAssignment)
@role_bp.alt_response(200, schema=s.RoleAssignment, description="It was already assigned.")
@role_bp.writes(422)
def assign_role(args):
    """Assign a role in the site, a category or a course (fires role_assignments_changed)."""
    session = site().session
    role = resolve("role", lambda: lookup.role(session, args["role"]))
    user = resolve("username", lambda: lookup.user(session, args["username"]))
    field = "category" if args.get("category") else "course"
    with site().atomic():
        level, instanceid = resolve(
            field, lambda: roles.context_of(site(), args.get("category"), args.get("course"))
        )
        new = roles.assign(site(), role, user, level, instanceid)
    assignment = session.scalar(
        select(RoleAssignment).where(
            RoleAssignment.role_id == role.id,
            RoleAssignment.user_id == user.id,
            RoleAssignment.contextlevel == level,
            RoleAssignment.instanceid == instanceid,
            RoleAssignment.component == "",
        )
    )
    return _assignment_row(assignment, role.shortname, user.username), 201 if new else 200


@role_bp.delete(f"/role-assignments/<{ID}:assignment_id>")
@role_bp.response(204)
@role_bp.writes(404, 409)
def unassign_role(assignment_id):
    """Remove a role assigned by hand; one an enrolment method owns is refused (remove it at
    its source)."""
    session = site().session
    found = session.get(RoleAssignment, assignment_id)
    if found is None:
        raise lookup.NotFound(f"no role assignment {assignment_id}")
    role, user = session.get(Role, found.role_id), session.get(User, found.user_id)
    try:
        with site().atomic():
            roles.unassign(site(), role, user, found.contextlevel, found.instanceid)
    except EnrolkitError as exc:  # the only refusal: a method owns the assignment
        raise Refused(str(exc)) from None


# --- badges ------------------------------------------------------------------------------------

_AWARDED = (
    select(func.count()).where(BadgeAward.badge_id == Badge.id).correlate(Badge).scalar_subquery()
)


@badge_bp.get("/badges")
@badge_bp.response(200, s.Badge(many=True))
@badge_bp.paginate(SqlPage)
@badge_bp.reads()
def list_badges():
    return Query(
        select(Badge, _AWARDED).order_by(Badge.name),
        lambda row: {**s.Badge().dump(row[0]), "awarded": row[1]},
        scalars=False,
    )


@badge_bp.get("/badge-awards")
@badge_bp.arguments(s.BadgeAwardQuery, location="query")
@badge_bp.response(200, s.BadgeAward(many=True))
@badge_bp.paginate(SqlPage)
@badge_bp.reads()
def list_awards(args):
    stmt = (
        select(Badge.name, User.username, BadgeAward.timeawarded)
        .join(Badge, Badge.id == BadgeAward.badge_id)
        .join(User, User.id == BadgeAward.user_id)
        .order_by(BadgeAward.timeawarded, Badge.name, User.username)
    )
    if args.get("badge"):
        stmt = stmt.where(Badge.name == args["badge"])
    if args.get("username"):
        stmt = stmt.where(User.username == args["username"])
    return Query(
        stmt,
        lambda row: {"badge": row[0], "username": row[1], "timeawarded": row[2]},
        scalars=False,
    )


@badge_bp.post("/badge-awards")
@badge_bp.arguments(s.BadgeAwardIn)
@badge_bp.response(201, s.BadgeAward)
@badge_bp.alt_response(200, schema=s.BadgeAward, description="The user already held it.")
@badge_bp.writes(422)
def award_badge(args):
    """Award a badge (created on first award), as `enrolkit badge award`."""
    session = site().session
    user = resolve("username", lambda: lookup.user(session, args["username"]))
    new = badges.award(site(), args["badge"], user)
    award = session.execute(
        select(BadgeAward.timeawarded)
        .join(Badge, Badge.id == BadgeAward.badge_id)
        .where(Badge.name == args["badge"], BadgeAward.user_id == user.id)
    ).scalar_one()
    body = {"badge": args["badge"], "username": user.username, "timeawarded": award}
    return body, 201 if new else 200
