"""The two file formats, CSV details, encodings, and the lines each one rejects."""

from __future__ import annotations

import csv
import re

import pytest
from enrol_flatfile.reader import FileFormatError
from enrolkit.models import ACTIVE, MailMessage


@pytest.fixture
def people(drop):
    """ann (idnumber A1), bob (B2), courses MATH101 (idnumber M1) and PHYS (P1)."""
    site = drop.site
    users = site.user("ann", idnumber="A1"), site.user("bob", idnumber="B2")
    courses = site.course("MATH101", idnumber="M1"), site.course("PHYS", idnumber="P1")
    return users, courses


def test_header_columns_by_name_in_any_order_with_idnumbers(drop, people):
    (ann, bob), (math, phys) = people
    drop.write(
        "ids.csv",
        "role;courseidnumber;useridnumber;operation\nstudent;M1;A1;add\nteacher;P1;B2;add\n",
    )
    drop.process()
    assert drop.roles(ann, math) == ["student"] and drop.roles(bob, phys) == ["teacher"]


def test_moodle_positional_format_with_comma_or_semicolon_per_line(drop, people):
    (ann, bob), (math, phys) = people
    drop.write(
        "moodle.txt",
        "add,student,A1,M1\n"
        "add;teacher;B2;P1;1700000000;1800000000\n"
        '"ADD" , "Student", B2 , M1\n'
        "'add','editingteacher','A1','P1','0','0'\n",
    )
    [result] = drop.process()
    assert result.counts["rejected"] == 0
    assert drop.roles(ann, math) == ["student"]
    assert drop.roles(bob, phys) == ["teacher"]
    assert drop.enrolment(bob, phys).timestart == 1700000000
    assert drop.roles(bob, math) == ["student"]
    assert drop.roles(ann, phys) == ["editingteacher"]


def test_real_csv_quoting_whitespace_and_case(drop):
    site = drop.site
    ann = site.user("ann")
    course = site.course("Maths, level 2")
    drop.write(
        "quoted.csv",
        ' Operation , USERNAME ,course,Role\n  ADD ,  ann  ,"Maths, level 2", StudENT \n',
    )
    [result] = drop.process()
    assert result.counts["rejected"] == 0
    assert drop.roles(ann, course) == ["student"]


def test_a_byte_order_mark_and_another_encoding(drop, people):
    (ann, bob), (math, phys) = people
    site = drop.site
    zofia = site.user("žofia", idnumber="Ž1")
    drop.write("bom.csv", "\ufeffoperation,username,course,role\nadd,ann,MATH101,student\n")
    drop.write("bom.txt", "\ufeffadd,student,B2,M1\n")
    drop.process()
    assert drop.roles(ann, math) == ["student"] and drop.roles(bob, math) == ["student"]

    with site.atomic():
        site.set_method_settings("flatfile", {"encoding": "iso-8859-2"})
    drop.write("latin2.txt", "add;teacher;Ž1;P1\n", encoding="iso-8859-2")
    [result] = drop.process()
    assert result.counts["rejected"] == 0
    assert drop.roles(zofia, phys) == ["teacher"]


def test_role_aliases_replace_and_refuse_role_names(drop, people):
    (ann, bob), (math, phys) = people
    site = drop.site
    with site.atomic():
        site.set_method_settings("flatfile", {"role_map": "teacher=ucitel\nmanager="})
    drop.write(
        "roles.txt", "add,ucitel,A1,M1\nadd,teacher,B2,M1\nadd,manager,B2,P1\nadd,student,B2,P1\n"
    )
    [result] = drop.process()
    assert drop.roles(ann, math) == ["teacher"]
    assert [e["reason"] for e in result.errors] == [
        "unknown role 'teacher' (roles files may use: editingteacher, student, ucitel)",
        "unknown role 'manager' (roles files may use: editingteacher, student, ucitel)",
    ]
    assert drop.roles(bob, phys) == ["student"]


def test_a_quoted_value_may_span_lines_and_line_numbers_count_blank_lines(drop):
    site = drop.site
    site.user("ann"), site.course("MATH101")
    drop.write(
        "multi.csv",
        'operation,username,course,role\n\nadd,"an\nn",MATH101,student\n\nadd,bob,MATH101,x\n',
    )
    [result] = drop.process()
    assert result.errors == [
        {"line": 3, "reason": "unknown user 'an\\nn'", "text": 'add,"an\nn",MATH101,student'},
        {
            "line": 6,
            "reason": "unknown role 'x' (roles files may use: editingteacher, manager, "
            "student, teacher)",
            "text": "add,bob,MATH101,x",
        },
    ]


BAD = """operation,username,course,role,timestart,timeend
add,ann,MATH101,student,,
add,nobody,MATH101,student,,
add,ann,NOPE,student,,
add,ann,MATH101,student;teacher,,
remove,ann,MATH101,student,,
add,ann,MATH101,student,tomorrow,
add,ann,MATH101,student,2027-01-01,2026-12-31
add,ann,MATH101,student
add,bob,PHYS,teacher,,
add,ann,MATH101,student,,
add,gone,MATH101,student,,
"""

