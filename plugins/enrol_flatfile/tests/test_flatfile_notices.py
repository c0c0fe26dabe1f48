"""Issue 16, item 4: Moodle's ``mailstudents`` and ``mailteachers`` for the flat file, through
the outbox, from the command line on SQLite and PostgreSQL: a new enrolment mails the user a
welcome and the course's editing teacher (or a site admin) a notice; a repeated line mails
nobody."""

from __future__ import annotations

import json

import pytest

HEADER = "operation,username,course,role,timestart,timeend\n"


@pytest.fixture
def runtime(any_db, make_runtime, home):
    return make_runtime(entry_points=True, url=any_db)


def ok(result):
    assert result.exit_code == 0, result.output
    return result


def outbox(cli):
    rows = json.loads(ok(cli("mail", "list", "--json")).stdout)
    return [(r["to"], r["subject"], r["body"]) for r in rows]


def test_new_enrolments_mail_the_user_and_the_enroller(cli, site, home, clock):
    site.user("ann", firstname="Ann", lastname="Lee")
    site.user("bob", firstname="Bob", lastname="Roy")
    site.user("tess", firstname="Tess", lastname="Teacher")
    site.user("root", siteadmin=True)
    site.course("C1", fullname="Chemistry &amp; Physics")
    site.course("C2")
    site.session.commit()
    ok(cli("method", "enable", "flatfile"))
    ok(cli("enrolment", "add", "tess", "C1", "--role", "editingteacher"))
    ok(cli("method", "set", "flatfile", "mailstudents=1", "mailteachers=1", "mailadmins=0"))
    settings = json.loads(ok(cli("method", "set", "flatfile", "removal=suspend")).stdout)
    assert (settings["mail_students"], settings["mail_teachers"]) == (True, True)
    assert settings["mail_admins"] is False

    (home / "flatfile" / "a.csv").write_text(
        HEADER + "add,ann,C1,student,,\nadd,bob,C2,student,,\n"
    )
    ok(cli("flatfile", "process"))
    sent = outbox(cli)
    assert [(to, subject) for to, subject, _ in sent] == [
        ("ann@example.org", "Welcome to Chemistry & Physics"),
        ("tess@example.org", "New enrolment in C1"),
        ("bob@example.org", "Welcome to Course C2"),
        ("root@example.org", "New enrolment in C2"),
    ]
    assert 'Ann Lee has been enrolled in the course "Chemistry & Physics"' in sent[1][2]

    (home / "flatfile" / "b.csv").write_text(HEADER + "add,ann,C1,student,,\n")
    ok(cli("flatfile", "process"))
    assert len(outbox(cli)) == 4

    ok(cli("method", "set", "flatfile", "mail_students=off", "mail_teachers=off"))
    ok(cli("enrolment", "remove", "bob", "C2"))
    (home / "flatfile" / "c.csv").write_text(HEADER + "add,bob,C2,student,,\n")
    ok(cli("flatfile", "process"))
    assert len(outbox(cli)) == 4
