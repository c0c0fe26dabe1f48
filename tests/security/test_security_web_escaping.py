"""Markup people type reaches a page as text: a script in a name is escaped everywhere it is
listed; issue 16, item 3: a course name holding an HTML entity is shown once escaped (a browser
reads ``Application & Eligibility Review``), never double-escaped; decoding never lets markup
through."""

from __future__ import annotations


def rename(web_runtime, course, fullname: str) -> None:
    with web_runtime.site() as site:
        site.session.merge(course).fullname = fullname
        site.session.commit()


def test_an_entity_in_a_course_name_is_shown_once_escaped(world, client_as, web_runtime):
    teacher = client_as("teacher")
    rename(web_runtime, world.course, "Application &amp; Eligibility Review")
    page = teacher.get("/").get_data(as_text=True)
    assert "Application &amp; Eligibility Review" in page
    assert "&amp;amp;" not in page

    rename(web_runtime, world.course, "Maths &lt;b&gt;bold&lt;/b&gt;")
    page = teacher.get("/").get_data(as_text=True)
    assert "Maths &lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold" not in page


def test_user_text_is_escaped_everywhere(world, client_as, web_runtime):
    with web_runtime.site() as site, site.atomic():
        from enrolkit.models import User

        site.session.get(User, world.student.id).firstname = "<script>alert(1)</script>"
    for url in (f"/course/{world.course.id}/manage/participants", "/admin/users"):
        page = client_as("admin").get(url).get_data(as_text=True)
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
