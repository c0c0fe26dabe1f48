"""Category enrolments driven from the ``enrolkit`` command line, as an admin would."""

from __future__ import annotations

import json


def ok(result):
    assert result.exit_code == 0, result.output
    return result


def test_category_roles_from_the_cli(cli, site):
    site.user("ann")
    site.course("PHY1", category="Sciences / Physics")
    site.session.commit()
    ok(cli("method", "enable", "category"))
    ok(cli("method", "set", "category", "roles=student,teacher"))
    ok(cli("role", "assign", "teacher", "ann", "--category", "Sciences"))
    rows = json.loads(ok(cli("enrolment", "list", "PHY1", "--json")).stdout)
    assert [(r["username"], r["method"], r["roles"]) for r in rows] == [
        ("ann", "category", ["teacher"])
    ]
    ok(cli("role", "unassign", "teacher", "ann", "--category", "Sciences"))
    assert json.loads(ok(cli("enrolment", "list", "PHY1", "--json")).stdout) == []
