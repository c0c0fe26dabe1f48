"""The pages a Moodle admin and a course team use daily: pickers, users, courses, categories,
groups, one enrolment, "Enrol users", pending enrolments, a user's page and the admin home.
Each page's main action, and who is refused."""

from __future__ import annotations

import io

import pytest
from enrolkit import clock
from enrolkit.access import complete_course
from enrolkit.enrolments import add_instance
from enrolkit.models import (
    Category,
    Course,
    Group,
    GroupMember,
    MailMessage,
    PendingAction,
    ProfileField,
    User,
    UserEnrolment,
)
from sqlalchemy import func, select


def _user(runtime, username):
    with runtime.site() as site:
        return site.session.scalar(select(User).where(User.username == username))


# --- pickers ---------------------------------------------------------------------------------


def test_pickers_answer_course_managers_page_by_page(world, client_as, web_runtime):
    teacher = client_as("teacher")
    found = teacher.get("/web/pick/users?q=dup").get_json()
    assert found == {
        "results": [{"value": "student", "label": "Jean Dupont (student)"}],
        "page": 1,
        "more": False,
    }
    assert teacher.get("/web/pick/cohorts?q=pro").get_json()["results"][0]["value"] == "promo"
    assert [r["value"] for r in teacher.get("/web/pick/courses?q=101").get_json()["results"]] == [
        "MATH101",
        "PHYS101",
    ]
    assert "Sciences / Mathematics" in [
        r["value"] for r in teacher.get("/web/pick/categories?q=math").get_json()["results"]
    ]
    assert teacher.get("/web/pick/roles?q=stud").get_json()["results"][0]["value"] == "student"
    with web_runtime.site() as site, site.atomic():
        for n in range(25):
            site.session.add(User(username=f"bulk{n:02}", lastname="Bulk"))
    first = teacher.get("/web/pick/users?q=bulk").get_json()
    second = teacher.get("/web/pick/users?q=bulk&page=2").get_json()
    assert len(first["results"]) == 20 and first["more"] is True
    assert len(second["results"]) == 5 and second["more"] is False
    # A LIKE wildcard is taken literally, not as "anything".
    assert teacher.get("/web/pick/users?q=%25").get_json()["results"] == []


def test_the_settings_form_offers_the_picker(world, client_as, web_runtime):
    with web_runtime.site() as site, site.atomic():
        site.set_method_enabled("cohort", True)
    page = client_as("teacher").get(f"/course/{world.course.id}/manage/add?method=cohort")
    html = page.get_data(as_text=True)
    assert 'name="cohort" value="" data-pick="cohorts"' in html
    assert "picker.js" in html


# --- users -----------------------------------------------------------------------------------


def test_admin_creates_a_user_and_students_cannot(world, client_as, post, web_runtime):
    admin = client_as("admin")
    done = post(admin, "/admin/users/new", username="chloe", firstname="Chloé",
                lastname="Bernard", email="chloe@example.org", department="IT", lang="fr",
                password="long-enough-1", follow=True)  # fmt: skip
    assert "User chloe created." in done.get_data(as_text=True)
    chloe = _user(web_runtime, "chloe")
    assert (chloe.firstname, chloe.lang, chloe.department) == ("Chloé", "fr", "IT")
    taken = post(admin, "/admin/users/new", username="chloe", firstname="X", lastname="Y",
                 email="x@example.org")  # fmt: skip
    assert taken.status_code == 400 and "is taken" in taken.get_data(as_text=True)
    student = client_as("student")
    assert student.get("/admin/users/new").status_code == 403
    assert post(student, "/admin/users/new", username="evil").status_code == 403
    assert _user(web_runtime, "evil") is None


def test_admin_deletes_a_user_who_leaves_courses_and_cohorts(world, client_as, post, web_runtime):
    admin = client_as("admin")
    page = admin.get(f"/admin/users/{world.student.id}/delete").get_data(as_text=True)
    assert "loses 1 enrolment" in page
    assert client_as("teacher").get(f"/admin/users/{world.student.id}/delete").status_code == 403
    post(admin, f"/admin/users/{world.student.id}/delete")
    with web_runtime.site() as site:
        user = site.session.get(User, world.student.id)
        assert user.deleted and user.suspended
        left = (
            select(func.count()).select_from(UserEnrolment).where(UserEnrolment.user_id == user.id)
        )
        assert site.session.scalar(left) == 0
    assert admin.get(f"/admin/users/{world.student.id}").status_code == 404


def test_upload_users_reports_the_rejected_lines(world, client_as, csrf, web_runtime):
    admin = client_as("admin")
    csv = (
        "username,email,firstname,lastname,profile_field_team\n"
        "paul,paul@example.org,Paul,Durand,Blue\n"
        "bad,not-an-email,Bad,Line,Red\n"
        "student,jean@example.org,Jean,Dupont,Red\n"
    )
    response = admin.post(
        "/admin/users/upload",
        data={"csrf_token": csrf(admin), "file": (io.BytesIO(csv.encode()), "people.csv")},
        content_type="multipart/form-data",
    )
    page = response.get_data(as_text=True)
    assert "1 created, 1 updated." in page and "1 line rejected." in page
    assert "<td>3</td>" in page and "email" in page
    assert _user(web_runtime, "paul") is not None and _user(web_runtime, "bad") is None


