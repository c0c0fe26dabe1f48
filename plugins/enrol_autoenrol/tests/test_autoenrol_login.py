"""Login mode: Jean logs in, matches, and is enrolled at once; later logins re-check him; the
cost of a login does not grow with instances he cannot match."""

from __future__ import annotations

import pytest
from autoenrol_helpers import ONBOARDING, active, events, groups_of, profile, rows, rule
from enrol_autoenrol import prefilter
from enrolkit import badges
from enrolkit.enrolments import enrol_manually, update_instance
from enrolkit.models import Course, EnrolInstance, UserEnrolment
from enrolkit.people import login, set_fields
from enrolkit.testing import statements
from sqlalchemy import func, select


def test_jean_matches_at_login_and_is_enrolled_at_once(ae, clock):
    jean = ae.user("jean", department="IT")
    marc = ae.user("marc", department="Sales")
    course = ae.course("ONBOARD")
    badges.award(ae.site, "Onboarding complété", jean)
    badges.award(ae.site, "Onboarding complété", marc)
    instance = ae.instance(course, "autoenrol", mode="login", rule=rule(ONBOARDING))

    login(ae.site, jean)
    login(ae.site, marc)

    assert active(ae, course) == {"jean"}
    row = rows(ae, course)["jean"]
    assert (row["roles"], row["timestart"], row["timeend"]) == (["student"], clock.now(), 0)
    [enrolled] = events(ae, "user_enrolled")
    assert (enrolled.user_id, enrolled.instance_id) == (jean.id, instance.id)
    assert enrolled.reason == "matched the rule at login"
    assert [e.instance_id for e in events(ae, "enrol_instance_created")] == [instance.id]

    login(ae.site, jean)  # a second login changes nothing
    assert len(events(ae, "user_enrolled")) == 1


@pytest.mark.parametrize(
    ("department", "badge", "when", "matches"),
    [
        ("IT", True, "2026-09-01", True),
        ("Support", True, "2026-01-01T00:00:00Z", True),
        ("Sales", True, "2026-09-01", False),
        ("IT", False, "2026-09-01", False),
        ("Support", True, "2025-12-31T23:59:59Z", False),
        ("it", True, "2026-09-01", False),  # comparisons are case-sensitive, as in Moodle
    ],
)
def test_the_onboarding_rule(ae, clock, department, badge, when, matches):
    """(department = IT or department = Support) and badge "Onboarding complété" and date >=
    2026-01-01, at login."""
    clock.set(when)
    user = ae.user("someone", department=department)
    if badge:
        badges.award(ae.site, "Onboarding complété", user)
    course = ae.course("ONBOARD")
    ae.instance(course, "autoenrol", mode="login", rule=rule(ONBOARDING))
    login(ae.site, user)
    assert active(ae, course) == ({"someone"} if matches else set())


def test_a_later_login_applies_the_removal_action_to_who_no_longer_matches(ae):
    ann, bob = ae.user("ann", department="IT"), ae.user("bob", department="IT")
    course = ae.course("C1")
    rule_it = rule({"op": "&", "c": [profile("department", "IT")]})
    ae.instance(course, "autoenrol", mode="login", rule=rule_it)  # removal: the site's, suspend
    keep = ae.course("C2")
    ae.instance(course=keep, method="autoenrol", mode="login", rule=rule_it)
    update_instance(ae.site, _only(ae, keep), {"unenrol_on_mismatch": "off"})
    for user in (ann, bob):
        login(ae.site, user)
    assert active(ae, course) == active(ae, keep) == {"ann", "bob"}

    set_fields(ae.site, ann, {"department": "Sales"})
    assert active(ae, course) == {"ann", "bob"}  # a profile change alone re-checks groups only
    login(ae.site, ann)

    assert rows(ae, course)["ann"]["status"] == "suspended"
    assert active(ae, course) == {"bob"}
    assert active(ae, keep) == {"ann", "bob"}  # unenrol_on_mismatch=off keeps her
    [suspended] = events(ae, "user_enrolment_updated")
    assert suspended.reason == (
        "suspended: no longer matches the rule: department is 'Sales', expected 'IT'"
    )

    set_fields(ae.site, ann, {"department": "IT"})
    login(ae.site, ann)
    assert rows(ae, course)["ann"]["status"] == "suspended"  # allowunsuspend is off by default
    ae.set_method_settings("autoenrol", {"allowunsuspend": "yes"})
    login(ae.site, ann)
    assert active(ae, course) == {"ann", "bob"}


