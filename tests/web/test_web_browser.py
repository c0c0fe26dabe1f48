"""The web admin in a real browser: Debian's chromium driven by Playwright, against the app served
by waitress on a free port of 127.0.0.1, as in production (secure cookies, CSRF, a secret key).

Screenshots of each main page go to ``$ENROLKIT_SCREENSHOTS`` (default
``artifacts/screenshots``). Tests that need a method not installed skip with the reason.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from enrolkit import demo, lookup, people
from enrolkit.enrolments import add_instance
from enrolkit.models import Base, Course, User
from enrolkit.plugins import Plugins
from enrolkit.runtime import Runtime
from enrolkit.web import create_app
from sqlalchemy import select

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
PASSWORD = "browser-pass-1"
SHOTS = Path(
    os.environ.get("ENROLKIT_SCREENSHOTS")
    or Path(__file__).parents[2] / "artifacts" / "screenshots"
)

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: .ci/run installs the Debian package chromium")
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The demo site, every installed plugin, served by waitress until the module ends."""
    from waitress.server import create_server

    home = tmp_path_factory.mktemp("home")
    roots = pytest.MonkeyPatch()
    roots.setenv("ENROLKIT_FLATFILE_ROOTS", str(home))  # the operator allows the drop folder
    roots.setenv("ENROLKIT_HOME", str(home))  # the demo's flat file goes to the home's folder
    plugins = Plugins(entry_points=True)
    plugins.load_all()  # their tables join the metadata before it is created
    runtime = Runtime(f"sqlite:///{home / 'site.db'}", plugins)
    Base.metadata.create_all(runtime.db)
    runtime.bootstrap()
    with runtime.site() as site:
        demo.load(site, methods_at_work=False)  # the tests add their own instances
        with site.atomic():
            hashed = people.hash_password(PASSWORD)
            for user in site.session.scalars(select(User)):
                user.password_hash = hashed
            for name in ("cohort", "meta"):  # what the teacher test adds; flatfile stays off
                if name in site.plugins.methods:
                    site.set_method_enabled(name, True)
            if "flatfile" in site.plugins.methods:
                site.set_method_settings(
                    "flatfile", {"folder": str(home / "drop"), "mail_admins": "false"}
                )
    app = create_app({"SECRET_KEY": "browser-test-key", "PROPAGATE_EXCEPTIONS": False}, runtime)
    assert app.config["SESSION_COOKIE_SECURE"] is True
    wsgi = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=wsgi.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{wsgi.effective_port}", runtime
    wsgi.close()
    thread.join(5)
    roots.undo()
    runtime.dispose()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def visit(server, browser):
    """``page = visit("jean")``: a fresh browser context logged in as that user."""
    base, _runtime = server
    contexts = []

    def open_as(username: str | None):
        context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        if username:
            page.goto("/login")
            page.get_by_label("Username").fill(username)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(f"{base}/")
        return page

    yield open_as
    for context in contexts:
        context.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def course_id(runtime, shortname: str) -> int:
    with runtime.site() as site:
        return lookup.course(site.session, shortname).id


