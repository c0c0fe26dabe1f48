"""The framework of "Enrol me" for plugin authors: input loaded by the method's schema, every
offer of every method, an 0.1 method still working with a deprecation warning, secret settings,
and plugins' own web pages behind the core's permission decorators."""

from __future__ import annotations

import pytest
from enrolkit import Change, CourseAccess, EnrolMethod, Plan, SettingsError, access, hookimpl
from enrolkit.errors import EnrolkitError, Refused
from enrolkit.fields import NOT_SET, SET, Secret, SecretInput, matches, shown
from enrolkit.models import EnrolInstance, UserEnrolment
from marshmallow import Schema, fields
from sqlalchemy import select


class Answer(Schema):
    colour = fields.String(required=True)
    pin = SecretInput(load_default="")


class AskingMethod(EnrolMethod):
    """Asks a colour; remembers what it received."""

    name = "asking"
    enrol_me_schema = Answer
    received: list = []

    def confirm_enrolment(self, site, instance, user, data):
        type(self).received.append(data)
        if data["colour"] != "blue":
            raise Refused("only blue may enter")
        site.engine.apply(Plan(instance.id, "asked", changes=[Change(user.id)]))


class OldMethod(EnrolMethod):
    """Written for enrolkit 0.1: confirm_enrolment without data."""

    name = "old"

    def confirm_enrolment(self, site, instance, user):
        site.engine.apply(Plan(instance.id, "old style", changes=[Change(user.id)]))


class Offering:
    """Each instance of the two methods offers "Enrol me": a list from one hook call."""

    @hookimpl
    def register_methods(self, register):
        register(AskingMethod())
        register(OldMethod())

    @hookimpl
    def on_course_view(self, site, user, course, enrolled):
        if enrolled:
            return None
        found = site.session.scalars(
            select(EnrolInstance)
            .where(
                EnrolInstance.course_id == course.id, EnrolInstance.method.in_(["asking", "old"])
            )
            .order_by(EnrolInstance.id)
        )
        return [CourseAccess("confirm", f"join by {i.method}", i.id) for i in found]


@pytest.fixture
def world(any_db, make_runtime):
    from enrolkit.testing import SiteFactory

    runtime = make_runtime(plugins=(Offering(),), url=any_db)
    with runtime.site() as raw:
        site = SiteFactory(raw)
        with site.atomic():
            course = site.course("C1")
            ann = site.user("ann")
        asking = site.instance(course, "asking")
        old = site.instance(course, "old")
        AskingMethod.received = []
        yield site, course, ann, asking, old


def enrolled_in(site, instance) -> list[int]:
    site.session.expire_all()
    return list(
        site.session.scalars(
            select(UserEnrolment.user_id).where(UserEnrolment.instance_id == instance.id)
        )
    )


def test_every_offer_of_every_method_is_made(world):
    site, course, ann, asking, old = world
    view = access.view_course(site.site, ann, course)
    assert view.decision == "confirm"
    assert [(o.instance_id, o.reason) for o in view.offers] == [
        (asking.id, "join by asking"),
        (old.id, "join by old"),
    ]
    with pytest.raises(
        Refused, match=f"offers 2 enrolments; choose one by its instance id: {asking.id}, {old.id}"
    ):
        access.enrol_me(site.site, ann, course)
    with pytest.raises(Refused, match="instance 999 offers you no enrolment in C1"):
        access.enrol_me(site.site, ann, course, instance_id=999)


def test_the_method_receives_the_input_loaded_by_its_schema(world):
    site, course, ann, asking, _old = world
    with pytest.raises(SettingsError) as bad:
        access.enrol_me(site.site, ann, course, {"pin": "1"}, instance_id=asking.id)
    assert bad.value.messages == {"colour": ["Missing data for required field."]}
    with pytest.raises(SettingsError) as unknown:
        access.enrol_me(site.site, ann, course, {"colour": "blue", "x": "1"}, instance_id=asking.id)
    assert unknown.value.messages == {"x": ["Unknown field."]}
    assert AskingMethod.received == []  # nothing reaches the method before it loads
    access.enrol_me(site.site, ann, course, {"colour": "blue"}, instance_id=asking.id)
    assert AskingMethod.received == [{"colour": "blue", "pin": ""}]
    assert enrolled_in(site, asking) == [ann.id]


def test_a_refusal_is_logged_in_its_own_transaction(world):
    from enrolkit.models import LogEntry

    site, course, ann, asking, _old = world
    site.session.commit()
    with pytest.raises(Refused, match="only blue may enter"):
        access.enrol_me(site.site, ann, course, {"colour": "red"}, instance_id=asking.id)
    site.session.rollback()
    entry = site.session.scalar(select(LogEntry).where(LogEntry.event == "enrol_me_refused"))
    assert (entry.instance_id, entry.user_id, entry.reason) == (
        asking.id,
        ann.id,
        "only blue may enter",
    )


def test_a_method_of_enrolkit_0_1_still_confirms_and_is_warned_about(world):
    site, course, ann, _asking, old = world
    with pytest.warns(
        DeprecationWarning,
        match=r"OldMethod.confirm_enrolment\(site, instance, user\) is deprecated",
    ):
        access.enrol_me(site.site, ann, course, instance_id=old.id)
    assert enrolled_in(site, old) == [ann.id]


def test_a_method_that_asks_nothing_refuses_input(world):
    site, course, ann, _asking, old = world
    with pytest.raises(SettingsError) as error:
        access.enrol_me(site.site, ann, course, {"key": "x"}, instance_id=old.id)
    assert error.value.messages == {"key": ["unknown field"]}


# --- secrets -----------------------------------------------------------------------------------


class Keyed(Schema):
    key = Secret()


def test_a_secret_is_hashed_kept_on_update_cleared_when_empty_and_shown_as_set():
    schema = Keyed()
    stored = schema.load({"key": "open sesame"})["key"]
    assert stored != "open sesame" and matches(stored, "open sesame")
    assert not matches(stored, "open sesame!") and not matches("", "")
    again = schema.load({**schema.dump({"key": stored})})["key"]
    assert again == stored  # an update that leaves the secret keeps its hash
    assert schema.load({"key": ""})["key"] == ""
    assert shown(Keyed, {"key": stored}) == {"key": SET}
    assert shown(Keyed, {"key": ""}) == {"key": NOT_SET}


# --- plugins' own pages ------------------------------------------------------------------------


def pages_plugin(decorated: bool):
    from enrolkit.web import pages

    bp = pages.blueprint("enrol_pagetest", __name__)

    def hello():
        return f"hello {pages.site().origin}"

    bp.add_url_rule("/hello", view_func=pages.login_required(hello) if decorated else hello)

    class Plugin:
        @hookimpl
        def register_blueprints(self, register):
            register(bp)

    return Plugin()


def test_hook_register_blueprints_mounts_a_plugin_page_behind_the_core_guard(make_runtime):
    from enrolkit.web import create_app

    app = create_app({"TESTING": True}, runtime=make_runtime(plugins=(pages_plugin(True),)))
    response = app.test_client().get("/plugins/enrol_pagetest/hello")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_plugin_page_without_a_permission_decorator_stops_the_app(make_runtime):
    from enrolkit.web import create_app

    with pytest.raises(
        EnrolkitError, match="the plugin page enrol_pagetest.hello has no permission decorator"
    ):
        create_app({"TESTING": True}, runtime=make_runtime(plugins=(pages_plugin(False),)))