def test_unenrol_removal_deletes_the_enrolment_and_logs_it(ae):
    ann = ae.user("ann", department="IT")
    course = ae.course("C1")
    instance = ae.instance(
        course,
        "autoenrol",
        mode="login",
        removal="unenrol",
        rule=rule({"op": "&", "c": [profile("department", "IT")]}),
    )
    login(ae.site, ann)
    set_fields(ae.site, ann, {"department": "HR"})
    login(ae.site, ann)
    assert rows(ae, course) == {}
    [gone] = events(ae, "user_unenrolled")
    assert (gone.user_id, gone.instance_id) == (ann.id, instance.id)


def test_loginenrol_off_stops_login_enrolment_only(ae):
    ann = ae.user("ann")
    course = ae.course("C1")
    ae.instance(course, "autoenrol", mode="login")
    ae.set_method_settings("autoenrol", {"loginenrol": "off"})
    login(ae.site, ann)
    assert rows(ae, course) == {}


def test_a_user_enrolled_by_another_method_or_twice_matching_is_enrolled_once(ae):
    ann, bob = ae.user("ann"), ae.user("bob")
    course = ae.course("C1")
    first = ae.instance(course, "autoenrol", mode="login")
    ae.instance(course, "autoenrol", mode="login")
    ae.set_method_enabled("manual", True)
    enrol_manually(ae.site, bob, course)
    login(ae.site, ann)
    login(ae.site, bob)
    assert {name: row["instance"] for name, row in rows(ae, course).items()} == {"ann": first.id}


def test_view_and_confirm_instances_do_not_enrol_at_login_until_switched_to_login(ae):
    ann, bob = ae.user("ann"), ae.user("bob")
    view, confirm = ae.course("V"), ae.course("K")
    instance = ae.instance(view, "autoenrol", mode="view")
    ae.instance(confirm, "autoenrol", mode="confirm")
    login(ae.site, ann)
    assert rows(ae, view) == rows(ae, confirm) == {}
    update_instance(ae.site, instance, {"mode": "login"})
    login(ae.site, ann)
    assert active(ae, view) == {"ann"}
    update_instance(ae.site, instance, {"mode": "view"})
    login(ae.site, bob)
    assert active(ae, view) == {"ann"}


def test_a_disabled_instance_neither_enrols_nor_rechecks(ae):
    ann, bob = ae.user("ann", department="IT"), ae.user("bob")
    course = ae.course("C1")
    instance = ae.instance(
        course,
        "autoenrol",
        mode="login",
        rule=rule({"op": "&", "c": [profile("department", "IT")]}),
    )
    login(ae.site, ann)
    update_instance(ae.site, instance, {"enabled": "off"})
    set_fields(ae.site, ann, {"department": "HR"})
    login(ae.site, ann)
    login(ae.site, bob)
    assert {name: row["status"] for name, row in rows(ae, course).items()} == {"ann": "active"}


def _only(ae, course):
    return ae.session.scalar(select(EnrolInstance).where(EnrolInstance.course_id == course.id))


def _statements_for_login(ae, user) -> int:
    with statements(ae.session.get_bind()) as found:
        login(ae.site, user)
    return len(found)


def test_login_cost_does_not_grow_with_instances_the_user_cannot_match(ae):
    """The prefilter index lets through only the instances whose department (or one of an
    "any of" list of departments) is the user's: 2 logins, first with 10 then with 100
    instances the user cannot match, run the same statements."""
    ann, bob = ae.user("ann", department="IT"), ae.user("bob", department="IT")
    badge = {"type": "badge", "id": "First aid"}
    mine = [
        {"op": "&", "c": [profile("department", "IT"), badge]},
        {
            "op": "&",
            "c": [{"op": "|", "c": [profile("department", "HR"), profile("department", "IT")]}],
        },
    ]

    def add(trees, prefix):
        for number, tree in enumerate(trees):
            ae.instance(ae.course(f"{prefix}{number}"), "autoenrol", mode="login", rule=rule(tree))

    add(mine, "M")
    # The badge comes first: evaluating such a rule costs a query, whatever the department.
    others = [{"op": "&", "c": [badge, profile("department", f"D{n}")]} for n in range(100)]
    add(others[:10], "A")
    badges.award(ae.site, "First aid", ann)
    badges.award(ae.site, "First aid", bob)
    # The engine creates its temporary tables once per connection: a first login (Cyd's, which
    # enrols her in the two courses she matches) pays for that before anything is counted.
    cyd = ae.user("cyd", department="IT")
    badges.award(ae.site, "First aid", cyd)
    login(ae.site, cyd)
    few = _statements_for_login(ae, ann)
    add(others[10:], "B")
    many = _statements_for_login(ae, bob)
    assert many == few
    assert ae.session.scalar(select(func.count()).select_from(UserEnrolment)) == 6


