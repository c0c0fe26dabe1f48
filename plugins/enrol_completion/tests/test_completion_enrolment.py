"""Completing a course enrols in the next one, driven from the command line as an admin would."""

from __future__ import annotations

from completion_helpers import enrolled, listing, log_events, ok, refused
from enrolkit import clock as timefmt

DAY = 86_400


def test_completing_the_source_enrols_at_once(cli, site, clock):
    site.user("jean")
    site.course("A")
    site.course("B")
    site.session.commit()
    refused(cli("instance", "add", "B", "completion", "source=A"), "enable it first")
    ok(cli("method", "enable", "completion"))
    instance = int(
        ok(cli("instance", "add", "B", "completion", "source=A", "duration=2592000")).stdout
    )
    assert "denied" in ok(cli("course", "view", "jean", "B")).stdout

    ok(cli("course", "complete", "jean", "A"))

    now = clock.now()
    row = enrolled(cli, "B")["jean"]
    assert (row["instance"], row["status"], row["roles"]) == (instance, "active", ["student"])
    assert (row["timestart"], row["timeend"]) == (now, now + 30 * DAY)
    assert ok(cli("course", "view", "jean", "B")).stdout.startswith("granted")
    [entry] = log_events(cli, "user_enrolled")
    assert entry["reason"] == "completed A on 2026-09-01T08:00:00Z"
    assert listing(cli, "instance", "list", "B")[0]["name"] == "After completing A"


def test_a_delayed_enrolment_starts_after_the_delay_and_the_cron(cli, site, clock):
    site.user("jean")
    site.course("A")
    site.course("B")
    site.session.commit()
    ok(cli("method", "enable", "completion"))
    ok(cli("instance", "add", "B", "completion", "source=A", f"delay={2 * DAY}"))
    completed = clock.now()

    ok(cli("course", "complete", "jean", "A"))
    [delayed] = log_events(cli, "enrolment_delayed")
    assert delayed["reason"].endswith("the enrolment starts 2026-09-03T08:00:00Z")

    clock.advance(DAY)
    ok(cli("cron"))
    assert enrolled(cli, "B") == {}
    assert listing(cli, "mail", "list") == []
    assert "denied" in ok(cli("course", "view", "jean", "B")).stdout

    clock.advance(DAY)
    assert enrolled(cli, "B") == {}  # due now, but nothing happens before the cron runs
    ok(cli("cron"))
    row = enrolled(cli, "B")["jean"]
    assert (row["status"], row["timestart"], row["timeend"]) == ("active", completed + 2 * DAY, 0)
    assert ok(cli("course", "view", "jean", "B")).stdout.startswith("granted")
    [welcome] = listing(cli, "mail", "list")
    assert welcome["to"] == "jean@example.org" and welcome["created"] == clock.now()

    ok(cli("cron", "--force"))  # a second run finds nothing left to do
    assert len(listing(cli, "mail", "list")) == 1


def test_any_of_several_sources_enrols(cli, site):
    for name in ("ana", "bob", "carl"):
        site.user(name)
    for course in ("A1", "A2", "C", "B"):
        site.course(course)
    site.session.commit()
    ok(cli("method", "enable", "completion"))
    first = int(ok(cli("instance", "add", "B", "completion", "source=A1")).stdout)
    second = int(ok(cli("instance", "add", "B", "completion", "source=A2", "role=teacher")).stdout)

    ok(cli("course", "complete", "ana", "A1"))
    ok(cli("course", "complete", "bob", "A2"))
    ok(cli("course", "complete", "carl", "C"))

    rows = enrolled(cli, "B")
    assert {name: (row["instance"], row["roles"]) for name, row in rows.items()} == {
        "ana": (first, ["student"]),
        "bob": (second, ["teacher"]),
    }
    names = [row["name"] for row in listing(cli, "instance", "list", "B")]
    assert names == ["After completing A1", "After completing A2"]


def test_completions_outside_the_window_are_logged_and_ignored(cli, site, clock):
    clock.set("2026-09-15")
    for name in ("early", "inside", "late"):
        site.user(name)
    site.course("A")
    site.course("B")
    site.session.commit()
    ok(cli("method", "enable", "completion"))
    window = ("enrolstart=2026-09-01", "enrolend=2026-12-31T23:59:59Z")
    ok(cli("instance", "add", "B", "completion", "source=A", *window))

    ok(cli("course", "complete", "early", "A", "--time", "2026-08-20"))
    ok(cli("course", "complete", "inside", "A", "--time", "2026-09-10"))
    clock.set("2027-01-10")
    ok(cli("course", "complete", "late", "A"))

    assert set(enrolled(cli, "B")) == {"inside"}
    ignored = {row["user"]: row["reason"] for row in log_events(cli, "completion_ignored")}
    assert set(ignored) == {"early", "late"}
    assert ignored["early"] == (
        "completed A on 2026-08-20T00:00:00Z, outside the window "
        "(2026-09-01T00:00:00Z to 2026-12-31T23:59:59Z)"
    )