def test_admin_enables_the_flat_file_uploads_the_csv_and_sees_the_enrolments(
    server, visit, tmp_path
):
    pytest.importorskip("enrol_flatfile")
    base, runtime = server
    page = visit("admin")
    shot(page, "dashboard-admin")
    page.get_by_role("link", name="Site administration").click()
    page.get_by_role("link", name="Methods").first.click()
    row = page.locator("#method-flatfile")
    if "Enable" in row.inner_text():
        row.get_by_role("button", name="Enable").click()
    page.wait_for_selector("#method-flatfile .badge-on")
    shot(page, "admin-methods")

    csv = tmp_path / "enrolments.csv"
    csv.write_text(
        "operation,username,course,role\n"
        "add,paul,PHYS101,student\n"
        "add,marie,PHYS101,student\n"
        "add,ghost,PHYS101,student\n"
    )
    page.goto("/admin/flatfile")
    page.get_by_label("Enrolment file").set_input_files(str(csv))
    page.get_by_role("button", name="Upload").click()
    page.get_by_text("enrolments.csv is in the drop folder.").wait_for()
    shot(page, "admin-flatfile")
    page.get_by_role("button", name="Preview (dry run)").click()
    page.get_by_text("Dry run: nothing was changed").wait_for()
    assert "ghost" in page.content()
    shot(page, "admin-flatfile-dry-run")
    page.get_by_role("button", name="Apply this file now").click()
    page.wait_for_selector("#processed")
    assert "No file is waiting." in page.inner_text("#pending")

    page.goto(f"/course/{course_id(runtime, 'PHYS101')}/manage/participants?method=flatfile")
    table = page.inner_text("table.participants")
    assert "Paul Durand" in table and "Marie Curie" in table
    assert "2 enrolments" in page.inner_text("#count")
    shot(page, "course-participants")


def test_teacher_adds_cohort_sync_and_meta_link_but_not_to_another_course(server, visit):
    pytest.importorskip("enrol_cohort")
    pytest.importorskip("enrol_meta")
    base, runtime = server
    page = visit("prof.martin")  # French interface: her profile says fr
    page.locator(".card", has_text="Mathematics 101").locator("a.manage").click()
    page.get_by_label("Méthode").select_option("cohort")
    page.get_by_role("button", name="Ajouter").click()
    page.get_by_label("Cohorte", exact=True).fill("promo2026")
    shot(page, "course-add-cohort-sync")
    page.get_by_role("button", name="Ajouter la méthode").click()
    page.get_by_text("3 inscrits").wait_for()

    page.get_by_label("Méthode").select_option("meta")
    page.get_by_role("button", name="Ajouter").click()
    page.locator("[name=source]").fill("MATH201")
    page.get_by_role("button", name="Ajouter la méthode").click()
    page.locator(".flash-success").wait_for()
    methods = page.inner_text("table")
    assert "Synchronisation des cohortes" in methods and "Méta-lien de cours" in methods
    shot(page, "course-methods")

    response = page.goto(f"/course/{course_id(runtime, 'PHYS101')}/manage")
    assert response.status == 403
    assert "Vous n'avez pas le droit d'ouvrir cette page." in page.content()
    shot(page, "course-refused")


def test_a_student_is_denied_a_course_and_sees_why(server, visit):
    base, runtime = server
    page = visit("etudiant1")  # French
    response = page.goto(f"/course/{course_id(runtime, 'SEC101')}")
    assert response.status == 403
    assert page.get_by_role("heading", name="Vous ne pouvez pas ouvrir ce cours").is_visible()
    assert "vous n'êtes pas inscrit à SEC101" in page.inner_text(".reason")
    shot(page, "course-denied")


def test_the_welcome_preview_renders_live(server, visit):
    base, runtime = server
    page = visit("prof.martin")
    page.goto(f"/course/{course_id(runtime, 'MATH101')}/manage/welcome")
    # A teacher previews with a participant, themself or the sample user, never anyone else.
    page.get_by_label("Aperçu pour l'utilisateur").fill("sample.student")
    page.get_by_label("Modèle", exact=True).fill(
        "<p>Bonjour {{ user.firstname }}, bienvenue en {{ course.fullname }} !</p>"
    )
    frame = page.frame_locator("#w-html")
    frame.get_by_text("Bonjour Sam, bienvenue en Mathematics 101 !").wait_for()
    assert page.inner_text("#w-subject") == "Bienvenue dans le cours Mathematics 101"
    shot(page, "course-welcome-preview")
    page.get_by_label("Modèle", exact=True).fill("{{ user.nosuch }}")
    page.locator("#w-problems li").first.wait_for()
    assert "nosuch" in page.inner_text("#w-problems")
    page.get_by_label("Aperçu pour l'utilisateur").fill("jean")  # not in MATH101
    page.locator("#w-problems li", has_text="participant").wait_for()


