"""View mode (Marie opens the course and is let in), denials that say why, the redirect setting,
and confirm mode ("Enrol me")."""

from __future__ import annotations

import pytest
from autoenrol_helpers import DAY, active, events, profile, rows, rule
from enrolkit import access
from enrolkit.errors import Refused
from enrolkit.people import login, set_fields

IT_ONLY = rule({"op": "&", "c": [profile("department", "IT")]})


def test_marie_opens_the_course_matches_and_is_let_in(ae, clock):
    marie, paul = ae.user("marie", department="IT"), ae.user("paul", department="Sales")
    course = ae.course("NET101")
    instance = ae.instance(course, "autoenrol", mode="view", rule=IT_ONLY, duration=30 * DAY)

    decision = access.view_course(ae.site, marie, course)

    assert decision.decision == "granted"
    row = rows(ae, course)["marie"]
    assert (row["status"], row["timestart"], row["timeend"]) == (
        "active",
        clock.now(),
        clock.now() + 30 * DAY,
    )
    [enrolled] = events(ae, "user_enrolled")
    assert (enrolled.user_id, enrolled.instance_id) == (marie.id, instance.id)
    assert enrolled.reason == "matched the rule on course view"

    denied = access.view_course(ae.site, paul, course)
    assert denied.decision == "denied"
    assert denied.reason == (
        "Auto-enrol: you do not meet the conditions: department is 'Sales', expected 'IT'"
    )
    assert denied.redirect is None
    assert active(ae, course) == {"marie"}
    assert access.view_course(ae.site, marie, course).decision == "granted"


def test_the_denial_lists_each_failing_condition(ae):
    ann = ae.user("ann", department="HR")
    course = ae.course("C1")
    tree = {
        "op": "&",
        "c": [
            {"op": "|", "c": [profile("department", "IT"), profile("department", "Support")]},
            {"type": "badge", "id": "Onboarding complété"},
        ],
    }
    ae.instance(course, "autoenrol", mode="view", rule=rule(tree), name="Onboarding")
    decision = access.view_course(ae.site, ann, course)
    assert decision.reason == (
        "Onboarding: you do not meet the conditions: none of: department is 'HR', expected "
        "'IT' / department is 'HR', expected 'Support'; no badge 'Onboarding complété' exists"
    )


def test_a_refused_view_redirects_when_the_site_says_so(ae):
    ann = ae.user("ann", department="HR")
    course = ae.course("C1")
    ae.instance(course, "autoenrol", mode="view", rule=IT_ONLY)
    ae.set_method_settings("autoenrol", {"denied": "redirect", "denied_url": "/courses"})
    decision = access.view_course(ae.site, ann, course)
    assert (decision.decision, decision.redirect) == ("denied", "/courses")
    assert "expected 'IT'" in decision.reason


def test_a_login_mode_instance_also_lets_a_matching_viewer_in(ae):
    ann = ae.user("ann", department="IT")
    course = ae.course("C1")
    ae.instance(course, "autoenrol", mode="login", rule=IT_ONLY)
    assert access.view_course(ae.site, ann, course).decision == "granted"


def test_confirm_mode_offers_enrol_me_and_nothing_happens_without_it(ae, clock):
    ann, bob = ae.user("ann", department="IT"), ae.user("bob", department="Sales")
    course = ae.course("C1")
    instance = ae.instance(course, "autoenrol", mode="confirm", rule=IT_ONLY, duration=7 * DAY)

    offer = access.view_course(ae.site, ann, course)
    assert (offer.decision, offer.instance_id) == ("confirm", instance.id)
    assert rows(ae, course) == {}

    assert access.enrol_me(ae.site, ann, course).decision == "granted"
    row = rows(ae, course)["ann"]
    assert (row["status"], row["timeend"]) == ("active", clock.now() + 7 * DAY)
    assert events(ae, "user_enrolled")[0].reason == 'confirmed the enrolment ("Enrol me")'

    assert access.view_course(ae.site, bob, course).decision == "denied"
    with pytest.raises(Refused, match="expected 'IT'"):
        access.enrol_me(ae.site, bob, course)
    assert active(ae, course) == {"ann"}


def test_confirming_an_instance_that_does_not_offer_it_is_refused(ae):
    ann = ae.user("ann")
    course = ae.course("C1")
    instance = ae.instance(course, "autoenrol", mode="view")
    method = ae.plugins.method("autoenrol")
    with pytest.raises(Refused, match="does not offer a confirmation"):
        method.confirm_enrolment(ae.site, instance, ann, {})


def test_a_suspended_enrolment_is_not_reopened_by_a_view(ae):
    ann = ae.user("ann", department="IT")
    course = ae.course("C1")
    ae.instance(course, "autoenrol", mode="view", rule=IT_ONLY)
    access.view_course(ae.site, ann, course)
    set_fields(ae.site, ann, {"department": "HR"})
    login(ae.site, ann)  # the re-check suspends her
    set_fields(ae.site, ann, {"department": "IT"})
    decision = access.view_course(ae.site, ann, course)
    assert decision.decision == "denied"
    assert decision.reason == "Auto-enrol: ann already has a suspended enrolment here"


def test_a_disabled_method_answers_nothing(ae):
    ann = ae.user("ann")
    course = ae.course("C1")
    ae.instance(course, "autoenrol", mode="view")
    ae.set_method_enabled("autoenrol", False)
    decision = access.view_course(ae.site, ann, course)
    assert decision.decision == "denied"
    assert "no method lets you in" in decision.reason
