"""Every route, as anonymous, student, teacher and admin: who is refused (a teacher on another
teacher's course, a student at the pickers too), and that no state-changing request gets through
without a valid CSRF token. On every database backend.

The routes come from ``app.url_map``, so a new page is walked as soon as it exists; a view that
carries no permission decorator fails here.
"""

from __future__ import annotations

import pytest
from enrolkit.models import (
    CohortMember,
    Config,
    EnrolInstance,
    HeldPlan,
    MailMessage,
    ProfileField,
    RoleAssignment,
    UserEnrolment,
    WebhookDelivery,
    WebhookSubscription,
)
from enrolkit.web.guards import ADMIN, PUBLIC, STAFF, TEACHER, USER
from sqlalchemy import func, select

ROLES = (None, "student", "teacher", "admin")
#: Who may use a route of each audience.
ALLOWED = {
    PUBLIC: set(ROLES),
    USER: {"student", "teacher", "admin"},
    TEACHER: {"teacher", "admin"},
    STAFF: {"teacher", "admin"},
    ADMIN: {"admin"},
}


@pytest.fixture
def samples(app, world, web_runtime):
    """A value for each URL variable, naming things that exist."""
    with web_runtime.site() as site, site.atomic():
        instance = site.session.scalar(
            select(EnrolInstance).where(EnrolInstance.course_id == world.course.id)
        )
        held = HeldPlan(instance_id=instance.id, status="held", summary={}, payload={"rows": []})
        mail = MailMessage(to="a@example.org", subject="Hello", body="Hi")
        hook = WebhookSubscription(url="http://127.0.0.1:9/hook", events="user_enrolled", secret="")
        field = ProfileField(shortname="campus", name="Campus")
        site.session.add_all([held, mail, hook, field])
        site.session.flush()
        delivery = WebhookDelivery(subscription_id=hook.id, msg_id="msg_walk", body="{}")
        site.session.add(delivery)
        site.session.flush()
        values = {
            "course_id": world.course.id,
            "instance_id": instance.id,
            "user_id": world.student.id,
            "cohort_id": world.cohort.id,
            "category_id": world.category.id,
            "plan_id": held.id,
            "message_id": mail.id,
            "subscription_id": hook.id,
            "delivery_id": delivery.id,
            "field_id": field.id,
            "action": "disable",
            "name": "manual",
            "decision": "discard",
            "filename": "style.css",
            "file_id": _flatfile_journal(site),
            "kind": "users",
            "enrolment_id": site.session.scalar(
                select(UserEnrolment.id).where(UserEnrolment.instance_id == instance.id).limit(1)
            ),
        }
    with web_runtime.site() as site:
        values["name"] = "manual"
        task = sorted(site.plugins.tasks)[0]
    return values, task


def _flatfile_journal(site) -> int:
    """A processed-file row for the flat-file pages, when that plugin is installed."""
    try:
        from enrol_flatfile.models import FlatfileFile
    except ImportError:
        return 1
    row = FlatfileFile(name="x.csv", size=0, mtime_ns=0, sha256="0" * 64, status="finished")
    site.session.add(row)
    site.session.flush()
    return row.id


#: The REST API authenticates by bearer token, not by session and form token; its own tests walk
#: its permissions.
API_PREFIX = "/api/"


def _routes(app):
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(API_PREFIX):
            continue
        methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
        yield rule, methods


def _url(app, rule, values, task, own_id):
    kwargs = {name: values[name] for name in rule.arguments}
    if "name" in rule.arguments and rule.endpoint.startswith("admin.task"):
        kwargs["name"] = task
    if rule.endpoint == "people.profile":
        kwargs["user_id"] = own_id
    with app.test_request_context():
        from flask import url_for

        return url_for(rule.endpoint, **kwargs)


def _audience(app, rule) -> str:
    if rule.endpoint == "static":
        return PUBLIC
    view = app.view_functions[rule.endpoint]
    audience = getattr(view, "permission", None)
    assert audience in ALLOWED, f"{rule.rule} ({rule.endpoint}) has no permission decorator"
    return audience


def _refused(response) -> bool:
    if response.status_code == 403:
        return True
    return response.status_code == 302 and "/login" in response.headers["Location"]