def test_the_interface_speaks_french_to_french_users(server, visit):
    page = visit("jean")  # lang fr in the demo site
    assert page.get_by_role("heading", name="Mes cours").is_visible()
    shot(page, "dashboard-fr")


def test_admin_pages_tour(server, visit):
    """Every main page renders in the browser, without a script error; a screenshot each."""
    base, runtime = server
    page = visit("admin")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    math = course_id(runtime, "MATH101")
    tour = {
        "admin-users": "/admin/users",
        "admin-categories": "/admin/categories",
        "admin-cohorts": "/admin/cohorts",
        "admin-tasks": "/admin/tasks",
        "admin-logs": "/admin/logs",
        "admin-mail": "/admin/mail",
        "admin-plans": "/admin/plans",
        "admin-method-settings": "/admin/methods/manual/settings",
        "course-groups": f"/course/{math}/manage/groups",
        "course-completion": f"/course/{math}/manage/completion",
        "catalogue": "/courses",
    }
    for name, url in tour.items():
        response = page.goto(url)
        assert response.status == 200, url
        shot(page, name)
    assert not errors


def test_jean_logs_in_and_sees_his_auto_enrolled_course(server, visit):
    pytest.importorskip("enrol_autoenrol", reason="the autoenrol plugin is not installed yet")
    base, runtime = server
    rule = {"op": "&", "c": [{"type": "profile", "sf": "department", "op": "isequalto", "v": "IT"}]}
    with runtime.site() as site:
        site.set_method_enabled("autoenrol", True)
        add_instance(
            site,
            lookup.course(site.session, "ONBOARD"),
            "autoenrol",
            {"mode": "login", "rule": json.dumps(rule)},
        )
    page = visit("jean")
    assert page.locator(".card", has_text="Onboarding").is_visible()
    shot(page, "dashboard-jean-autoenrolled")
    response = page.goto(f"/course/{course_id(runtime, 'ONBOARD')}/manage/rules")
    assert response.status == 403  # jean is no teacher


def test_marie_opens_a_view_mode_course_and_gets_in(server, visit):
    pytest.importorskip("enrol_autoenrol", reason="the autoenrol plugin is not installed yet")
    base, runtime = server
    rule = {"op": "&", "c": [{"type": "profile", "sf": "department", "op": "isequalto",
                              "v": "Support"}]}  # fmt: skip
    with runtime.site() as site:
        site.set_method_enabled("autoenrol", True)
        course = site.session.scalar(select(Course).where(Course.shortname == "SEC101"))
        add_instance(site, course, "autoenrol", {"mode": "view", "rule": json.dumps(rule)})
    page = visit("marie")
    page.goto(f"/course/{course_id(runtime, 'SEC101')}")
    assert page.get_by_role("heading", name="Vous êtes dans ce cours").is_visible()
    shot(page, "course-marie-view-mode")
    # The rule builder: "department is Support OR badge Onboarding complété", then the tester.
    admin = visit("admin")
    admin.goto(f"/course/{course_id(runtime, 'SEC101')}/manage/rules")
    builder = admin.locator("#rule-builder")
    builder.get_by_label("Match").select_option("|")
    builder.get_by_label("Condition type").select_option("badge")
    builder.get_by_role("button", name="Add condition").click()
    builder.locator(".condition", has_text="badge").get_by_label("Value").fill(
        "Onboarding complété"
    )
    rule_json = json.loads(admin.input_value("#rule-json"))
    assert rule_json["op"] == "|" and rule_json["c"][1] == {
        "type": "badge",
        "id": "Onboarding complété",
    }
    admin.get_by_role("button", name="Save rule").click()
    admin.get_by_text("The rule is saved.").wait_for()
    admin.get_by_label("Username").fill("jean")
    admin.get_by_role("button", name="Test this rule").click()
    admin.get_by_role("heading", name="jean matches").wait_for()
    shot(admin, "course-rule-builder")