BAD_REASONS = [
    (3, "unknown user 'nobody'"),
    (4, "unknown course 'NOPE'"),
    (
        5,
        "unknown role 'student;teacher' (roles files may use: editingteacher, manager, "
        "student, teacher)",
    ),  # fmt: skip
    (6, "unknown operation 'remove'; expected add or del"),
    (
        7,
        "timestart: 'tomorrow' is not a time; give Unix seconds or ISO 8601 such as "
        "2026-09-01 or 2026-09-01T08:00:00Z",
    ),  # fmt: skip
    (8, "timeend 2026-12-31T00:00:00Z is before timestart 2027-01-01T00:00:00Z"),
    (9, "expected 6 fields (operation,username,course,role,timestart,timeend), found 4"),
    (12, "unknown user 'gone'"),
]


def test_bad_lines_are_rejected_with_line_and_reason_and_the_others_apply(drop, people):
    (ann, bob), (math, phys) = people
    site = drop.site
    site.user("gone", deleted=True)
    admin = site.user("root", siteadmin=True, email="root@example.org")
    site.user("other-admin", siteadmin=True, email="admin2@example.org")
    drop.write("enrol.csv", BAD)

    [result] = drop.process()

    assert drop.enrolment(ann, math).status == ACTIVE
    assert drop.roles(bob, phys) == ["teacher"]
    assert [(e["line"], e["reason"]) for e in result.errors] == BAD_REASONS
    assert result.counts["lines"] == 11 and result.counts["rejected"] == 8
    assert drop.files() == ["enrol.csv.done", "enrol.csv.errors.csv"]
    with (drop.folder / "enrol.csv.errors.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["line", "reason", "original_line"]
    assert rows[1] == ["3", "unknown user 'nobody'", "add,nobody,MATH101,student,,"]
    assert [int(row[0]) for row in rows[1:]] == [line for line, _ in BAD_REASONS]

    mails = site.session.query(MailMessage).order_by(MailMessage.to).all()
    assert [m.to for m in mails] == ["admin2@example.org", admin.email]
    assert mails[0].subject == "Flat-file enrolment: 8 line(s) rejected in enrol.csv"
    assert "enrol.csv: 11 line(s), 3 applied, 0 scheduled, 8 rejected" in mails[0].body
    assert "line 8: timeend 2026-12-31T00:00:00Z is before timestart" in mails[0].body
    assert str(drop.folder / "enrol.csv.errors.csv") in mails[0].body


def test_no_mail_when_nothing_is_rejected_or_the_admins_do_not_want_it(drop, people):
    site = drop.site
    site.user("root", siteadmin=True)
    drop.write("good.csv", "add,student,A1,M1\n")
    drop.process()
    with site.atomic():
        site.set_method_settings("flatfile", {"mail_admins": "off"})
    drop.write("bad.csv", "add,student,XX,M1\n")
    [result] = drop.process()
    assert result.counts["rejected"] == 1
    assert site.session.query(MailMessage).count() == 0


def test_a_line_that_is_not_in_the_encoding_is_rejected(drop, people):
    (ann, bob), (math, _) = people
    (drop.folder / "mixed.txt").write_bytes(b"add,student,A1,M1\nadd,student,\xff\xfe,M1\n")
    [result] = drop.process()
    assert drop.roles(ann, math) == ["student"]
    assert [(e["line"], e["reason"]) for e in result.errors] == [(2, "not valid utf-8 text")]


def test_an_ambiguous_idnumber_is_rejected(drop, people):
    drop.site.user("twin", idnumber="A1")
    drop.write("ids.txt", "add,student,A1,M1\n")
    [result] = drop.process()
    assert result.errors[0]["reason"] == "user idnumber 'A1' matches 2 users; make it unique"


@pytest.mark.parametrize(
    "header, message",
    [
        ("operation,username,course,role,group", "unknown column(s) 'group'"),
        ("operation,username,course", "the header lacks role"),
        ("operation,username,useridnumber,course,role", "the header names user twice"),
    ],
)
def test_a_bad_header_stops_the_file_and_tells_the_admins(drop, people, header, message):
    site = drop.site
    site.user("root", siteadmin=True)
    drop.write("a.csv", header + "\nadd,ann,MATH101,student\n")
    drop.write("b.csv", "add,student,A1,M1\n")
    with pytest.raises(FileFormatError, match=re.escape(f"a.csv:1: {message}")):
        drop.process()
    assert drop.files() == ["a.csv", "b.csv"]
    assert drop.events() == []
    [mail] = site.session.query(MailMessage).all()
    assert mail.subject == "Flat-file enrolment: a.csv was not applied"
    with pytest.raises(FileFormatError):
        drop.process()
    assert site.session.query(MailMessage).count() == 1  # not again for the same file
