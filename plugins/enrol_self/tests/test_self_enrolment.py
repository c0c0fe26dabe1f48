"""Self enrolment, setting by setting, on both backends: the key and group keys, the places,
the window, the duration, inactivity, the welcome message, several instances in a course."""

from __future__ import annotations

import pytest
from enrolkit import SettingsError, access
from enrolkit.confirmation import REFUSED, TooManyAttempts
from enrolkit.errors import Refused
from enrolkit.models import Group, GroupMember, LogEntry, UserEnrolment
from sqlalchemy import select

DAY = 86400


def enrolments(site, instance) -> dict[int, tuple[int, int, int]]:
    site.session.expire_all()
    return {
        ue.user_id: (ue.status, ue.timestart, ue.timeend)
        for ue in site.session.scalars(
            select(UserEnrolment).where(UserEnrolment.instance_id == instance.id)
        )
    }


def test_without_a_key_a_user_enrols_with_one_click(site, course, user):
    instance = site.instance(course, "self")
    view = access.view_course(site.site, user("ann"), course)
    assert (view.decision, view.instance_id) == ("confirm", instance.id)
    assert "enrol yourself" in view.reason
    assert access.enrol_me(site.site, user("ann"), course).decision == "granted"
    assert list(enrolments(site, instance)) == [user("ann").id]


def test_the_key_is_asked_stored_hashed_and_checked(site, course, user):
    instance = site.instance(course, "self", key="s3cret-key")
    assert instance.settings["key"].startswith("scrypt:") and "s3cret" not in str(instance.settings)
    with pytest.raises(SettingsError) as missing:
        access.enrol_me(site.site, user("ann"), course, {})
    assert missing.value.messages == {"key": ["Missing data for required field."]}
    with pytest.raises(Refused, match="wrong enrolment key"):
        access.enrol_me(site.site, user("ann"), course, {"key": "guess"})
    assert enrolments(site, instance) == {}
    access.enrol_me(site.site, user("ann"), course, {"key": "s3cret-key"})
    assert list(enrolments(site, instance)) == [user("ann").id]


def test_a_wrong_key_is_logged_though_its_transaction_is_rolled_back(site, course, user):
    instance = site.instance(course, "self", key="s3cret-key")
    site.session.commit()
    with pytest.raises(Refused):
        access.enrol_me(site.site, user("bob"), course, {"key": "guess"})
    site.session.rollback()
    [entry] = site.session.scalars(select(LogEntry).where(LogEntry.event == REFUSED)).all()
    assert (entry.user_id, entry.instance_id, entry.component) == (
        user("bob").id,
        instance.id,
        "enrol_self",
    )
    assert "wrong enrolment key" in entry.reason and "guess" not in entry.reason


def test_guessing_is_stopped_after_five_attempts_and_a_success_resets(site, course, user):
    site.instance(course, "self", key="s3cret-key")
    for _ in range(5):
        with pytest.raises(Refused, match="wrong enrolment key"):
            access.enrol_me(site.site, user("bob"), course, {"key": "guess"})
    with pytest.raises(TooManyAttempts) as stopped:
        access.enrol_me(site.site, user("bob"), course, {"key": "s3cret-key"})
    assert "try again in 15 minute(s)" in str(stopped.value) and stopped.value.retry_after > 0
    # another user is not held back by bob's guesses
    access.enrol_me(site.site, user("ann"), course, {"key": "s3cret-key"})


def test_a_group_key_enrols_into_its_group(site, course, user):
    with site.atomic():
        red = Group(course_id=course.id, name="Red")
        site.session.add_all([red, Group(course_id=course.id, name="Blue")])
    instance = site.instance(course, "self", key="main", group_keys="Red=red-key; Blue=blue-key")
    assert set(instance.settings["group_keys"]) == {"Red", "Blue"}
    access.enrol_me(site.site, user("ann"), course, {"key": "red-key"})
    access.enrol_me(site.site, user("bob"), course, {"key": "main"})
    members = site.session.execute(select(GroupMember.user_id, GroupMember.group_id)).all()
    assert members == [(user("ann").id, red.id)]


def test_a_group_key_must_name_a_group_of_the_course(site, course):
    with pytest.raises(SettingsError) as error:
        site.instance(course, "self", group_keys="Nope=x")
    assert error.value.messages == {"group_keys": ["no group Nope in C1; create it first"]}


def test_maxenrolled_caps_the_places(site, course, user):
    instance = site.instance(course, "self", maxenrolled=1)
    access.enrol_me(site.site, user("ann"), course)
    view = access.view_course(site.site, user("bob"), course)
    assert view.decision == "denied" and "no places left (at most 1 users)" in view.reason
    with pytest.raises(Refused, match="no places left"):
        access.enrol_me(site.site, user("bob"), course)
    assert list(enrolments(site, instance)) == [user("ann").id]


def test_a_place_taken_between_the_view_and_the_confirmation_is_refused(site, course, user):
    """The view showed a free place; another way in filled it before the confirmation."""
    from enrolkit import Change, Plan

    instance = site.instance(course, "self", maxenrolled=1)
    assert access.view_course(site.site, user("bob"), course).decision == "confirm"
    with site.atomic():  # ann takes the place by another path while bob reads the page
        site.engine.apply(Plan(instance.id, "elsewhere", changes=[Change(user("ann").id)]))
    method = site.plugins.method("self")
    with pytest.raises(Refused, match="no places left"), site.atomic():
        method.confirm_enrolment(site.site, instance, user("bob"), {})
    assert list(enrolments(site, instance)) == [user("ann").id]


