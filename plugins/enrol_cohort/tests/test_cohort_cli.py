"""Cohort sync driven from the ``enrolkit`` command line, as an admin would."""

from __future__ import annotations

import json


def ok(result):
    assert result.exit_code == 0, result.output
    return result


def refused(result, fragment):
    assert result.exit_code != 0, result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("enrolkit: error:") and fragment in last, result.stderr


def enrolments(cli, course):
    rows = json.loads(ok(cli("enrolment", "list", course, "--json")).stdout)
    return {(r["username"], r["status"], tuple(r["roles"]), tuple(r["groups"])) for r in rows}


def test_instance_add_sync_and_refusals_from_the_cli(cli, site):
    users = site.users(3)
    site.cohort("promo", members=users)
    site.course("C1")
    site.session.commit()
    ok(cli("method", "list"))
    instance_id = int(
        ok(cli("instance", "add", "C1", "cohort", "cohort=promo", "group=new")).stdout
    )
    row = ("active", ("student",), ("promo cohort",))
    assert enrolments(cli, "C1") == {(f"u{i}", *row) for i in (1, 2, 3)}
    listing = json.loads(ok(cli("instance", "list", "C1", "--json")).stdout)
    assert listing[0]["id"] == instance_id
    assert listing[0]["settings"] == {"cohort": "promo", "group": "promo cohort"}
    assert listing[0]["name"] == "Cohort sync (promo - Student)"

    refused(cli("instance", "add", "C1", "cohort", "cohort=promo"), "already synchronised")
    refused(cli("instance", "add", "C1", "cohort", "cohort=nope"), "no cohort with idnumber")
    refused(cli("enrolment", "remove", "u1", "C1"), "remove the user from the cohort instead")
    # the command line says which command does it, with the real names (not USERNAME)
    refused(cli("enrolment", "remove", "u1", "C1"), "by hand): enrolkit cohort remove promo u1")

    ok(cli("cohort", "remove", "promo", "u1"))
    ok(cli("cohort", "add", "promo", "u1", "u2"))
    ok(cli("cohort", "remove", "promo", "u3"))
    assert enrolments(cli, "C1") == {(f"u{i}", *row) for i in (1, 2)}

    ok(cli("method", "set", "cohort", "removal=suspend"))
    refused(cli("method", "set", "cohort", "removal=keep"), "removal")
    ok(cli("cohort", "remove", "promo", "u2"))
    assert ("u2", "suspended", ("student",), ("promo cohort",)) in enrolments(cli, "C1")
    assert "cohort_sync" in ok(cli("task", "list")).stdout