def _fingerprint(runtime) -> tuple:
    """What a refused post must leave as it was."""
    with runtime.site() as site:
        count = lambda model: site.session.scalar(select(func.count()).select_from(model))  # noqa: E731
        return (
            count(EnrolInstance),
            count(UserEnrolment),
            count(CohortMember),
            count(RoleAssignment),
            count(Config),
            tuple(site.session.scalars(select(HeldPlan.status).order_by(HeldPlan.id))),
            tuple(site.session.scalars(select(Config.value).order_by(Config.name))),
            tuple(site.session.scalars(select(WebhookSubscription.status))),
            tuple(site.session.scalars(select(WebhookDelivery.next_attempt))),
            tuple(site.session.scalars(select(ProfileField.shortname).order_by(ProfileField.id))),
        )


def test_every_route_refuses_whom_it_must(app, world, samples, client_as, web_runtime, csrf):
    values, task = samples
    clients = {role: client_as(role) for role in ROLES}
    own = {None: world.student.id, "student": world.student.id, "teacher": world.teacher.id}
    own["admin"] = world.admin.id
    before = _fingerprint(web_runtime)
    walked = 0
    for rule, methods in _routes(app):
        audience = _audience(app, rule)
        for role in ROLES:
            url = _url(app, rule, values, task, own[role])
            client = clients[role]
            allowed = role in ALLOWED[audience]
            if "GET" in methods:
                response = client.get(url)
                response.close()  # a static file's response holds the file open
                walked += 1
                assert _refused(response) != allowed, (role, "GET", url, response.status_code)
                if allowed:
                    assert response.status_code < 400 or (
                        rule.endpoint == "course.rule" and response.status_code == 404
                    ), (role, url, response.status_code)
                if role is None and not allowed:
                    assert "/login" in response.headers["Location"]
            if "POST" in methods and not allowed:
                response = client.post(url, data={"csrf_token": csrf(client)})
                walked += 1
                assert _refused(response), (role, "POST", url, response.status_code)
    assert walked > 60
    assert _fingerprint(web_runtime) == before, "a refused request changed something"


def test_a_teacher_is_refused_every_page_of_another_teachers_course(
    app, world, samples, client_as, web_runtime, csrf
):
    values, task = samples
    with web_runtime.site() as site:
        other_instance = site.session.scalar(
            select(EnrolInstance.id).where(EnrolInstance.course_id == world.other_course.id)
        )
    values = {**values, "course_id": world.other_course.id, "instance_id": other_instance}
    teacher = client_as("teacher")
    before = _fingerprint(web_runtime)
    checked = 0
    for rule, methods in _routes(app):
        if _audience(app, rule) != TEACHER:
            continue
        url = _url(app, rule, values, task, world.teacher.id)
        for method in methods:
            data = {"csrf_token": csrf(teacher)} if method == "POST" else None
            response = teacher.open(url, method=method, data=data)
            assert response.status_code == 403, (method, url, response.status_code)
            checked += 1
    assert checked >= 10
    assert _fingerprint(web_runtime) == before


def test_an_instance_of_another_course_is_not_found_through_my_course(
    world, client_as, web_runtime
):
    with web_runtime.site() as site:
        foreign = site.session.scalar(
            select(EnrolInstance.id).where(EnrolInstance.course_id == world.other_course.id)
        )
    teacher = client_as("teacher")
    url = f"/course/{world.course.id}/manage/instance/{foreign}"
    assert teacher.get(url).status_code == 404
    assert teacher.get(url + "/delete").status_code == 404


def test_no_state_changing_route_accepts_a_missing_or_forged_csrf_token(
    app, samples, client_as, web_runtime, world
):
    values, task = samples
    admin = client_as("admin")
    before = _fingerprint(web_runtime)
    posts = 0
    for rule, methods in _routes(app):
        if "POST" not in methods:
            continue
        url = _url(app, rule, values, task, world.admin.id)
        for data in ({}, {"csrf_token": "forged"}):
            response = admin.post(url, data=data)
            assert response.status_code == 400, (url, data, response.status_code)
            assert "did not come from this site" in response.get_data(as_text=True)
        posts += 1
    assert posts >= 20
    assert _fingerprint(web_runtime) == before
    # The login form too: no token, no login.
    anonymous = client_as(None)
    response = anonymous.post("/login", data={"username": "admin", "password": "x"})
    assert response.status_code == 400


def test_pickers_refuse_students_and_anonymous(world, client_as):
    assert client_as("student").get("/web/pick/users?q=a").status_code == 403
    assert client_as(None).get("/web/pick/users?q=a").status_code == 302