def test_profile_fields_are_listed_and_added(world, client_as, post, web_runtime):
    admin = client_as("admin")
    post(admin, "/admin/profile-fields", shortname="campus", name="Campus")
    refused = post(admin, "/admin/profile-fields", shortname="Bad Name", follow=True)
    assert "Short name: use lower-case letters" in refused.get_data(as_text=True)
    with web_runtime.site() as site:
        names = site.session.scalars(select(ProfileField.shortname)).all()
    assert names == ["campus"]
    assert "Campus" in admin.get("/admin/profile-fields").get_data(as_text=True)
    assert client_as("teacher").get("/admin/profile-fields").status_code == 403


def test_a_users_page_shows_enrolments_cohorts_and_profile_fields(world, client_as):
    page = client_as("admin").get(f"/admin/users/{world.student.id}").get_data(as_text=True)
    enrolments = page[
        page.index('id="enrolments"') : page.index("</table>", page.index('id="enrolments"'))
    ]
    assert "Maths" in enrolments and "Manual enrolments" in enrolments
    assert "promo" in page[page.index('id="cohorts"') :]
    assert 'name="department" value="IT"' in page


# --- courses and categories ------------------------------------------------------------------


def test_admin_creates_edits_and_deletes_a_course(world, client_as, post, web_runtime):
    admin = client_as("admin")
    post(admin, "/admin/courses/new", shortname="CHEM101", fullname="Chimie",
         category="Sciences / Chemistry", startdate="2026-09-01", visible="1")  # fmt: skip
    with web_runtime.site() as site:
        course = site.session.scalar(select(Course).where(Course.shortname == "CHEM101"))
        assert course.fullname == "Chimie" and course.startdate == 1788220800
    post(admin, f"/admin/courses/{course.id}/edit", fullname="Chimie générale",
         category="Sciences", startdate="2026-09-01")  # fmt: skip
    with web_runtime.site() as site:
        course = site.session.get(Course, course.id)
        assert course.fullname == "Chimie générale" and course.visible is False
        assert course.category_id == world.category.id
    assert "0 enrolments" in admin.get(f"/admin/courses/{course.id}/delete").get_data(as_text=True)
    post(admin, f"/admin/courses/{course.id}/delete")
    with web_runtime.site() as site:
        assert site.session.get(Course, course.id) is None
    assert client_as("teacher").get("/admin/courses/new").status_code == 403


def test_admin_renames_moves_and_deletes_a_category_moving_its_courses(
    world, client_as, post, web_runtime
):
    admin = client_as("admin")
    with web_runtime.site() as site:
        maths = site.session.get(Course, world.course.id).category_id
        physics = site.session.get(Course, world.other_course.id).category_id
    post(admin, f"/admin/categories/{maths}/edit", name="Maths", parent="")
    with web_runtime.site() as site:
        moved = site.session.get(Category, maths)
        assert (moved.name, moved.parent_id) == ("Maths", None)
    page = admin.get(f"/admin/categories/{maths}/delete").get_data(as_text=True)
    assert "0 subcategories and 1 courses" in page
    post(admin, f"/admin/categories/{maths}/delete", content="move",
         move_to="Sciences / Physics")  # fmt: skip
    with web_runtime.site() as site:
        assert site.session.get(Category, maths) is None
        assert site.session.get(Course, world.course.id).category_id == physics
    refused = post(admin, f"/admin/categories/{physics}/delete", content="move", follow=True)
    assert "is not empty" in refused.get_data(as_text=True)


# --- course pages ----------------------------------------------------------------------------


def test_teacher_creates_a_group_and_adds_a_member(world, client_as, post, web_runtime):
    teacher = client_as("teacher")
    base = f"/course/{world.course.id}/manage"
    post(teacher, f"{base}/groups/create", name="Groupe A")
    with web_runtime.site() as site:
        group = site.session.scalar(select(Group).where(Group.name == "Groupe A"))
    done = post(teacher, f"{base}/groups/add-member", group=str(group.id), username="student",
                follow=True)  # fmt: skip
    assert "Jean Dupont is in Groupe A." in done.get_data(as_text=True)
    outsider = post(teacher, f"{base}/groups/add-member", group=str(group.id), username="other",
                    follow=True)  # fmt: skip
    assert "not enrolled in MATH101: other" in outsider.get_data(as_text=True)
    with web_runtime.site() as site:
        assert site.session.scalar(select(func.count()).select_from(GroupMember)) == 1
    assert "Groupe A" in teacher.get(f"{base}/groups").get_data(as_text=True)


