"""Site admin pages through the test client."""

from __future__ import annotations

import io

import enrolkit
import pytest
from enrolkit import Plan
from enrolkit.enrolments import enrol_manually
from enrolkit.mail import queue
from enrolkit.models import (
    CATEGORY,
    Cohort,
    CohortMember,
    EnrolInstance,
    HeldPlan,
    RoleAssignment,
    ScheduledTask,
    User,
    UserEnrolment,
)
from enrolkit.testing import SiteFactory
from sqlalchemy import func, select


class Recorder:
    """Sees the hooks the admin pages must fire."""

    def __init__(self):
        self.profiles = []

    @enrolkit.hookimpl
    def profile_changed(self, site, change):
        self.profiles.append(change)


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def web_runtime(make_runtime, recorder):
    return make_runtime(plugins=(recorder,), entry_points=False)


def test_methods_enable_disable_order_and_settings_with_field_errors(client_as, post, web_runtime):
    admin = client_as("admin")
    page = admin.get("/admin/methods").get_data(as_text=True)
    assert "Manual enrolments" in page and "enrolkit" in page and "0.1.0" in page
    post(admin, "/admin/methods/manual/toggle")
    with web_runtime.site() as site:
        assert not site.method_enabled("manual")
    post(admin, "/admin/methods/manual/toggle")

    bad = post(admin, "/admin/methods/manual/settings", expiry_action="explode")
    assert bad.status_code == 400
    text = bad.get_data(as_text=True)
    assert 'class="field has-error"' in text and "Must be one of" in text
    post(admin, "/admin/methods/manual/settings", expiry_action="suspend")
    with web_runtime.site() as site:
        assert site.method_settings("manual")["expiry_action"] == "suspend"


def test_method_order_moves(post, make_runtime, login, hashed_password):
    class Second(enrolkit.EnrolMethod):
        name, title, enabled_by_default = "second", "Second", True

    class Plugin:
        @enrolkit.hookimpl
        def register_methods(self, register):
            register(Second())

    from enrolkit.web import create_app

    runtime = make_runtime(plugins=(Plugin(),))
    with runtime.site() as raw, raw.atomic():
        SiteFactory(raw).user("boss", siteadmin=True, password_hash=hashed_password)
    app = create_app({"TESTING": True}, runtime=runtime)
    client = app.test_client()
    login(client, "boss")
    with runtime.site() as site:
        first, last = site.enabled_methods()
    post(client, f"/admin/methods/{last}/move", direction="up")
    with runtime.site() as site:
        assert site.enabled_methods() == [last, first]
    post(client, f"/admin/methods/{last}/move", direction="down")
    with runtime.site() as site:
        assert site.enabled_methods() == [first, last]


def test_user_search_and_profile_edit_fire_profile_changed(
    world, client_as, post, recorder, web_runtime
):
    admin = client_as("admin")
    page = admin.get("/admin/users?q=dupont").get_data(as_text=True)
    assert "1 user" in page and "student" in page
    response = post(
        admin,
        f"/admin/users/{world.student.id}",
        firstname="Jean",
        lastname="Dupont",
        email="jean@example.org",
        department="Support",
        follow=True,
    )
    assert "Saved:" in response.get_data(as_text=True)
    assert recorder.profiles and recorder.profiles[-1].user_ids == (world.student.id,)
    assert "department" in recorder.profiles[-1].fields
    bad = post(admin, f"/admin/users/{world.student.id}", email="not-an-address", follow=True)
    assert "is not an email address" in bad.get_data(as_text=True)
    with web_runtime.site() as site:
        assert site.session.get(User, world.student.id).email == "jean@example.org"


def test_admin_sets_a_password_and_cannot_demote_themselves(
    world, client_as, post, web_runtime, login, app
):
    admin = client_as("admin")
    post(admin, f"/admin/users/{world.student.id}", action="password",
         password="brand-new-pass", confirm="brand-new-pass")  # fmt: skip
    assert login(app.test_client(), "student", "brand-new-pass").status_code == 302
    response = post(admin, f"/admin/users/{world.admin.id}", action="admin", siteadmin="0",
                    follow=True)  # fmt: skip
    assert "cannot remove your own admin rights" in response.get_data(as_text=True)
    post(admin, f"/admin/users/{world.teacher.id}", action="admin", siteadmin="1")
    with web_runtime.site() as site:
        assert site.session.get(User, world.teacher.id).siteadmin
        assert site.session.get(User, world.admin.id).siteadmin


def test_categories_and_category_role_assignments(world, client_as, post, web_runtime):
    admin = client_as("admin")
    post(admin, "/admin/categories", path="Arts / Music")
    assert "Arts / Music" in admin.get("/admin/categories").get_data(as_text=True)
    url = f"/admin/categories/{world.category.id}"
    post(admin, url, action="assign", role="manager", username="teacher")
    with web_runtime.site() as site:
        held = site.session.scalar(
            select(RoleAssignment).where(
                RoleAssignment.contextlevel == CATEGORY,
                RoleAssignment.instanceid == world.category.id,
            )
        )
        assert held.user_id == world.teacher.id
    assert "Claire Martin" in admin.get(url).get_data(as_text=True)
    post(admin, url, action="unassign", role="manager", username="teacher")
    with web_runtime.site() as site:
        assert not site.session.scalar(select(func.count()).select_from(RoleAssignment).where(
            RoleAssignment.contextlevel == CATEGORY))  # fmt: skip


