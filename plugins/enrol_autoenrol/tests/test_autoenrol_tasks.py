"""The scheduled tasks: the hourly enrolment pass in SQL, the daily expiry (Paul after his move
to Ventes, ended durations, inactivity), and the limit and window they share with the login."""

from __future__ import annotations

import pytest
from autoenrol_helpers import DAY, ONBOARDING, active, events, groups_of, profile, rows, rule
from enrol_autoenrol.tasks import process_enrolments, process_expiry
from enrolkit import access, badges
from enrolkit.enrolments import enrol_manually, is_enrolled, update_instance
from enrolkit.models import HeldPlan
from enrolkit.people import login, set_fields
from sqlalchemy import select

MARKETING = rule({"op": "&", "c": [profile("department", "Marketing")]})


def test_paul_moves_to_ventes_and_is_out_after_the_expiry_task(ae, clock):
    paul = ae.user("paul", department="Marketing")
    course = ae.course("MKT")
    ae.instance(
        course, "autoenrol", mode="login", rule=MARKETING, group_template="Groupe_{department}"
    )
    login(ae.site, paul)
    assert groups_of(ae, course) == {"paul": ["Groupe_Marketing"]}

    set_fields(ae.site, paul, {"department": "Ventes"})
    assert groups_of(ae, course) == {"paul": ["Groupe_Ventes"]}  # at once
    assert is_enrolled(ae.site, paul.id, course.id)  # until the expiry task runs

    clock.advance(DAY)
    assert process_expiry(ae.site) == "1 enrolment(s) removed or suspended in 1 instance(s)"

    assert not is_enrolled(ae.site, paul.id, course.id)
    assert rows(ae, course)["paul"]["status"] == "suspended"  # the site's default removal
    assert access.view_course(ae.site, paul, course).decision == "denied"
    [suspended] = events(ae, "user_enrolment_updated")
    assert suspended.reason == "suspended: no longer matches the rule"
    assert process_expiry(ae.site) == "0 enrolment(s) removed or suspended in 0 instance(s)"


def test_a_rule_that_suddenly_drops_most_users_is_held_for_an_admin(ae):
    course = ae.course("MKT")
    people = [ae.user(f"u{i}", department="Marketing") for i in range(12)]
    instance = ae.instance(
        course, "autoenrol", mode="login", rule=MARKETING, group_template="G_{department}"
    )
    for user in people:
        login(ae.site, user)
    set_fields(ae.site, people[0], {"department": "Ventes"})
    typo = rule({"op": "&", "c": [profile("department", "Marketting")]})
    update_instance(ae.site, instance, {"rule": typo})

    result = process_expiry(ae.site)

    assert result.startswith("0 enrolment(s) removed or suspended in 0 instance(s); held")
    [held] = ae.session.scalars(select(HeldPlan)).all()
    assert (held.instance_id, held.status, held.summary["suspended"]) == (instance.id, "held", 12)
    assert len(active(ae, course)) == 12

    update_instance(ae.site, instance, {"rule": MARKETING})  # the typo fixed
    process_expiry(ae.site)
    assert active(ae, course) == {f"u{i}" for i in range(1, 12)}
    kept = rows(ae, course)["u1"]
    assert (kept["roles"], kept["groups"]) == (["student"], ["G_Marketing"])  # left as they were
    assert rows(ae, course)["u0"]["groups"] == ["G_Ventes"]  # suspended, keeps the group


def test_with_removal_unenrol_paul_is_gone_from_the_list(ae):
    paul = ae.user("paul", department="Marketing")
    course = ae.course("MKT")
    ae.instance(course, "autoenrol", mode="login", rule=MARKETING, removal="unenrol")
    login(ae.site, paul)
    set_fields(ae.site, paul, {"department": "Ventes"})
    process_expiry(ae.site)
    assert rows(ae, course) == {}
    assert [e.user_id for e in events(ae, "user_unenrolled")] == [paul.id]


