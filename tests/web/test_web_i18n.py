"""The interface in English and French: the user's language first, then the one chosen in the
language menu, then the browser's, then the site's; dates in the reader's language and the site's
time zone; mail in the recipient's language. (The catalogs themselves: test_web_catalogs.)"""

from __future__ import annotations

from enrolkit.catalogs import site_language
from enrolkit.models import MailMessage, User, UserEnrolment
from enrolkit.welcome import queue_welcomes
from sqlalchemy import select


def test_the_browser_language_is_used_before_login(app):
    client = app.test_client()
    french = client.get("/login", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
    assert "Se connecter" in french.get_data(as_text=True)
    assert '<html lang="fr">' in french.get_data(as_text=True)
    english = client.get("/login", headers={"Accept-Language": "de, en;q=0.5"})
    assert "Log in" in english.get_data(as_text=True)


def test_the_users_language_wins_over_the_browser(app, world, client_as, web_runtime, post):
    client = client_as("student")
    page = client.get("/", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "My courses" in page  # the student's profile says en

    response = post(client, f"/user/{world.student.id}", lang="fr", follow=True)
    assert "Vos préférences sont enregistrées." in response.get_data(as_text=True)
    page = client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Mes cours" in page and "Se déconnecter" in page


def test_the_language_menu_is_remembered_in_a_cookie_before_login(app, csrf):
    client = app.test_client()
    response = client.post(
        "/language", data={"lang": "fr", "next": "/login", "csrf_token": csrf(client)}
    )
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    page = client.get("/login", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Se connecter" in page and '<option value="fr" lang="fr" selected>' in page


def test_the_language_menu_is_kept_in_the_profile_after_login(app, world, client_as, web_runtime):
    client = client_as("student")
    token = client.get("/").get_data(as_text=True).split('name="csrf_token" value="')[1]
    client.post("/language", data={"lang": "fr", "next": "/", "csrf_token": token.split('"')[0]})
    with web_runtime.site() as site:
        assert site.session.get(User, world.student.id).lang == "fr"
    other_browser = client_as("student")  # a new session: the profile decides
    assert "Mes cours" in other_browser.get("/").get_data(as_text=True)


def _speak_french(runtime, user_id):
    with runtime.site() as site, site.atomic():
        site.session.get(User, user_id).lang = "fr"


def test_dates_read_in_french_in_the_sites_time_zone(app, world, client_as, web_runtime):
    _speak_french(web_runtime, world.student.id)
    with web_runtime.site() as site, site.atomic():
        site.set_config("core", "timezone", "Europe/Paris")
        enrolment = site.session.scalar(
            select(UserEnrolment).where(UserEnrolment.user_id == world.student.id)
        )
        enrolment.timestart = 1782777600  # 2026-06-30 00:00 UTC
    page = client_as("student").get(f"/course/{world.course.id}").get_data(as_text=True)
    assert "30 juin 2026, 02:00" in page


def test_a_denial_reads_in_french(app, world, client_as, web_runtime):
    _speak_french(web_runtime, world.student.id)
    response = client_as("student").get(f"/course/{world.other_course.id}")
    assert response.status_code == 403
    assert "vous n&#39;êtes pas inscrit à PHYS101 et aucune méthode ne vous y admet" in (
        response.get_data(as_text=True)
    )


def test_role_names_and_method_titles_read_in_french(app, world, client_as, web_runtime):
    _speak_french(web_runtime, world.teacher.id)
    page = client_as("teacher").get(f"/course/{world.course.id}/manage").get_data(as_text=True)
    assert "Inscriptions manuelles" in page and "Étudiant" in page


def test_welcome_mail_is_in_the_recipients_language_else_the_sites(db_site):
    site = db_site.site
    with site.atomic():
        course = db_site.course("MATH101", fullname="Maths")
        french = db_site.user("amelie", lang="fr")
        german = db_site.user("dieter", lang="de")
        instance = db_site.instance(course)
    assert site_language(site) == "en"
    with site.atomic():
        queue_welcomes(site, instance, {"a": (french, 0, 0), "b": (german, 0, 0)}, "")
        site.set_config("core", "lang", "fr")
        queue_welcomes(site, instance, {"c": (german, 0, 0)}, "")
    subjects = dict(site.session.execute(select(MailMessage.dedupe_key, MailMessage.subject)).all())
    assert subjects == {
        "a": "Bienvenue dans le cours Maths",
        "b": "Welcome to Maths",
        "c": "Bienvenue dans le cours Maths",
    }
    # the body is rendered by the delivery task, from the template queued in French
    queued = site.session.scalar(select(MailMessage.template).where(MailMessage.dedupe_key == "a"))
    assert "vous êtes inscrit au cours « {{ course.fullname }} »" in queued


def test_the_admin_sets_the_sites_language_and_time_zone(app, world, client_as, post, csrf):
    admin = client_as("admin")
    bad = post(admin, "/admin/site", follow=True, lang="fr", timezone="Mars/Olympus")
    assert "Choose a time zone of the list" in bad.get_data(as_text=True)
    post(admin, "/admin/site", lang="fr", timezone="Europe/Paris")
    anonymous = app.test_client()  # no language of its own, no browser preference
    assert "Se connecter" in anonymous.get("/login").get_data(as_text=True)
    page = admin.get("/admin/site").get_data(as_text=True)
    assert 'value="Europe/Paris"' in page and '<option value="fr" lang="fr" selected>' in page
