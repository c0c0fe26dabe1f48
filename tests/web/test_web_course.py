"""Course pages through the test client: methods, participants, templates, rules, completion,
and what a student sees when opening a course."""

from __future__ import annotations

import enrolkit
import pytest
from enrolkit import CourseAccess, EnrolMethod, Plan
from enrolkit.enrolments import add_instance, enrol_manually
from enrolkit.models import CourseCompletion, EnrolInstance, LogEntry, UserEnrolment
from enrolkit.testing import SiteFactory
from enrolkit.web import create_app
from marshmallow import Schema, fields
from sqlalchemy import select


class RuleSettings(Schema):
    rule = fields.String(load_default="", metadata={"widget": "textarea"})
    welcome_template = fields.String(load_default="", metadata={"widget": "textarea"})
    group_template = fields.String(load_default="")
    mode = fields.String(load_default="confirm")


class RuleMethod(EnrolMethod):
    """A stand-in for an auto-enrol method: a rule, a welcome message, a group template, and a
    course view that offers "Enrol me" to users who match the rule."""

    name = "ruletest"
    title = "Rule test"
    instance_schema = RuleSettings

    def _rule(self, site, instance):
        return enrolkit.rules.parse(instance.settings.get("rule"), site.plugins.conditions)

    def confirm_enrolment(self, site, instance, user, data):
        site.engine.apply(Plan(instance.id, reason="confirmed", changes=[enrolkit.Change(user.id)]))


METHOD = RuleMethod()


class RulePlugin:
    @enrolkit.hookimpl
    def register_methods(self, register):
        register(METHOD)

    @enrolkit.hookimpl
    def on_course_view(self, site, user, course, enrolled):
        for instance in site.session.scalars(
            select(EnrolInstance).where(
                EnrolInstance.course_id == course.id, EnrolInstance.method == "ruletest"
            )
        ):
            rule = METHOD._rule(site, instance)
            if rule.matches(site, user):
                return CourseAccess("confirm", "you may join", instance.id)
            return CourseAccess("denied", f"the rule says no: {rule.explain(site, user)}")
        return None


@pytest.fixture
def web_runtime(make_runtime):
    runtime = make_runtime(plugins=(RulePlugin(),), entry_points=False)
    with runtime.site() as site, site.atomic():
        site.set_method_enabled("ruletest", True)
    return runtime


@pytest.fixture
def rule_instance(web_runtime, world):
    with web_runtime.site() as site:
        instance = add_instance(
            site,
            site.session.merge(world.other_course),
            "ruletest",
            {
                "rule": '{"op": "&", "c": [{"type": "profile", "sf": "department", '
                '"op": "isequalto", "v": "IT"}]}'
            },  # fmt: skip
        ).instance
        return instance.id


def test_a_student_is_denied_a_course_and_sees_why(world, client_as, rule_instance):
    student = client_as("teacher")  # teaches MATH101 only; department ''
    response = student.get(f"/course/{world.other_course.id}")
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert "You cannot open this course" in page
    assert "the rule says no" in page and "department is" in page


def test_enrol_me_confirms_a_self_enrolment(world, client_as, post, rule_instance, web_runtime):
    student = client_as("student")  # department IT: matches
    page = student.get(f"/course/{world.other_course.id}").get_data(as_text=True)
    assert "Enrol me" in page
    response = post(student, f"/course/{world.other_course.id}/enrol", follow=True)
    page = response.get_data(as_text=True)
    assert "You are in this course" in page and "Rule test" in page
    with web_runtime.site() as site:
        assert site.session.scalar(
            select(UserEnrolment.id).where(
                UserEnrolment.instance_id == rule_instance,
                UserEnrolment.user_id == world.student.id,
            )
        )


def test_the_dashboard_lists_my_courses_with_a_manage_link_for_teachers(world, client_as):
    page = client_as("teacher").get("/").get_data(as_text=True)
    assert "Maths" in page and "Physics" not in page and "/manage" in page
    page = client_as("student").get("/").get_data(as_text=True)
    assert "Maths" in page and "/manage" not in page


def test_add_edit_disable_and_delete_an_instance(world, client_as, post, web_runtime):
    teacher = client_as("teacher")
    base = f"/course/{world.course.id}/manage"
    form = teacher.get(f"{base}/add?method=ruletest").get_data(as_text=True)
    assert 'name="rule"' in form and 'name="group_template"' in form
    response = post(teacher, f"{base}/add", method="ruletest", name="Self", role="student",
                    enabled="1", rule="", mode="confirm", follow=True)  # fmt: skip
    assert "Self added." in response.get_data(as_text=True)
    with web_runtime.site() as site:
        instance = site.session.scalar(
            select(EnrolInstance).where(
                EnrolInstance.course_id == world.course.id, EnrolInstance.method == "ruletest"
            )
        )
        enrol_manually(site, world.admin, world.course)  # someone in the manual instance
    # A bad setting: the page comes back with the message beside the field, nothing saved.
    response = post(teacher, f"{base}/instance/{instance.id}", name="Self", role="nosuchrole",
                    enabled="1")  # fmt: skip
    assert response.status_code == 400
    assert "no role &#39;nosuchrole&#39;" in response.get_data(as_text=True)

    post(teacher, f"{base}/instance/{instance.id}/toggle")
    with web_runtime.site() as site:
        assert site.session.get(EnrolInstance, instance.id).enabled is False

    page = teacher.get(f"{base}/instance/{instance.id}/delete").get_data(as_text=True)
    assert "removes 0 enrolments" in page
    post(teacher, f"{base}/instance/{instance.id}/delete")
    with web_runtime.site() as site:
        assert site.session.get(EnrolInstance, instance.id) is None
        manual = site.session.scalar(
            select(EnrolInstance.id).where(
                EnrolInstance.course_id == world.course.id, EnrolInstance.method == "manual"
            )
        )
    page = teacher.get(f"{base}/instance/{manual}/delete").get_data(as_text=True)
    assert "removes 3 enrolments" in page  # teacher, student, admin