def test_the_hourly_task_enrols_who_matches_and_has_logged_in(ae, clock):
    course = ae.course("MKT")
    seen = clock.now() - DAY
    ann = ae.user("ann", department="Marketing", lastlogin=seen)
    ae.user("bob", department="Marketing")  # never logged in
    cem = ae.user("cem", department="Marketing", lastlogin=seen)
    ae.user("dan", department="Sales", lastlogin=seen)
    ae.user("eve", department="Marketing", lastlogin=seen, suspended=True)
    ae.set_method_enabled("manual", True)
    enrol_manually(ae.site, cem, course)
    ae.instance(
        course,
        "autoenrol",
        mode="login",
        rule=MARKETING,
        duration=10 * DAY,
        group_template="Groupe_{department}",
    )

    assert process_enrolments(ae.site) == ("1 user(s) enrolled in 1 of 1 login-mode instance(s)")
    assert groups_of(ae, course) == {"ann": ["Groupe_Marketing"]}
    assert rows(ae, course)["ann"]["timeend"] == clock.now() + 10 * DAY
    assert events(ae, "user_enrolled")[0].reason == "matched the rule (scheduled task)"
    assert process_enrolments(ae.site).startswith("0 user(s)")

    set_fields(ae.site, ann, {"department": "Sales"})
    process_enrolments(ae.site)  # the enrolment task never removes anyone
    assert active(ae, course) == {"ann"}


def test_the_task_and_the_login_agree_on_the_onboarding_rule(ae, clock):
    """The rule compiled to SQL (task) and evaluated in Python (login) pick the same people."""
    users = {}
    for name, department, badge in [
        ("it1", "IT", True),
        ("it2", "IT", False),
        ("sup", "Support", True),
        ("sal", "Sales", True),
    ]:
        users[name] = ae.user(name, department=department, lastlogin=clock.now() - DAY)
        if badge:
            badges.award(ae.site, "Onboarding complété", users[name])
    by_task, by_login = ae.course("T"), ae.course("L")
    ae.instance(by_task, "autoenrol", mode="login", rule=rule(ONBOARDING))
    process_enrolments(ae.site)
    ae.instance(by_login, "autoenrol", mode="login", rule=rule(ONBOARDING))
    for user in users.values():
        login(ae.site, user)
    assert active(ae, by_task) == active(ae, by_login) == {"it1", "sup"}


@pytest.mark.parametrize("path", ["login", "task", "view"])
def test_the_limit(ae, clock, path):
    course = ae.course("C1")
    people = [ae.user(f"u{i}", lastlogin=clock.now() - DAY) for i in range(1, 4)]
    mode = "view" if path == "view" else "login"
    instance = ae.instance(course, "autoenrol", mode=mode, maxenrolled=2)
    if path == "task":
        process_enrolments(ae.site)
    else:
        for user in people:
            (login if path == "login" else _view(course))(ae.site, user)
    assert active(ae, course) == {"u1", "u2"}
    if path == "view":
        refused = access.view_course(ae.site, people[2], course)
        assert refused.reason == "Auto-enrol: the course is full (2 of 2 places taken)"
    update_instance(ae.site, instance, {"maxenrolled": "0"})  # no limit any more
    if path == "task":
        process_enrolments(ae.site)
    else:
        (login if path == "login" else _view(course))(ae.site, people[2])
    assert active(ae, course) == {"u1", "u2", "u3"}


def _view(course):
    return lambda site, user: access.view_course(site, user, course)


def test_the_window_opens_and_closes_new_enrolments_only(ae, clock):
    start = clock.now() + DAY
    end = start + 10 * DAY
    course = ae.course("C1")
    ann, bob, cem = (ae.user(n, lastlogin=clock.now() - DAY) for n in ("ann", "bob", "cem"))
    ae.instance(course, "autoenrol", mode="login", enrolstart=start, enrolend=end)

    login(ae.site, ann)
    assert process_enrolments(ae.site).startswith("0 user(s)")
    assert rows(ae, course) == {}

    clock.set(start)
    login(ae.site, ann)
    assert active(ae, course) == {"ann"}

    clock.set(end)  # the end is exclusive
    login(ae.site, bob)
    process_enrolments(ae.site)
    assert active(ae, course) == {"ann"}  # ann stays; nobody new
    login(ae.site, ann)
    process_expiry(ae.site)
    assert active(ae, course) == {"ann"}
    assert cem.id not in {e.user_id for e in events(ae, "user_enrolled")}