def test_teacher_edits_one_enrolments_dates_and_status(world, client_as, post, web_runtime):
    with web_runtime.site() as site:
        enrolment = site.session.scalar(
            select(UserEnrolment).where(UserEnrolment.user_id == world.student.id)
        )
    teacher = client_as("teacher")
    url = f"/course/{world.course.id}/manage/enrolment/{enrolment.id}"
    assert 'type="date"' in teacher.get(url).get_data(as_text=True)
    post(teacher, url, status="suspended", timestart="2026-01-05", timeend="2026-12-31")
    with web_runtime.site() as site:
        saved = site.session.get(UserEnrolment, enrolment.id)
        assert (saved.status, saved.timestart, saved.timeend) == (1, 1767571200, 1798675200)
    bad = post(teacher, url, status="active", timestart="2026-12-31", timeend="2026-01-01",
               follow=True)  # fmt: skip
    assert "must come after the start" in bad.get_data(as_text=True)
    assert client_as("student").get(url).status_code == 403


def test_enrol_users_several_at_once_and_a_cohort(world, client_as, post, web_runtime):
    with web_runtime.site() as site, site.atomic():
        for name in ("ana", "ben"):
            site.session.add(User(username=name, firstname=name.title(), lastname="X"))
    teacher = client_as("teacher")
    url = f"/course/{world.course.id}/manage/participants/enrol-users"
    done = post(teacher, url, usernames="ana, ben\nghost", role="student",
                timeend="2027-06-30", follow=True)  # fmt: skip
    page = done.get_data(as_text=True)
    assert "2 users enrolled." in page and "ghost: no user" in page
    with web_runtime.site() as site:
        ana = site.session.scalar(select(UserEnrolment).join(User).where(User.username == "ana"))
        assert ana.timeend == 1814313600
    cohort = post(teacher, f"/course/{world.other_course.id}/manage/participants/enrol-users",
                  cohort="promo", role="student")  # fmt: skip
    assert cohort.status_code == 403  # not her course
    admin = client_as("admin")
    post(admin, f"/course/{world.other_course.id}/manage/participants/enrol-users",
         cohort="promo", role="student")  # fmt: skip
    with web_runtime.site() as site:
        enrolled = site.session.scalar(
            select(func.count())
            .select_from(UserEnrolment)
            .join(User)
            .where(User.username == "student")
        )
        assert enrolled == 2


def test_a_delayed_completion_enrolment_appears_as_pending(world, client_as, web_runtime):
    pytest.importorskip("enrol_completion")
    with web_runtime.site() as site:
        with site.atomic():
            site.set_method_enabled("completion", True)
        other = site.session.get(Course, world.other_course.id)
        add_instance(site, other, "completion", {"source": "MATH101", "delay": "2d"})
        student = site.session.get(User, world.student.id)
        course = site.session.get(Course, world.course.id)
        with site.atomic():
            complete_course(site, student, course, clock.now())
        assert site.session.scalar(select(func.count()).select_from(PendingAction)) == 1
    page = client_as("admin").get("/admin/pending").get_data(as_text=True)
    table = page[page.index('id="pending"') :]
    assert "Jean Dupont" in table and "PHYS101" in table and "enrol" in table
    course_page = client_as("other").get(f"/course/{world.other_course.id}/manage/pending")
    assert "Jean Dupont" in course_page.get_data(as_text=True)
    assert client_as("student").get("/admin/pending").status_code == 403
    home = client_as("admin").get("/admin/").get_data(as_text=True)
    assert "1 enrolment change is scheduled." in home


def test_the_admin_home_says_what_needs_attention(world, client_as, web_runtime):
    admin = client_as("admin")
    home = admin.get("/admin/").get_data(as_text=True)
    assert "Cron has never run" in home
    with web_runtime.site() as site, site.atomic():
        site.session.add(MailMessage(to="a@example.org", subject="S", body="B", status="failed"))
    home = admin.get("/admin/").get_data(as_text=True)
    assert "1 message could not be sent." in home


def test_the_welcome_preview_links_to_the_serving_host(world, client_as):
    teacher = client_as("teacher")
    page = teacher.get(
        f"/course/{world.course.id}/manage/welcome", base_url="http://localhost:8123"
    ).get_data(as_text=True)
    assert "http://localhost:8123/course/" in page
    assert "127.0.0.1:5000" not in page
    assert "font:16px/1.5 system-ui" in page


def test_the_add_forms_rule_tester_explains_an_unsaved_rule(world, client_as, post):
    teacher = client_as("teacher")
    url = f"/course/{world.course.id}/manage/rules/try"
    rule = (
        '{"op": "&", "c": [{"type": "profile", "sf": "department", "op": "isequalto", "v": "IT"}]}'
    )
    answer = post(teacher, url, rule=rule, user="student").get_json()
    assert answer["passed"] is True and answer["heading"] == "student matches"
    assert answer["lines"][1] == {"depth": 1, "passed": True, "text": "profile: department is 'IT'"}
    bad = post(teacher, url, rule='{"op": "&", "c": [{"type": "profile", "cf": "dept", "op": '
               '"isempty"}]}', user="student")  # fmt: skip
    assert (
        bad.status_code == 400 and "unknown custom profile field 'dept'" in bad.get_json()["error"]
    )
    assert post(client_as("student"), url, rule=rule, user="student").status_code == 403
