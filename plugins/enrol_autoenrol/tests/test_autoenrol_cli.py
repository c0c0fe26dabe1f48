"""Auto-enrol from the ``enrolkit`` command line, as an admin and the LMS would drive it: Jean's
login, Marie's course view, confirm mode, the rule tester and the tasks."""

from __future__ import annotations

import json

from autoenrol_helpers import ONBOARDING, profile, rule


def ok(result):
    assert result.exit_code == 0, result.output
    return result


def refused(result, fragment):
    assert result.exit_code != 0, result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("enrolkit: error:") and fragment in last, result.stderr


def enrolled(cli, course) -> dict[str, dict]:
    rows = json.loads(ok(cli("enrolment", "list", course, "--json")).stdout)
    return {row["username"]: row for row in rows if row["method"] == "autoenrol"}


def test_jean_logs_in_and_the_enrolment_list_shows_him_at_once(cli, site):
    site.user("jean", department="IT")
    site.course("ONBOARD")
    site.session.commit()
    refused(cli("instance", "add", "ONBOARD", "autoenrol"), "enable it first")
    ok(cli("method", "enable", "autoenrol"))
    ok(cli("badge", "award", "Onboarding complété", "jean"))
    instance = int(
        ok(
            cli(
                "instance", "add", "ONBOARD", "autoenrol", "mode=login", f"rule={rule(ONBOARDING)}",
                "group_template=Team {department}",
            )
        ).stdout
    )  # fmt: skip

    ok(cli("user", "login", "jean"))

    row = enrolled(cli, "ONBOARD")["jean"]
    assert (row["instance"], row["status"], row["roles"], row["groups"]) == (
        instance,
        "active",
        ["student"],
        ["Team IT"],
    )
    log = json.loads(ok(cli("log", "--component", "enrol_autoenrol", "--json")).stdout)
    assert {entry["event"] for entry in log} >= {"enrol_instance_created", "user_enrolled"}


def test_marie_views_the_course_and_is_granted_paul_is_told_why_not(cli, site):
    site.user("marie", department="IT")
    site.user("paul", department="Marketing")
    site.course("NET101")
    site.session.commit()
    ok(cli("method", "enable", "autoenrol"))
    it_only = rule({"op": "&", "c": [profile("department", "IT")]})
    ok(cli("instance", "add", "NET101", "autoenrol", "mode=view", f"rule={it_only}"))

    granted = json.loads(ok(cli("course", "view", "marie", "NET101", "--json")).stdout)
    denied = json.loads(ok(cli("course", "view", "paul", "NET101", "--json")).stdout)

    assert granted["decision"] == "granted"
    assert denied == {
        "decision": "denied",
        "reason": "Auto-enrol: you do not meet the conditions: "
        "department is 'Marketing', expected 'IT'",
    }
    assert set(enrolled(cli, "NET101")) == {"marie"}


def test_confirm_mode_from_the_cli(cli, site):
    site.user("ann")
    site.course("C1")
    site.session.commit()
    ok(cli("method", "enable", "autoenrol"))
    ok(cli("instance", "add", "C1", "autoenrol", "mode=confirm", "name=Join us"))
    assert json.loads(ok(cli("course", "view", "ann", "C1", "--json")).stdout) == {
        "decision": "confirm",
        "reason": 'Join us: confirm to enrol ("Enrol me")',
        "offers": [
            {
                "instance_id": 1,
                "reason": 'Join us: confirm to enrol ("Enrol me")',
                "fields": [],
            }
        ],
    }
    assert enrolled(cli, "C1") == {}
    assert ok(cli("course", "enrol-me", "ann", "C1")).stdout.startswith("granted")
    assert set(enrolled(cli, "C1")) == {"ann"}


def test_rule_test_explains_condition_by_condition(cli, site, clock):
    site.user("jean", department="IT")
    site.user("paul", department="Sales")
    site.course("ONBOARD")
    site.course("OTHER")
    site.session.commit()
    ok(cli("method", "enable", "autoenrol"))
    ok(cli("method", "enable", "manual"))
    ok(cli("badge", "award", "Onboarding complété", "jean"))
    instance = ok(
        cli("instance", "add", "ONBOARD", "autoenrol", "mode=login", f"rule={rule(ONBOARDING)}")
    ).stdout.strip()

    text = ok(cli("rule", "test", instance, "jean")).stdout
    assert text.splitlines() == [
        f"instance {instance} (login mode), user jean:",
        "  [pass] all of these:",
        "    [pass] any of these:",
        "      [pass] department is 'IT'",
        "      [fail] department is 'IT', expected 'Support'",
        "    [pass] badge 'Onboarding complété' awarded",
        "    [pass] it is 2026-09-01T08:00:00Z, on or after 2026-01-01T00:00:00Z",
        "=> jean matches the rule",
    ]

    verdict = json.loads(ok(cli("rule", "test", instance, "paul", "--json")).stdout)
    assert verdict["matches"] is False
    assert (
        verdict["explanation"]["children"][1]["reason"] == "badge 'Onboarding complété' not awarded"
    )
    lines = ok(cli("rule", "test", instance, "paul")).stdout.splitlines()
    assert lines[-1] == (
        "=> paul does not match: none of: department is 'Sales', expected 'IT' / "
        "department is 'Sales', expected 'Support'; badge 'Onboarding complété' not awarded"
    )

    ok(cli("enrolment", "add", "jean", "ONBOARD"))
    assert ok(cli("rule", "test", instance, "jean")).stdout.splitlines()[-1] == (
        "but no new enrolment now: jean is already enrolled in the course by another method"
    )
    manual = json.loads(ok(cli("instance", "list", "ONBOARD", "--json")).stdout)[1]["id"]
    refused(cli("rule", "test", str(manual), "jean"), "rule test works on autoenrol instances")
    refused(cli("rule", "test", instance, "nobody"), "nobody")


def test_the_tasks_are_listed_and_run(cli, site, clock):
    site.user("ann", lastlogin=clock.now() - 60)
    site.course("C1")
    site.session.commit()
    ok(cli("method", "enable", "autoenrol"))
    ok(cli("instance", "add", "C1", "autoenrol", "mode=login"))
    listed = ok(cli("task", "list")).stdout
    assert "autoenrol_enrolments" in listed and "autoenrol_expiry" in listed
    assert "1 user(s) enrolled" in ok(cli("task", "run", "autoenrol_enrolments")).stdout
    assert set(enrolled(cli, "C1")) == {"ann"}
    assert "0 enrolment(s)" in ok(cli("task", "run", "autoenrol_expiry")).stdout