def test_newenrols_off_keeps_members_and_admits_nobody(ae):
    course = ae.course("C1")
    ann, bob = ae.user("ann"), ae.user("bob")
    instance = ae.instance(course, "autoenrol", mode="login")
    login(ae.site, ann)
    update_instance(ae.site, instance, {"newenrols": "off"})
    login(ae.site, bob)
    login(ae.site, ann)
    assert active(ae, course) == {"ann"}


def test_the_duration_runs_out_and_the_expiry_task_acts(ae, clock):
    course, kept = ae.course("C1"), ae.course("C2")
    ann = ae.user("ann")
    ae.instance(course, "autoenrol", mode="login", duration=10 * DAY, removal="unenrol")
    ae.instance(kept, "autoenrol", mode="login", duration=10 * DAY, removal="keep")
    login(ae.site, ann)
    assert rows(ae, course)["ann"]["timeend"] == clock.now() + 10 * DAY

    clock.advance(10 * DAY - 1)
    process_expiry(ae.site)
    assert is_enrolled(ae.site, ann.id, course.id)

    clock.advance(1)
    assert not is_enrolled(ae.site, ann.id, course.id)  # ended: no longer counts
    process_expiry(ae.site)
    assert rows(ae, course) == {}
    [gone] = events(ae, "user_unenrolled")
    assert gone.reason == "enrolment ended 2026-09-11T08:00:00Z"
    assert rows(ae, kept)["ann"]["status"] == "active"  # removal=keep: the row stays
    login(ae.site, ann)  # she has no enrolment in C1 any more: a login enrols her again
    assert rows(ae, course)["ann"]["timeend"] == clock.now() + 10 * DAY


def test_inactive_users_get_the_removal_action(ae, clock):
    course = ae.course("C1")
    ann, bob = ae.user("ann"), ae.user("bob")
    ae.instance(course, "autoenrol", mode="login", inactive_days=30)
    login(ae.site, ann)
    login(ae.site, bob)
    cem = ae.user("cem", lastlogin=clock.now() - 60 * DAY)
    process_enrolments(ae.site)  # cem last logged in 60 days ago, enrolled now

    clock.advance(20 * DAY)
    login(ae.site, bob)
    clock.advance(11 * DAY)  # ann: 31 days without login; bob: 11; cem: enrolled 31 days ago
    assert process_expiry(ae.site).startswith("2 enrolment(s)")
    assert active(ae, course) == {"bob"}
    reasons = {e.user_id: e.reason for e in events(ae, "user_enrolment_updated")}
    assert reasons == {
        ann.id: "suspended: no login for 30 day(s)",
        cem.id: "suspended: no login for 30 day(s)",
    }


def test_a_disabled_method_runs_no_task(ae):
    ae.set_method_enabled("autoenrol", False)
    assert process_enrolments(ae.site) == "auto-enrolment is disabled on this site"
    assert process_expiry(ae.site) == "auto-enrolment is disabled on this site"


def test_two_login_instances_of_a_course_enrol_a_user_once_by_the_first(ae, clock):
    """The hourly task applies the first instance of every course in one round of batches and
    the second in the next: a user both rules match is enrolled once, by the first."""
    seen = clock.now() - DAY
    ae.user("ann", department="Marketing", lastlogin=seen)
    ae.user("bob", department="Sales", lastlogin=seen)
    courses = [ae.course(name) for name in ("A", "B")]
    firsts = [ae.instance(c, "autoenrol", mode="login", rule=MARKETING) for c in courses]
    for course in courses:
        ae.instance(course, "autoenrol", mode="login")  # anyone

    assert process_enrolments(ae.site) == "4 user(s) enrolled in 4 of 4 login-mode instance(s)"
    for course, first in zip(courses, firsts, strict=True):
        enrolled = {name: row["instance"] for name, row in rows(ae, course).items()}
        assert enrolled["ann"] == first.id and enrolled["bob"] != first.id