def test_the_window_opens_and_closes_enrolment(site, course, user, clock):
    site.instance(course, "self", enrolstartdate="2026-09-10", enrolenddate="2026-09-20")
    early = access.view_course(site.site, user("ann"), course)
    assert early.decision == "denied" and "opens on 2026-09-10" in early.reason
    clock.set("2026-09-15")
    assert access.view_course(site.site, user("ann"), course).decision == "confirm"
    clock.set("2026-09-21")
    late = access.view_course(site.site, user("ann"), course)
    assert late.decision == "denied" and "closed on 2026-09-20" in late.reason


def test_an_end_before_the_start_is_refused(site, course):
    with pytest.raises(SettingsError) as error:
        site.instance(course, "self", enrolstartdate="2026-09-10", enrolenddate="2026-09-01")
    assert error.value.messages == {"enrolenddate": ["must come after enrolstartdate"]}


def test_newenrols_off_takes_nobody(site, course, user):
    site.instance(course, "self", newenrols="false")
    view = access.view_course(site.site, user("ann"), course)
    assert view.decision == "denied" and "takes no new enrolments" in view.reason


def test_the_duration_ends_the_enrolment_and_the_end_date_task_unenrols(
    site, course, user, clock, run_cron
):
    now = clock.now()
    with site.atomic():
        site.set_method_settings("self", {"expiry_action": "unenrol"})  # Moodle's default: keep
    instance = site.instance(course, "self", enrolperiod=7 * DAY)
    access.enrol_me(site.site, user("ann"), course)
    assert enrolments(site, instance) == {user("ann").id: (0, now, now + 7 * DAY)}
    clock.advance(8 * DAY)
    run_cron(force=True)
    assert enrolments(site, instance) == {}


def test_inactive_users_are_unenrolled_by_the_task(site, course, user, clock, run_cron):
    instance = site.instance(course, "self", longtimenosee=30 * DAY)
    access.enrol_me(site.site, user("ann"), course)
    access.enrol_me(site.site, user("bob"), course)
    clock.advance(20 * DAY)
    access.view_course(site.site, user("bob"), course)  # bob comes back; ann does not
    clock.advance(15 * DAY)
    runs = run_cron(force=True)
    assert runs["self_unenrol_inactive"].result == "1 inactive user(s) unenrolled"
    assert list(enrolments(site, instance)) == [user("bob").id]


def test_a_welcome_is_queued_for_each_enrolment_and_again_after_a_new_one(
    site, course, user, outbox, clock
):
    instance = site.instance(course, "self", welcome_template="Hi {{ user.firstname }}!")
    access.enrol_me(site.site, user("ann"), course)
    [first] = outbox.messages
    assert first.to == "ann@example.org" and first.subject == "Welcome to Biology 101"
    from enrolkit import Change, Plan

    with site.atomic():
        site.engine.apply(Plan(instance.id, "out", changes=[Change(user("ann").id, op="unenrol")]))
    clock.advance(DAY)
    access.enrol_me(site.site, user("ann"), course)
    assert len(outbox.to("ann@example.org")) == 2


def test_a_bad_welcome_template_is_refused_at_save(site, course):
    with pytest.raises(SettingsError) as error:
        site.instance(course, "self", welcome_template="{{ user.nope }")
    assert "welcome_template" in error.value.messages


def test_two_instances_are_two_offers_and_the_user_picks_one(site, course, user):
    with site.atomic():
        site.session.add(Group(course_id=course.id, name="Red"))
    open_one = site.instance(course, "self", name="Open")
    keyed = site.instance(course, "self", name="Red team", group_keys="Red=red-key")
    view = access.view_course(site.site, user("ann"), course)
    assert [o.instance_id for o in view.offers] == [open_one.id, keyed.id]
    with pytest.raises(Refused, match=f"offers 2 enrolments; choose one .*{keyed.id}"):
        access.enrol_me(site.site, user("ann"), course)
    access.enrol_me(site.site, user("ann"), course, {"key": "red-key"}, instance_id=keyed.id)
    assert list(enrolments(site, keyed)) == [user("ann").id]
    assert enrolments(site, open_one) == {}


def test_two_users_confirming_at_once_for_the_last_place(site, course, runtime):
    """Both have seen a free place; they confirm at the same moment, each on a connection of
    its own: one is enrolled, the other is told the course is full."""
    import threading

    instance = site.instance(course, "self", maxenrolled=1)
    site.session.commit()
    barrier = threading.Barrier(2, timeout=30)
    results: dict[str, str] = {}

    def confirm(name: str) -> None:
        with runtime.site(origin="web") as mine:
            from enrolkit import lookup

            me, where = lookup.user(mine.session, name), lookup.course(mine.session, "C1")
            mine.session.commit()
            barrier.wait()
            try:
                results[name] = access.enrol_me(mine, me, where).decision
            except Refused as refused:
                results[name] = str(refused)

    threads = [threading.Thread(target=confirm, args=(name,)) for name in ("ann", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    granted = [name for name, said in results.items() if said == "granted"]
    full = [name for name, said in results.items() if "no places left (at most 1 users)" in said]
    assert len(granted) == 1 and len(full) == 1, results
    assert len(enrolments(site, instance)) == 1
