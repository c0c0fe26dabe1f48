"""A chunk of lines over several courses: one engine batch, each course still reported."""

from __future__ import annotations

from enrolkit.models import ACTIVE, SUSPENDED
from enrolkit.testing import statements

HEADER = "operation,username,course,role,timestart,timeend\n"


def _site(drop, courses: int, users: int = 3, prefix: str = "C"):
    site = drop.site
    people = [site.user(f"u{number}") for number in range(users)]
    rooms = [site.course(f"{prefix}{number}") for number in range(courses)]
    return people, rooms


def _lines(courses: int, users: range, prefix: str = "C") -> str:
    return "".join(
        f"add,u{user},{prefix}{course},student,,\n" for course in range(courses) for user in users
    )


def test_a_chunk_over_several_courses_applies_each_course(db_drop):
    """Chunks of 4 lines over 3 courses of 3 lines each: chunks span courses, every line
    applies once, and each course keeps its own line order."""
    site = db_drop.site
    (ann, bob, cy), courses = _site(db_drop, 3)
    with site.atomic():
        site.set_method_settings("flatfile", {"chunk_size": "4"})
    db_drop.write("first.csv", HEADER + _lines(3, range(3)))
    [first] = db_drop.process()
    db_drop.write(
        "second.csv",
        HEADER + "del,u0,C0,student,,\nadd,u0,C1,teacher,,\ndel,u1,C2,student,,\n"
        "add,u1,C2,student,,\ndel,u2,C2,student,,\n",
    )
    [second] = db_drop.process()

    assert first.counts["enrolled"] == 9 and first.counts["roles_added"] == 9
    assert [db_drop.enrolment(ann, c).status for c in courses] == [SUSPENDED, ACTIVE, ACTIVE]
    assert db_drop.roles(ann, courses[1]) == ["student", "teacher"]
    assert db_drop.enrolment(bob, courses[2]).status == ACTIVE  # del then add: the add wins
    assert db_drop.enrolment(cy, courses[2]).status == SUSPENDED
    assert (second.counts["suspended"], second.counts["roles_removed"]) == (2, 2)
    assert len(db_drop.events("user_enrolled")) == 9


def test_a_dry_run_over_several_courses_describes_each_course_in_order(db_drop, clock):
    _site(db_drop, 3)
    db_drop.write(
        "1.csv",
        HEADER + "add,u0,C2,student,,\nadd,u1,C0,student,,\nadd,u2,C0,student,,\n"
        "add,u0,C1,student,2027-01-01,\n",
    )
    [result] = db_drop.process(dry_run=True)

    assert [(c["course"], c["enrolled"], c["scheduled"]) for c in result.changes] == [
        ("C0", 2, 0),
        ("C1", 0, 1),
        ("C2", 1, 0),
    ]
    assert result.changes[0]["users"]["enrolled"] == ["u1", "u2"]
    assert result.counts["enrolled"] == 3 and result.counts["scheduled"] == 1
    assert db_drop.files() == ["1.csv"]


def _apply_cost(drop, prefix: str, courses: int) -> list[str]:
    """Statements of applying a file of 2 new users per course, once the courses' instances
    exist (a course's first file creates its instance, once in its life)."""
    for number in range(courses):
        drop.site.course(f"{prefix}{number}")
    drop.write(f"{prefix}-setup.csv", HEADER + _lines(courses, range(1), prefix))
    drop.process()
    drop.write(f"{prefix}.csv", HEADER + _lines(courses, range(1, 3), prefix))
    with statements(drop.site.session.get_bind()) as found:
        [result] = drop.process()
    assert result.counts["enrolled"] == 2 * courses
    return list(found)


def test_a_chunk_costs_the_same_statements_over_2_or_8_courses(db_drop):
    _site(db_drop, 0)  # the users
    two = _apply_cost(db_drop, "A", 2)
    eight = _apply_cost(db_drop, "B", 8)
    assert len(eight) == len(two), eight