def test_participants_filter_count_and_page_in_the_database(world, web_runtime, login):
    with web_runtime.site() as raw:
        site = SiteFactory(raw)
        with raw.atomic():
            people = site.users(7, prefix="p", department="Sales")
            course = raw.session.merge(world.course)
            for user in people:
                enrol_manually(raw, user, course)
            late = site.user("late")
            enrol_manually(raw, late, course, timestart=raw.now() + 86400)
    app = create_app({"TESTING": True, "PAGE_SIZE": 4}, runtime=web_runtime)
    client = app.test_client()
    login(client, "teacher")
    url = f"/course/{world.course.id}/manage/participants"
    page = client.get(url).get_data(as_text=True)
    assert "10 enrolments" in page and "Page 1 of 3" in page
    page = client.get(url + "?page=3").get_data(as_text=True)
    assert "teacher" in page and "Page 3 of 3" in page
    assert "1 enrolment" in client.get(url + "?role=editingteacher").get_data(as_text=True)
    page = client.get(url + "?status=future").get_data(as_text=True)
    assert "1 enrolment" in page and "late" in page and "not started" in page
    assert "1 enrolment" in client.get(url + "?q=p1").get_data(as_text=True)
    assert "0 enrolments" in client.get(url + "?method=cohort").get_data(as_text=True)
    page = client.get(url + "?q=Jean").get_data(as_text=True)
    assert "1 enrolment" in page and "student" in page


def test_welcome_preview_renders_for_a_user_and_saves(world, client_as, post, rule_instance):
    admin = client_as("admin")
    url = f"/course/{world.other_course.id}/manage/welcome"
    source = "<p>Bonjour {{ user.firstname }}, bienvenue dans {{ course.fullname }}</p>"
    response = post(admin, url, source=source, user="student", action="preview")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Welcome to Physics" in page
    assert "Bonjour Jean, bienvenue dans Physics" in page  # inside the iframe's srcdoc

    bad = post(admin, url, source="{{ user.nosuchthing }}", user="student", action="preview")
    assert bad.status_code == 400 and "nosuchthing" in bad.get_data(as_text=True)

    live = post(admin, url + "/preview", source="Hi {{ user.firstname }}", user="student")
    assert live.get_json()["text"].startswith("Hi Jean")

    post(admin, url, source=source, user="student", action="save", instance=rule_instance)
    page = admin.get(f"{url}?instance={rule_instance}").get_data(as_text=True)
    assert "bienvenue dans {{ course.fullname }}" in page


def test_group_name_preview(world, client_as, post):
    admin = client_as("admin")
    url = f"/course/{world.course.id}/manage/groups"
    page = post(admin, url, source="Groupe_{department}", user="student", action="preview")
    text = page.get_data(as_text=True)
    assert "Groupe_IT" in text and "no group" in text  # the teacher has no department
    bad = post(admin, url, source="Groupe_{nosuch}", action="preview")
    assert bad.status_code == 400 and "unknown placeholder" in bad.get_data(as_text=True)


def test_rule_builder_saves_checks_and_tests_a_rule(
    world, client_as, post, rule_instance, web_runtime
):
    admin = client_as("admin")
    url = f"/course/{world.other_course.id}/manage/rules/{rule_instance}"
    page = admin.get(url).get_data(as_text=True)
    assert "rule-builder" in page and '"profile"' in page  # the registry reaches the script

    bad = post(admin, url, rule='{"op": "&", "c": [{"type": "nosuch"}]}', action="save")
    assert bad.status_code == 400
    assert "c[0].type: unknown condition type" in bad.get_data(as_text=True)

    rule = '{"op": "|", "c": [{"type": "cohort", "id": "promo"}, {"type": "badge", "id": "Gone"}]}'
    saved = post(admin, url, rule=rule, action="save", follow=True)
    assert "The rule is saved." in saved.get_data(as_text=True)
    assert "no badge" in saved.get_data(as_text=True)  # a warning, not a refusal
    with web_runtime.site() as site:
        assert "promo" in site.session.get(EnrolInstance, rule_instance).settings["rule"]

    tested = post(admin, url, rule=rule, action="test", user="student")
    text = tested.get_data(as_text=True)
    assert "student matches" in text and "promo" in text
    tested = post(admin, url, rule=rule, action="test", user="teacher")
    assert "teacher does not match" in tested.get_data(as_text=True)


def test_completion_report_and_learning_path(world, client_as, post, web_runtime):
    with web_runtime.site() as raw:
        site = SiteFactory(raw)
        with raw.atomic():
            third = site.course("CHEM101", fullname="Chemistry")
            for target, source in ((world.other_course.id, "MATH101"), (third.id, "PHYS101")):
                raw.session.add(
                    EnrolInstance(
                        course_id=target, method="completion", settings={"source": source}
                    )
                )
    teacher = client_as("teacher")
    url = f"/course/{world.course.id}/manage/completion"
    page = teacher.get(url).get_data(as_text=True)
    assert page.count("<rect") == 3 and page.count("<line") == 2
    assert "MATH101" in page and "CHEM101" in page

    post(teacher, url, username="student", time="2026-06-30")
    with web_runtime.site() as site:
        done = site.session.get(CourseCompletion, (world.student.id, world.course.id))
        assert done.timecompleted == 1782777600
        assert site.session.scalar(select(LogEntry.id).where(LogEntry.event == "course_completed"))
    page = teacher.get(url).get_data(as_text=True)
    assert "student" in page and "30 Jun 2026" in page  # the reader's date format (English here)
