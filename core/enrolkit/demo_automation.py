"""The six methods of the mission at work on the demo site, each once, so a newcomer sees
automation on the first page they open:

- flat file: a file in the drop folder, applied, one line rejected (an unknown user);
- cohort sync: the cohort "Promotion 2026" in MATH101, with a group named after it;
- meta link: MATH201 mirrors MATH101;
- category enrolments: Luc Dubois, manager of the category Sciences, in each of its courses;
- auto-enrol: everyone with a department enters ONBOARD at login, in a group
  ``Groupe_{profile_field_department}``;
- course completion: a path ONBOARD -> SEC101 -> SEC201, SEC101 with a welcome mail (in the
  outbox) and SEC201 two days after the completion (a pending enrolment).

Every step checks first whether it was done, so loading the demo twice changes nothing.
A method whose plugin is not installed is skipped.
"""

from __future__ import annotations

import json

from sqlalchemy import select

from . import access, lookup, people
from .enrolments import add_instance
from .models import CourseCompletion, EnrolInstance, User
from .site import Site

#: The department custom profile field the auto-enrol group names read.
DEPARTMENT_FIELD = "department"
AUTOENROL_GROUPS = "Groupe_{profile_field_department}"
#: The completion path, each course enrolling those who completed the one before.
PATH = (("ONBOARD", "SEC101", 0), ("SEC101", "SEC201", 2 * 86_400))
FLATFILE_NAME = "demo-inscriptions.csv"
#: The flat-file format with a header (people by username); the last line names nobody the site
#: knows, and is rejected.
FLATFILE_LINES = (
    "operation,username,course,role",
    "add,marie,PHYS101,student",
    "add,paul,PHYS101,student",
    "add,inconnu,PHYS101,student",
)
AUTOENROL_RULE = {"op": "&", "c": [{"type": "profile", "cf": DEPARTMENT_FIELD, "op": "isnotempty"}]}


def load(site: Site) -> list[str]:
    """Put each installed method to work once; return the names of those started now."""
    started = []
    for name, step in (
        ("category", _category),
        ("cohort", _cohort),
        ("meta", _meta),
        ("autoenrol", _autoenrol),
        ("completion", _completion),
        ("flatfile", _flatfile),
    ):
        if name not in site.plugins.methods:
            continue
        if not site.method_enabled(name):
            site.set_method_enabled(name, True)
        if step(site):
            started.append(name)
    return started


def _has_instance(site: Site, shortname: str, method: str) -> bool:
    course = lookup.course(site.session, shortname)
    return bool(
        site.session.scalar(
            select(EnrolInstance.id).where(
                EnrolInstance.course_id == course.id, EnrolInstance.method == method
            )
        )
    )


def _category(site: Site) -> bool:
    """Managers of a category are enrolled in its courses (the demo's Luc Dubois in Sciences)."""
    if site.method_settings("category").get("roles") == ["manager"]:
        return False
    site.set_method_settings("category", {"roles": "manager"})
    return True


def _cohort(site: Site) -> bool:
    if _has_instance(site, "MATH101", "cohort"):
        return False
    add_instance(site, lookup.course(site.session, "MATH101"), "cohort",
                 {"cohort": "promo2026", "group": "new"})  # fmt: skip
    return True


def _meta(site: Site) -> bool:
    if _has_instance(site, "MATH201", "meta"):
        return False
    add_instance(site, lookup.course(site.session, "MATH201"), "meta", {"source": "MATH101"})
    return True


def _autoenrol(site: Site) -> bool:
    """Auto-enrol on the department (a custom profile field), then everyone logs in once."""
    if _has_instance(site, "ONBOARD", "autoenrol"):
        return False
    with site.atomic():
        people.profile_field(site, DEPARTMENT_FIELD, create=True)
        for user in _students(site):
            people.set_fields(site, user, {f"profile_field_{DEPARTMENT_FIELD}": user.department})
    add_instance(
        site,
        lookup.course(site.session, "ONBOARD"),
        "autoenrol",
        {"mode": "login", "rule": json.dumps(AUTOENROL_RULE), "group_template": AUTOENROL_GROUPS},
    )
    for user in _students(site):
        people.login(site, user)
    return True


def _completion(site: Site) -> bool:
    """The path A -> B -> C, then two completions that walk it."""
    if _has_instance(site, "SEC201", "completion"):
        return False
    for source, target, delay in PATH:
        settings = {"source": source, "delay": str(delay), "welcome": "true"}
        add_instance(site, lookup.course(site.session, target), "completion", settings)
    now = site.now()
    for username, shortname in (("jean", "ONBOARD"), ("marie", "ONBOARD"), ("jean", "SEC101")):
        user = lookup.user(site.session, username)
        course = lookup.course(site.session, shortname)
        if site.session.get(CourseCompletion, (user.id, course.id)) is None:
            access.complete_course(site, user, course, now)
    return True


def _flatfile(site: Site) -> bool:
    """A file in the drop folder, applied now as the hourly task would."""
    from enrol_flatfile.method import load_settings

    folder = load_settings(site).folder
    if any(folder.glob(f"{FLATFILE_NAME}*")):
        return False
    folder.mkdir(parents=True, exist_ok=True)
    (folder / FLATFILE_NAME).write_text("\n".join(FLATFILE_LINES) + "\n", encoding="utf-8")
    site.plugins.tasks["flatfile_sync"].run(site)
    return True


def _students(site: Site) -> list[User]:
    return list(
        site.session.scalars(
            select(User).where(User.siteadmin.is_(False), User.department != "Teaching")
        )
    )
