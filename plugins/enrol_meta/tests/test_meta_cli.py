"""Meta links driven from the ``enrolkit`` command line, as an admin would."""

from __future__ import annotations

import json


def ok(result):
    assert result.exit_code == 0, result.output
    return result


def refused(result, fragment):
    assert result.exit_code != 0, result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("enrolkit: error:") and fragment in last, result.stderr


def test_link_mirror_and_refusals_from_the_cli(cli, site):
    site.users(3)
    for name in ("A", "B", "C"):
        site.course(name)
    site.session.commit()
    refused(cli("instance", "add", "B", "meta", "source=A"), "enrolkit method enable meta")
    ok(cli("method", "enable", "meta"))
    ok(cli("enrolment", "add", "u1", "A"))
    ok(cli("enrolment", "add", "u2", "A", "--role", "teacher"))
    ok(cli("instance", "add", "B", "meta", "source=A"))
    ok(cli("instance", "add", "C", "meta", "source=B"))
    refused(cli("instance", "add", "A", "meta", "source=C"), "cycle C -> A -> B -> C")
    ok(cli("enrolment", "add", "u3", "A"))
    rows = json.loads(ok(cli("enrolment", "list", "B", "--json")).stdout)
    assert {(r["username"], r["method"], tuple(r["roles"])) for r in rows} == {
        ("u1", "meta", ("student",)),
        ("u2", "meta", ("teacher",)),
        ("u3", "meta", ("student",)),
    }
    refused(cli("enrolment", "remove", "u1", "B"), "unenrol the user from A instead")
    ok(cli("enrolment", "remove", "u1", "A"))
    rows = json.loads(ok(cli("enrolment", "list", "B", "--json")).stdout)
    assert {r["username"]: r["status"] for r in rows} == {
        "u1": "suspended",
        "u2": "active",
        "u3": "active",
    }
    # The site settings reach every link at once: the hourly sync finds nothing left to do.
    ok(cli("method", "set", "meta", "nosyncroles=teacher", "syncall=off"))
    assert "0 re-synced" in ok(cli("task", "run", "meta_sync")).output
    rows = json.loads(ok(cli("enrolment", "list", "B", "--json")).stdout)
    assert {r["username"]: r["status"] for r in rows} == {
        "u1": "suspended",
        "u2": "suspended",
        "u3": "active",
    }