def test_an_equivalence_recorded_late_starts_the_enrolment_now(cli, site, clock):
    site.user("jean")
    site.course("A")
    site.course("B")
    site.session.commit()
    ok(cli("method", "enable", "completion"))
    ok(cli("instance", "add", "B", "completion", "source=A", f"duration={7 * DAY}"))

    ok(cli("course", "complete", "jean", "A", "--time", "2025-06-01"))  # granted by an admin

    row = enrolled(cli, "B")["jean"]
    assert (row["timestart"], row["timeend"]) == (clock.now(), clock.now() + 7 * DAY)
    assert "2025-06-01" in log_events(cli, "user_enrolled")[0]["reason"]


def test_an_enrolment_by_completion_may_be_removed_by_hand(cli, site):
    site.user("jean")
    site.course("A")
    site.course("B")
    site.session.commit()
    ok(cli("method", "enable", "completion"))
    ok(cli("instance", "add", "B", "completion", "source=A"))
    ok(cli("course", "complete", "jean", "A"))

    ok(cli("enrolment", "remove", "jean", "B"))

    assert enrolled(cli, "B") == {}
    assert "already completed" in ok(cli("course", "complete", "jean", "A")).stdout
    assert enrolled(cli, "B") == {}


def test_settings_are_checked_when_saved(cli, site):
    site.course("A")
    site.course("B")
    site.course("NOCOMP", enablecompletion=False)
    site.session.commit()
    ok(cli("method", "enable", "completion"))
    add = ("instance", "add", "B", "completion")

    refused(cli(*add), "source: Missing data for required field")
    refused(cli(*add, "source=ZZ"), "source: no course with shortname 'ZZ'")
    refused(cli(*add, "source=B"), "cannot require its own completion")
    refused(cli(*add, "source=NOCOMP"), "NOCOMP does not track completion")
    refused(cli(*add, "source=A", "delay=-1"), "delay")
    refused(cli(*add, "source=A", "enrolstart=soon"), "'soon' is not a time")
    refused(
        cli(*add, "source=A", "enrolstart=2026-10-01", "enrolend=2026-09-01"),
        "enrolend: must come after enrolstart",
    )
    refused(
        cli(*add, "source=A", "welcome_template=Hi {{ user.nickname }}"),
        "welcome_template: line 1: user has no field 'nickname'",
    )
    assert listing(cli, "instance", "list", "B") == []

    template = "welcome_template=You finished {{ completed_course.fullname }} ({$a->completed})"
    ok(cli(*add, "source=A", template, "enrolend=2026-12-31"))
    [instance] = listing(cli, "instance", "list", "B")
    assert instance["settings"]["enrolend"] == timefmt.parse_time("2026-12-31")


def test_changing_the_source_and_deleting_the_instance(cli, site):
    for name in ("ana", "bob", "carl"):
        site.user(name)
    for course in ("A", "A2", "B"):
        site.course(course)
    site.session.commit()
    ok(cli("method", "enable", "completion"))
    instance = ok(cli("instance", "add", "B", "completion", "source=A")).stdout.strip()

    ok(cli("instance", "update", instance, "source=A2"))
    ok(cli("course", "complete", "ana", "A"))
    ok(cli("course", "complete", "bob", "A2"))
    assert set(enrolled(cli, "B")) == {"bob"}
    assert listing(cli, "instance", "list", "B")[0]["name"] == "After completing A2"

    ok(cli("instance", "delete", instance))
    ok(cli("course", "complete", "carl", "A2"))
    assert enrolled(cli, "B") == {}


def test_nothing_happens_while_the_method_is_disabled(cli, site):
    site.user("jean")
    site.course("A")
    site.course("B")
    site.session.commit()
    ok(cli("method", "enable", "completion"))
    ok(cli("instance", "add", "B", "completion", "source=A"))
    ok(cli("method", "disable", "completion"))

    ok(cli("course", "complete", "jean", "A"))

    assert enrolled(cli, "B") == {}
