"""Issue 16, items 1 and 2, for meta links, from the command line on SQLite and PostgreSQL: a
disabled link mirrors nothing until enabled; enabling, disabling or deleting an instance in the
source course reaches the target at once; so does a change of ``nosyncroles``."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def runtime(any_db, make_runtime):
    return make_runtime(entry_points=True, url=any_db)


def ok(result):
    assert result.exit_code == 0, result.output
    return result


def mirrored(cli, course):
    listing = json.loads(ok(cli("enrolment", "list", course, "--json")).stdout)
    return {
        r["username"]: (r["status"], tuple(r["roles"])) for r in listing if r["method"] == "meta"
    }


def manual_id(cli, course):
    listing = json.loads(ok(cli("instance", "list", course, "--json")).stdout)
    return str(next(i["id"] for i in listing if i["method"] == "manual"))


def test_source_instance_changes_reach_the_target_at_once(cli, site):
    site.users(2)
    site.course("A")
    site.course("B")
    site.session.commit()
    ok(cli("method", "enable", "meta"))
    ok(cli("enrolment", "add", "u1", "A"))
    ok(cli("enrolment", "add", "u2", "A", "--role", "teacher"))

    link = ok(cli("instance", "add", "B", "meta", "source=A", "enabled=off")).stdout.strip()
    assert mirrored(cli, "B") == {}
    ok(cli("instance", "update", link, "enabled=on"))
    assert mirrored(cli, "B") == {"u1": ("active", ("student",)), "u2": ("active", ("teacher",))}

    source = manual_id(cli, "A")
    out = ok(cli("instance", "update", source, "enabled=off")).stdout
    assert mirrored(cli, "B") == {"u1": ("suspended", ()), "u2": ("suspended", ())}, out
    ok(cli("instance", "update", source, "enabled=on"))
    assert mirrored(cli, "B") == {"u1": ("active", ("student",)), "u2": ("active", ("teacher",))}

    ok(cli("method", "set", "meta", "nosyncroles=teacher"))
    assert mirrored(cli, "B")["u2"] == ("active", ())
    ok(cli("method", "set", "meta", "nosyncroles="))
    assert mirrored(cli, "B")["u2"] == ("active", ("teacher",))
    result = cli("method", "set", "meta", "nosyncroles=techer")
    assert result.exit_code != 0 and "no role techer" in result.stderr

    ok(cli("method", "set", "meta", "removal=unenrol"))
    ok(cli("instance", "delete", source))
    assert mirrored(cli, "B") == {}
    assert "0 re-synced" in ok(cli("task", "run", "meta_sync")).stdout


def test_a_suspended_meta_enrolment_may_be_unenrolled_by_hand(cli, site):
    """Issue 16, item 11: Moodle's "Unenrol suspended users"; an active one stays refused."""
    site.users(2)
    site.course("A")
    site.course("B")
    site.session.commit()
    ok(cli("method", "enable", "meta"))
    ok(cli("enrolment", "add", "u1", "A"))
    ok(cli("enrolment", "add", "u2", "A"))
    ok(cli("instance", "add", "B", "meta", "source=A"))
    refused = cli("enrolment", "remove", "u1", "B")
    assert refused.exit_code == 1 and "unenrol the user from A instead" in refused.stderr
    ok(cli("enrolment", "remove", "u1", "A"))  # the link's removal: suspend and drop roles
    assert mirrored(cli, "B")["u1"] == ("suspended", ())
    ok(cli("enrolment", "remove", "u1", "B"))
    assert mirrored(cli, "B") == {"u2": ("active", ("student",))}


def test_hook_course_deleted_removes_the_links_from_it_with_their_enrolments(cli, site):
    """Issue 16, item 6: deleting a source course removes the meta links naming it, logged."""
    site.users(2)
    for name in ("A", "B", "C"):
        site.course(name)
    site.session.commit()
    ok(cli("method", "enable", "meta"))
    ok(cli("enrolment", "add", "u1", "A"))
    ok(cli("enrolment", "add", "u2", "C"))
    ok(cli("instance", "add", "B", "meta", "source=A"))
    ok(cli("instance", "add", "B", "meta", "source=C", "enabled=off"))
    assert set(mirrored(cli, "B")) == {"u1"}

    assert "1 enrolment(s) removed" in ok(cli("course", "delete", "A")).stdout
    listing = json.loads(ok(cli("instance", "list", "B", "--json")).stdout)
    assert [i["settings"]["source"] for i in listing] == ["C"]
    assert mirrored(cli, "B") == {}
    log = ok(cli("log", "--course", "B", "--json")).stdout
    events = {(e["event"], e["reason"]) for e in json.loads(log)}
    assert ("enrol_instance_deleted", "Course meta link (A)") in events
    assert any(
        event == "user_unenrolled" and "source course A deleted" in reason
        for event, reason in events
    )
    gone = cli("enrolment", "list", "A")
    assert gone.exit_code == 1 and "no course with shortname 'A'" in gone.stderr


def groups_of(cli, course):
    listing = json.loads(ok(cli("enrolment", "list", course, "--json")).stdout)
    return {r["username"]: tuple(r["groups"]) for r in listing if r["method"] == "meta"}


def test_meta_link_groups_none_new_or_a_named_group(cli, site):
    """Issue 16, item 7: ``group=none|new|NAME`` on a meta link, as cohort sync has."""
    site.users(3)
    site.course("A", fullname="Mathematics")
    site.course("B")
    site.course("C")
    site.session.commit()
    ok(cli("method", "enable", "meta"))
    for user in ("u1", "u2"):
        ok(cli("enrolment", "add", user, "A"))
    ok(cli("enrolment", "add", "u3", "C"))
    ok(cli("group", "add", "B", "Mathematics course"))
    refused = cli("instance", "add", "B", "meta", "source=A", "group=Lab")
    assert refused.exit_code == 1 and "B has no group 'Lab'" in refused.stderr

    link = ok(cli("instance", "add", "B", "meta", "source=A", "group=new")).stdout.strip()
    assert groups_of(cli, "B") == {
        "u1": ("Mathematics course (2)",),
        "u2": ("Mathematics course (2)",),
    }
    ok(cli("enrolment", "add", "u3", "A"))
    assert groups_of(cli, "B")["u3"] == ("Mathematics course (2)",)

    ok(cli("group", "add", "B", "Lab"))
    ok(cli("instance", "update", link, "group=Lab"))
    assert set(groups_of(cli, "B").values()) == {("Lab",)}
    ok(cli("group", "add", "B", "Lab C"))
    ok(cli("instance", "add", "B", "meta", "source=C", "group=Lab C"))
    # Leaving one source drops only that link's membership (removal unenrol).
    ok(cli("method", "set", "meta", "removal=unenrol"))
    ok(cli("enrolment", "remove", "u3", "A"))
    members = json.loads(ok(cli("group", "members", "B", "Lab", "--json")).stdout)
    assert sorted(m["username"] for m in members) == ["u1", "u2"]
    members = json.loads(ok(cli("group", "members", "B", "Lab C", "--json")).stdout)
    assert [m["username"] for m in members] == ["u3"]
    ok(cli("instance", "update", link, "group=none"))
    assert groups_of(cli, "B")["u1"] == ()