def test_cohorts_create_members_csv_and_delete(world, client_as, post, web_runtime, csrf):
    admin = client_as("admin")
    post(admin, "/admin/cohorts", idnumber="staff", name="Staff", category="Sciences")
    with web_runtime.site() as site:
        staff = site.session.scalar(select(Cohort).where(Cohort.idnumber == "staff"))
    url = f"/admin/cohorts/{staff.id}"
    post(admin, url, action="add", usernames="teacher, student\nother")
    response = post(admin, url, action="add", usernames="nobody", follow=True)
    assert "no user with username &#39;nobody&#39;" in response.get_data(as_text=True)
    post(admin, url, action="remove", usernames="other")
    with web_runtime.site() as site:
        members = site.session.scalar(
            select(func.count()).where(CohortMember.cohort_id == staff.id)
        )
    assert members == 2
    assert "2 members" in admin.get(url).get_data(as_text=True)

    upload = io.BytesIO(b"idnumber,name\nc1,First\nc2,Second\n,broken\n")
    response = admin.post(
        "/admin/cohorts",
        data={"csrf_token": csrf(admin), "file": (upload, "cohorts.csv")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    text = response.get_data(as_text=True)
    assert "2 created, 0 updated." in text and "cohorts.csv:4" in text
    post(admin, f"{url}/delete")
    with web_runtime.site() as site:
        names = set(site.session.scalars(select(Cohort.idnumber)))
    assert names == {"promo", "c1", "c2"}


def test_tasks_schedule_and_run_now(client_as, post, web_runtime):
    admin = client_as("admin")
    page = admin.get("/admin/tasks").get_data(as_text=True)
    with web_runtime.site() as site:
        name = sorted(site.plugins.tasks)[0]
    assert name in page
    bad = post(admin, f"/admin/tasks/{name}", schedule="every tuesday", enabled="1", follow=True)
    assert "schedule of task" in bad.get_data(as_text=True)
    post(admin, f"/admin/tasks/{name}", schedule="*/5 * * * *", enabled="1")
    post(admin, f"/admin/tasks/{name}/run")
    with web_runtime.site() as site:
        row = site.session.get(ScheduledTask, name)
    assert row.schedule == "*/5 * * * *" and row.last_run > 0 and row.last_result


def test_logs_filter_and_mail_outbox(world, client_as, web_runtime):
    with web_runtime.site() as site, site.atomic():
        queue(site, to="jean@example.org", subject="Bienvenue <b>", body="Hello", html="<p>Hi</p>")
    admin = client_as("admin")
    page = admin.get("/admin/logs?event=user_loggedin").get_data(as_text=True)
    assert "<td>User loggedin</td>" in page and "User enrolled" not in page
    page = admin.get("/admin/logs?course=MATH101").get_data(as_text=True)
    assert "<td>User enrolled</td>" in page
    assert admin.get("/admin/logs?course=NOPE").status_code == 400
    page = admin.get("/admin/mail").get_data(as_text=True)
    assert "Bienvenue &lt;b&gt;" in page and "queued" in page


def test_a_held_plan_shows_its_diff_and_is_approved(world, client_as, post, web_runtime):
    with web_runtime.site() as raw:
        site = SiteFactory(raw)
        with raw.atomic():
            course = raw.session.merge(world.other_course)
            for user in site.users(12, prefix="h"):
                enrol_manually(raw, user, course)
            instance = raw.session.scalar(
                select(EnrolInstance).where(EnrolInstance.course_id == course.id)
            )
            outcome = raw.engine.apply(
                Plan(instance.id, reason="source emptied", desired=[], removal="unenrol")
            )
    assert outcome.held_plan_id
    admin = client_as("admin")
    page = admin.get(f"/admin/plans/{outcome.held_plan_id}").get_data(as_text=True)
    assert "would remove 13 of 13 enrolments" in page and "h1" in page
    post(admin, f"/admin/plans/{outcome.held_plan_id}/approve")
    with web_runtime.site() as site:
        assert site.session.get(HeldPlan, outcome.held_plan_id).status == "approved"
        assert site.session.get(HeldPlan, outcome.held_plan_id).decided_by == "admin"
        left = site.session.scalar(
            select(func.count()).where(UserEnrolment.instance_id == instance.id)
        )
    assert left == 0


def test_a_method_that_refuses_to_be_enabled_says_why_and_stays_off(
    post, make_runtime, login, hashed_password
):
    class Refusing(enrolkit.EnrolMethod):
        name, title = "refusing", "Refusing"

        def site_enabled(self, site):
            raise enrolkit.EnrolkitError("the drop folder cannot be made")

    class Plugin:
        @enrolkit.hookimpl
        def register_methods(self, register):
            register(Refusing())

    from enrolkit.web import create_app

    runtime = make_runtime(plugins=(Plugin(),))
    with runtime.site() as raw, raw.atomic():
        SiteFactory(raw).user("boss", siteadmin=True, password_hash=hashed_password)
    client = create_app({"TESTING": True}, runtime=runtime).test_client()
    login(client, "boss")
    response = post(client, "/admin/methods/refusing/toggle")
    assert response.status_code in (302, 303)
    page = client.get("/admin/methods").get_data(as_text=True)
    assert "the drop folder cannot be made" in page
    with runtime.site() as site:
        assert not site.method_enabled("refusing")
