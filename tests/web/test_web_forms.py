"""Forms that help: no placeholder text for required settings, durations typed as people say
them (web, CLI, API) and shown back in words, date inputs for times."""

from __future__ import annotations

import pytest
from enrolkit.models import EnrolInstance
from sqlalchemy import select


@pytest.fixture
def enabled(web_runtime, world):
    with web_runtime.site() as site, site.atomic():
        for name in ("cohort", "completion"):
            site.set_method_enabled(name, True)


@pytest.mark.parametrize("method", ["cohort", "completion"])
def test_add_forms_have_no_marshmallow_placeholder(world, client_as, enabled, method):
    page = client_as("teacher").get(f"/course/{world.course.id}/manage/add?method={method}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "missing" not in html, "a required field shows marshmallow's missing marker"


def test_a_completion_delay_is_typed_as_2d_and_shown_back_in_words(
    world, client_as, post, enabled, web_runtime
):
    teacher = client_as("teacher")
    base = f"/course/{world.course.id}/manage"
    response = post(teacher, f"{base}/add", method="completion", role="student", enabled="1",
                    source="PHYS101", delay="2d", duration="P1W", enrolstart="2026-09-01T08:00",
                    enrolend="", follow=True)  # fmt: skip
    assert response.status_code == 200, response.get_data(as_text=True)
    with web_runtime.site() as site:
        instance = site.session.scalar(
            select(EnrolInstance).where(EnrolInstance.method == "completion")
        )
        assert instance.settings["delay"] == 2 * 86400
        assert instance.settings["duration"] == 7 * 86400
        assert instance.settings["enrolstart"] == 1788249600
    form = teacher.get(f"{base}/instance/{instance.id}").get_data(as_text=True)
    form = form.replace("\xa0", " ")
    assert 'name="delay" value="2d"' in form and "2 days" in form and "1 week" in form
    assert 'type="datetime-local" id="f-enrolstart" name="enrolstart" value="2026-09-01T08:00"' in (
        form
    )
    with web_runtime.site() as site, site.atomic():
        site.session.get(type(world.teacher), world.teacher.id).lang = "fr"
    french = teacher.get(f"{base}/instance/{instance.id}").get_data(as_text=True)
    french = french.replace("\xa0", " ")  # CLDR puts a no-break space between number and unit
    assert "2 jours" in french and "1 semaine" in french

    bad = post(teacher, f"{base}/instance/{instance.id}", role="student", enabled="1",
               source="PHYS101", delay="2 days please")  # fmt: skip
    assert bad.status_code == 400
    assert "is not a duration; give seconds, 30m, 12h, 2d, 1w" in bad.get_data(as_text=True)
