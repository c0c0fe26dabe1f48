"""Issue 16, items 1 and 2, for cohort sync, from the command line on SQLite and PostgreSQL: a
disabled instance enrols nobody until it is enabled; disabling follows the removal rule (roles go
unless it is ``suspend``); a course moved out of the cohort's category disables the instance."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def runtime(any_db, make_runtime):
    return make_runtime(entry_points=True, url=any_db)


def ok(result):
    assert result.exit_code == 0, result.output
    return result


def rows(cli, course):
    listing = json.loads(ok(cli("enrolment", "list", course, "--json")).stdout)
    return {(r["username"], r["status"], tuple(r["roles"])) for r in listing}


def access(cli, username, course):
    return json.loads(ok(cli("course", "view", username, course, "--json")).stdout)["decision"]


def test_a_disabled_cohort_instance_enrols_nobody_until_enabled(cli, site):
    u1, u2, _u3 = site.users(3)
    site.cohort("co2", members=[u1, u2])
    site.course("C2")
    site.session.commit()
    instance = ok(cli("instance", "add", "C2", "cohort", "cohort=co2", "role=teacher",
                      "enabled=false")).stdout.strip()  # fmt: skip
    assert rows(cli, "C2") == set()
    ok(cli("cohort", "add", "co2", "u3"))
    ok(cli("instance", "update", instance, "name=Staff"))
    ok(cli("task", "run", "cohort_sync"))
    assert rows(cli, "C2") == set()

    ok(cli("instance", "update", instance, "enabled=on"))
    assert rows(cli, "C2") == {(f"u{i}", "active", ("teacher",)) for i in (1, 2, 3)}
    assert access(cli, "u1", "C2") == "granted"

    # Disabled with the default removal (unenrol): the enrolments stay, grant nothing, and the
    # instance's roles go, as Moodle's cohort sync does for a disabled instance.
    ok(cli("instance", "update", instance, "enabled=off"))
    assert rows(cli, "C2") == {(f"u{i}", "active", ()) for i in (1, 2, 3)}
    assert access(cli, "u1", "C2") == "denied"
    ok(cli("instance", "update", instance, "enabled=on"))
    assert rows(cli, "C2") == {(f"u{i}", "active", ("teacher",)) for i in (1, 2, 3)}

    # With removal=suspend the roles stay while the instance is disabled.
    ok(cli("method", "set", "cohort", "removal=suspend"))
    ok(cli("instance", "update", instance, "enabled=off"))
    assert rows(cli, "C2") == {(f"u{i}", "active", ("teacher",)) for i in (1, 2, 3)}


def test_a_course_moved_out_of_the_cohorts_category_disables_the_instance(cli, site):
    site.cohort("sci", members=site.users(2), category="Sciences")
    site.course("PHY1", category="Sciences / Physics")
    site.category("Arts")
    site.session.commit()
    instance = ok(cli("instance", "add", "PHY1", "cohort", "cohort=sci")).stdout.strip()
    assert access(cli, "u1", "PHY1") == "granted"

    ok(cli("category", "move", "Sciences / Physics", "--to", "Arts"))
    listing = json.loads(ok(cli("instance", "list", "PHY1", "--json")).stdout)
    assert [i["enabled"] for i in listing] == [False]
    assert access(cli, "u1", "PHY1") == "denied"
    log = ok(cli("log", "--course", "PHY1", "--event", "enrol_instance_updated")).stdout
    assert "course moved out of the category of cohort sci" in log
    result = cli("instance", "update", instance, "enabled=on")
    assert result.exit_code != 0 and "belongs to another category" in result.stderr

    ok(cli("category", "move", "Arts / Physics", "--to", "Sciences"))
    ok(cli("instance", "update", instance, "enabled=on"))
    assert access(cli, "u1", "PHY1") == "granted"


def test_a_suspended_cohort_enrolment_may_be_unenrolled_by_hand(cli, site):
    """Issue 16, item 11: Moodle's "Unenrol suspended users"; an active one stays refused."""
    u1, u2 = site.users(2)
    site.cohort("promo", members=[u1, u2])
    site.course("C1")
    site.session.commit()
    ok(cli("method", "set", "cohort", "removal=suspend"))
    ok(cli("instance", "add", "C1", "cohort", "cohort=promo"))
    refused = cli("enrolment", "remove", "u1", "C1")
    assert refused.exit_code == 1 and "remove the user from the cohort instead" in refused.stderr
    ok(cli("cohort", "remove", "promo", "u1"))
    assert ("u1", "suspended", ("student",)) in rows(cli, "C1")
    ok(cli("enrolment", "remove", "u1", "C1"))
    assert rows(cli, "C1") == {("u2", "active", ("student",))}
    assert "0 re-synced" in ok(cli("task", "run", "cohort_sync")).stdout
