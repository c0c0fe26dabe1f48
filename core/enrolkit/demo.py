"""A small demo site: a category tree, courses, people, cohorts and a few enrolments.

Loading it twice changes nothing the second time.
"""

from __future__ import annotations

from sqlalchemy import select

from . import badges, clock, cohorts, lookup, people, roles
from .catalog import ensure_category
from .enrolments import enrol_manually, ensure_instance
from .models import CATEGORY, Cohort, Course, User
from .site import Site

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "enrolkit-demo"
#: The French-speaking people a newcomer logs in as, besides the admin (same password).
TEACHER_USERNAME = "prof.martin"
STUDENT_USERNAME = "jean"
LOGINS = (ADMIN_USERNAME, TEACHER_USERNAME, STUDENT_USERNAME)

USERS = [
    # username, firstname, lastname, department, city, lang
    ("admin", "Ada", "Admin", "IT", "Paris", "en"),
    ("prof.martin", "Claire", "Martin", "Teaching", "Lyon", "fr"),
    ("prof.dubois", "Luc", "Dubois", "Teaching", "Lyon", "fr"),
    ("jean", "Jean", "Dupont", "IT", "Paris", "fr"),
    ("marie", "Marie", "Curie", "Support", "Paris", "fr"),
    ("paul", "Paul", "Durand", "Marketing", "Nantes", "fr"),
    ("etudiant1", "Alice", "Bernard", "Sales", "Lille", "fr"),
    ("etudiant2", "Hugo", "Petit", "Sales", "Lille", "fr"),
    ("etudiant3", "Emma", "Roux", "IT", "Paris", "en"),
]

COURSES = [
    # shortname, fullname, category path
    ("MATH101", "Mathematics 101", "Sciences / Mathematics"),
    ("MATH201", "Mathematics 201", "Sciences / Mathematics"),
    ("PHYS101", "Physics 101", "Sciences / Physics"),
    ("ONBOARD", "Onboarding", "Company"),
    ("SEC101", "Security basics", "Company"),
    ("SEC201", "Security in practice", "Company"),
]


def load(site: Site, *, methods_at_work: bool = True) -> dict[str, int]:
    """Create what is missing and put the methods to work (:mod:`.demo_automation`; a test that
    adds its own instances passes ``methods_at_work=False``); return how many of each thing were
    created."""
    from . import demo_automation

    created = {"users": 0, "courses": 0, "cohorts": 0}
    with site.atomic():
        roles.ensure_presets(site)
        for name, value in (("lang", "fr"), ("timezone", "Europe/Paris")):  # a French site
            if site.get_config("core", name, None) is None:
                site.set_config("core", name, value)
        for username, first, last, department, city, lang in USERS:
            if site.session.scalar(select(User.id).where(User.username == username)):
                continue
            site.session.add(
                User(
                    username=username,
                    firstname=first,
                    lastname=last,
                    email=f"{username}@demo.enrolkit.test",
                    department=department,
                    city=city,
                    lang=lang,
                    country="FR",
                    institution="Demo University",
                    siteadmin=username == ADMIN_USERNAME,
                    timecreated=clock.now(),
                    password_hash=people.hash_password(ADMIN_PASSWORD)
                    if username in LOGINS
                    else None,
                )
            )
            created["users"] += 1
        site.session.flush()
        for shortname, fullname, path in COURSES:
            if site.session.scalar(select(Course.id).where(Course.shortname == shortname)):
                continue
            category = ensure_category(site, path)
            site.session.add(
                Course(
                    shortname=shortname,
                    fullname=fullname,
                    category_id=category.id,
                    timecreated=clock.now(),
                    enablecompletion=True,
                )
            )
            created["courses"] += 1
        site.session.flush()
        if created["courses"]:
            _enrol_teachers(site)
        if not site.session.scalar(select(Cohort.id).where(Cohort.idnumber == "promo2026")):
            category = ensure_category(site, "Sciences")
            promo = Cohort(
                idnumber="promo2026",
                name="Promotion 2026",
                category_id=category.id,
                timecreated=clock.now(),
            )
            site.session.add(promo)
            site.session.flush()
            cohorts.add_members(
                site,
                promo,
                [lookup.user(site.session, n) for n in ("etudiant1", "etudiant2", "etudiant3")],
            )
            created["cohorts"] += 1
        badges.award(site, "Onboarding complété", lookup.user(site.session, "jean"))
    created["methods at work"] = len(demo_automation.load(site)) if methods_at_work else 0
    return created


def _enrol_teachers(site: Site) -> None:
    teacher = lookup.role(site.session, "editingteacher")
    for username, shortname in (
        ("prof.martin", "MATH101"),
        ("prof.martin", "MATH201"),
        ("prof.dubois", "PHYS101"),
    ):
        course = lookup.course(site.session, shortname)
        ensure_instance(site, course, "manual")
        enrol_manually(site, lookup.user(site.session, username), course, role=teacher)
    manager = lookup.role(site.session, "manager")
    sciences = ensure_category(site, "Sciences")
    roles.assign(site, manager, lookup.user(site.session, "prof.dubois"), CATEGORY, sciences.id)