def test_login_evaluates_only_the_rules_whose_custom_field_could_match(ae):
    """Custom-field equalities are indexed like standard ones: among 40 instances asking for
    campus North, South, East or West (plus the first-aid badge, a query to evaluate), a login
    lets through only those of the user's own campus, and a user without a campus only those
    asking for an empty one; adding 30 more instances of other campuses costs no statement."""
    badge = {"type": "badge", "id": "First aid"}

    def add(campuses, prefix):
        for number, campus in enumerate(campuses):
            tree = {"op": "&", "c": [badge, profile("campus", campus, custom=True)]}
            ae.instance(ae.course(f"{prefix}{number}"), "autoenrol", mode="login", rule=rule(tree))

    ann, bob, cyd, dan = (ae.user(name) for name in ("ann", "bob", "cyd", "dan"))
    for user, campus in ((ann, "North"), (bob, "North"), (cyd, "North")):
        set_fields(ae.site, user, {"profile_field_campus": campus})
    for user in (ann, bob, cyd, dan):
        badges.award(ae.site, "First aid", user)
    add(["North", "South", "East", "West"] * 2 + [""], "A")

    assert _courses(ae, prefilter.candidates(ae.site, ann)) == ["A0", "A4"]
    assert _courses(ae, prefilter.candidates(ae.site, dan)) == ["A8"]
    login(ae.site, cyd)  # the engine's temporary tables, made once per connection
    few = _statements_for_login(ae, ann)
    add(["South", "East", "West"] * 10, "B")
    many = _statements_for_login(ae, bob)
    assert many == few
    login(ae.site, dan)
    assert _courses(ae, _enrolled_in(ae, dan)) == ["A8"]
    assert _courses(ae, _enrolled_in(ae, ann)) == ["A0", "A4"]


def _courses(ae, instances) -> list[str]:
    return [ae.session.get(Course, instance.course_id).shortname for instance in instances]


def _enrolled_in(ae, user) -> list[EnrolInstance]:
    return list(
        ae.session.scalars(
            select(EnrolInstance)
            .join(UserEnrolment, UserEnrolment.instance_id == EnrolInstance.id)
            .where(UserEnrolment.user_id == user.id)
            .order_by(EnrolInstance.course_id)
        )
    )


def _first_login_cost(ae, department: str, courses: int) -> int:
    """Statements of a first login that enrols into ``courses`` courses, each with a group
    template, a limit and a welcome: groups, limits, plans and welcomes are read and written
    for all at once."""
    for number in range(courses):
        tree = {"op": "&", "c": [profile("department", department)]}
        ae.instance(
            ae.course(f"{department}{number}"),
            "autoenrol",
            mode="login",
            rule=rule(tree),
            maxenrolled=10,
            group_template="{department} {city}",
            welcome="on",
        )
    user = ae.user(f"first-{department}", department=department, city="Lyon")
    return _statements_for_login(ae, user)


def test_a_first_login_into_2_or_8_courses_with_groups_costs_the_same(ae):
    _first_login_cost(ae, "Warm-up", 1)  # the engine's temporary tables, made once
    assert _first_login_cost(ae, "IT", 2) == _first_login_cost(ae, "HR", 8)


def test_a_first_login_into_several_courses_joins_each_course_group(ae):
    """One batch for all the courses: each gets its own group (created once and logged once,
    even when two courses' templates give the same name) and the user in it."""
    courses = [ae.course(f"C{number}") for number in range(3)]
    for number, course in enumerate(courses):
        ae.instance(
            course,
            "autoenrol",
            mode="login",
            group_template="{city}" if number < 2 else "Team {city}",
        )
    ann = ae.user("ann", city="Lyon")
    bob = ae.user("bob", city="Lyon")
    login(ae.site, ann)
    login(ae.site, bob)
    for course, name in zip(courses, ["Lyon", "Lyon", "Team Lyon"], strict=True):
        assert groups_of(ae, course) == {"ann": [name], "bob": [name]}
    created = [(e.course_id, e.reason) for e in events(ae, "group_created")]
    assert sorted(reason for _, reason in created) == ["Lyon", "Lyon", "Team Lyon"]
    assert len(set(created)) == 3
