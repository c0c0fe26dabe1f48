"""Issue 16, item 9: ``enrolkit enrolment suspend|resume|edit`` and ``enrolkit enrolment import``,
from the command line on SQLite and PostgreSQL."""

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
    return {
        r["username"]: (r["status"], r["timestart"], r["timeend"], tuple(r["roles"]))
        for r in listing
    }


def test_suspend_resume_and_edit_one_manual_enrolment(cli, site, clock):
    site.user("ann")
    site.course("C1")
    site.session.commit()
    ok(cli("enrolment", "add", "ann", "C1", "--role", "teacher", "--end", "2027-06-30"))
    end = 1_814_313_600  # 2027-06-30T00:00:00Z

    ok(cli("enrolment", "suspend", "ann", "C1"))
    assert rows(cli, "C1")["ann"] == ("suspended", 0, end, ("teacher",))
    view = json.loads(ok(cli("course", "view", "ann", "C1", "--json")).stdout)
    assert view["decision"] == "denied"

    # New dates for a suspended enrolment leave it suspended.
    ok(cli("enrolment", "edit", "ann", "C1", "--start", "2026-09-01", "--end", "0"))
    assert rows(cli, "C1")["ann"] == ("suspended", 1_788_220_800, 0, ("teacher",))
    ok(cli("enrolment", "resume", "ann", "C1"))
    assert rows(cli, "C1")["ann"] == ("active", 1_788_220_800, 0, ("teacher",))

    bad = cli("enrolment", "edit", "ann", "C1", "--end", "2026-01-01")
    assert bad.exit_code == 1 and "must come after the start" in bad.stderr
    missing = cli("enrolment", "suspend", "bob", "C1")
    assert missing.exit_code == 1 and "no user with username 'bob'" in missing.stderr
    site.user("bob")
    site.session.commit()
    none = cli("enrolment", "suspend", "bob", "C1")
    assert none.exit_code == 1 and "enrolkit enrolment add bob C1" in none.stderr


def test_enrolment_import_reports_rejected_lines(cli, site, tmp_path):
    for name in ("ann", "bob", "cem"):
        site.user(name)
    site.course("C1")
    site.course("C2")
    site.session.commit()
    ok(cli("enrolment", "add", "cem", "C1"))
    csv = tmp_path / "enrol.csv"
    csv.write_text(
        "username,course,role,start,end\n"
        "ann,C1,teacher,2026-09-01,2027-06-30\n"
        "bob,C2,,,\n"
        "cem,C1,student,2026-09-01,\n"
        "dan,C1,,,\n"
        "ann,C9,,,\n"
        "bob,C1,profesor,,\n"
        "bob,C1,,2026-09-01,2026-08-01\n"
        "bob,C1,,someday,\n"
    )
    result = cli("enrolment", "import", str(csv))
    assert result.exit_code == 2
    assert "enrolments: 2 created, 1 updated, 5 rejected" in result.stdout
    rejected = [line for line in result.stderr.splitlines() if line.startswith("rejected")]
    assert rejected == [
        "rejected enrol.csv:5: column username: no user with username 'dan'",
        "rejected enrol.csv:6: column course: no course with shortname 'C9'",
        rejected[2],
        "rejected enrol.csv:8: column end: must come after the start",
        rejected[4],
    ]
    assert rejected[2].startswith("rejected enrol.csv:7: column role: no role 'profesor'")
    assert rejected[4].startswith("rejected enrol.csv:9: column start: 'someday' is not a time")
    assert rows(cli, "C1")["ann"] == ("active", 1_788_220_800, 1_814_313_600, ("teacher",))
    assert rows(cli, "C1")["cem"][:2] == ("active", 1_788_220_800)
    assert rows(cli, "C2")["bob"] == ("active", 0, 0, ("student",))

    strict = cli("enrolment", "import", str(csv), "--strict")
    assert strict.exit_code == 1 and "nothing applied (--strict)" in strict.stderr
