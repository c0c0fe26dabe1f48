"""Nothing internal on a page: a refused unenrol says where to act in the web, naming people and
cohorts, with a link (never a command line); an action the method refuses is not offered; a
destructive one asks first, saying how many enrolments it touches."""

from __future__ import annotations

import re

import pytest
from enrolkit.enrolments import add_instance
from enrolkit.models import Cohort


@pytest.fixture
def synced(world, web_runtime):
    """The cohort "promo" (the student) synced into MATH101."""
    with web_runtime.site() as site:
        site.set_method_enabled("cohort", True)
        course = site.session.merge(world.course)
        add_instance(site, course, "cohort", {"cohort": "promo"})
        return site.session.get(Cohort, world.cohort.id).name


def test_an_active_cohort_enrolment_offers_no_unenrol(app, world, synced, client_as):
    page = client_as("teacher").get(f"/course/{world.course.id}/manage/participants")
    html = page.get_data(as_text=True)
    rows = re.findall(r"<tr>.*?</tr>", html, re.S)
    cohort_row = next(row for row in rows if "Cohort sync" in row)
    manual_row = next(row for row in rows if "Manual enrolments" in row and "Jean" in row)
    assert "Unenrol" not in cohort_row
    assert "Unenrol" in manual_row
    assert 'data-confirm="Unenrol Jean Dupont from Maths? This removes 1 enrolment' in manual_row


def test_a_refused_unenrol_says_where_to_act_in_the_web(app, world, synced, client_as, post):
    admin = client_as("admin")
    response = post(
        admin,
        f"/course/{world.course.id}/manage/participants/unenrol",
        follow=True,
        username="student",
    )
    html = response.get_data(as_text=True)
    assert "cannot unenrol student from MATH101" in html
    assert "the enrolment comes from the cohort promo" in html
    link = (
        f'<a href="/admin/cohorts/{world.cohort.id}">remove Jean Dupont from the cohort promo</a>'
    )
    assert link in html
    assert "enrolkit cohort" not in html and "USERNAME" not in html


def test_a_teacher_reads_where_to_act_without_a_link_they_cannot_open(
    app, world, synced, client_as, post
):
    teacher = client_as("teacher")
    url = f"/course/{world.course.id}/manage/participants/unenrol"
    html = post(teacher, url, follow=True, username="student").get_data(as_text=True)
    assert "remove the user from the cohort instead" in html
    assert "/admin/cohorts/" not in html and "enrolkit cohort" not in html


def test_the_french_refusal_names_and_links(app, world, synced, client_as, post, web_runtime):
    from enrolkit.models import User

    with web_runtime.site() as site, site.atomic():
        site.session.get(User, world.admin.id).lang = "fr"
    admin = client_as("admin")
    url = f"/course/{world.course.id}/manage/participants/unenrol"
    html = post(admin, url, follow=True, username="student").get_data(as_text=True)
    assert "impossible de désinscrire student de MATH101" in html
    assert "retirer Jean Dupont de la cohorte promo</a>" in html


def test_a_cohort_page_says_how_many_enrolments_a_removal_touches(app, world, synced, client_as):
    html = client_as("admin").get(f"/admin/cohorts/{world.cohort.id}").get_data(as_text=True)
    assert 'data-confirm="Remove Jean Dupont from promo? Cohort sync then acts on 1 course' in html
    assert 'data-confirm="Delete the cohort promo? Cohort sync then acts on 1 course' in html
