"""Issue 16, item 5: groups by hand (``enrolkit group add|remove|list|members|enrol|unenrol``),
and a membership added by hand is never removed by a sync, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def runtime(any_db, make_runtime):
    return make_runtime(entry_points=True, url=any_db)


def ok(result):
    assert result.exit_code == 0, result.output
    return result


def refused(result, fragment):
    assert result.exit_code == 1, result.output
    assert fragment in result.stderr, result.stderr


def members(cli, course, group):
    rows = json.loads(ok(cli("group", "members", course, group, "--json")).stdout)
    return {r["username"]: r["owner"] for r in rows}


def test_groups_by_hand_and_a_sync_that_leaves_them_alone(cli, site):
    ann, bob, cem = site.users(3)
    site.cohort("promo", members=[ann, bob])
    site.course("C1")
    site.session.commit()
    ok(cli("group", "add", "C1", "Lab A"))
    refused(cli("group", "add", "C1", "Lab A"), "already has a group 'Lab A'")
    instance = ok(cli("instance", "add", "C1", "cohort", "cohort=promo", "group=Lab A")).stdout
    assert members(cli, "C1", "Lab A") == {
        "u1": f"cohort instance {instance.strip()}",
        "u2": f"cohort instance {instance.strip()}",
    }

    refused(cli("group", "enrol", "C1", "Lab A", "u3"), "not enrolled in C1: u3")
    ok(cli("enrolment", "add", "u3", "C1"))
    ok(cli("enrolment", "add", "u2", "C1"))
    ok(cli("group", "enrol", "C1", "Lab A", "u3", "u2"))  # u2's membership is taken over
    assert members(cli, "C1", "Lab A") == {
        "u1": f"cohort instance {instance.strip()}",
        "u2": "by hand",
        "u3": "by hand",
    }
    refused(cli("group", "unenrol", "C1", "Lab A", "u1"), "belong to a sync")

    # The sync moves its own members to another group, and drops u2 when u2 leaves the cohort;
    # the memberships made by hand stay.
    ok(cli("group", "add", "C1", "Lab B"))
    ok(cli("instance", "update", instance.strip(), "group=Lab B"))
    ok(cli("cohort", "remove", "promo", "u2"))
    ok(cli("task", "run", "cohort_sync"))
    assert members(cli, "C1", "Lab A") == {"u2": "by hand", "u3": "by hand"}
    assert set(members(cli, "C1", "Lab B")) == {"u1"}

    listing = json.loads(ok(cli("group", "list", "C1", "--json")).stdout)
    assert [(g["name"], g["members"], g["owner"]) for g in listing] == [
        ("Lab A", 2, "by hand"),
        ("Lab B", 1, "by hand"),
    ]
    ok(cli("group", "unenrol", "C1", "Lab A", "u3"))
    assert set(members(cli, "C1", "Lab A")) == {"u2"}
    refused(cli("group", "members", "C1", "Lab Z"), "C1 has no group 'Lab Z'")
    ok(cli("group", "remove", "C1", "Lab A"))
    assert [g["name"] for g in json.loads(ok(cli("group", "list", "C1", "--json")).stdout)] == [
        "Lab B"
    ]
