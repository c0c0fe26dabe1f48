"""Applying files: add and del, dates, roles, future lines, rejected lines, the file's lifecycle."""

from __future__ import annotations

import pytest
from enrolkit.models import ACTIVE, SUSPENDED

EXAMPLE = """operation,username,course,role,timestart,timeend
add,etudiant1,MATH101,student,1640000000,1672000000
add,etudiant2,MATH101,student,1640000000,1672000000
del,etudiant3,MATH101,student,,
"""


def test_the_documented_example(db_drop):
    site = db_drop.site
    e1, e2, e3 = (site.user(f"etudiant{i}") for i in (1, 2, 3))
    math = site.course("MATH101")
    db_drop.write("before.csv", "operation,username,course,role\nadd,etudiant3,MATH101,student\n")
    db_drop.process()

    db_drop.write("enrol.csv", EXAMPLE)
    [result] = db_drop.process()

    for user in (e1, e2):
        enrolment = db_drop.enrolment(user, math)
        assert (enrolment.status, enrolment.timestart, enrolment.timeend) == (
            ACTIVE,
            1640000000,
            1672000000,
        )
        assert db_drop.roles(user, math) == ["student"]
    # del: the role goes and the default removal action (suspend and remove roles) applies.
    assert db_drop.enrolment(e3, math).status == SUSPENDED
    assert db_drop.roles(e3, math) == []
    assert result.counts["lines"] == 3 and result.counts["rejected"] == 0
    assert (result.counts["enrolled"], result.counts["suspended"]) == (2, 1)
    assert db_drop.files() == ["before.csv.done", "enrol.csv.done"]
    assert ("user_enrolled", "etudiant2", "enrol.csv line 3") in db_drop.events()
    assert ("user_enrolment_updated", "etudiant3", "suspended: enrol.csv line 4") in (
        db_drop.events()
    )


HEADER = "operation,username,course,role,timestart,timeend\n"


def test_add_reactivates_a_suspended_enrolment_and_updates_its_dates(drop):
    ann, math = drop.site.user("ann"), drop.site.course("MATH101")
    drop.write("1.csv", HEADER + "add,ann,MATH101,student,1700000000,1800000000\n")
    drop.write("2.csv", HEADER + "del,ann,MATH101,student,,\n")
    drop.write("3.csv", HEADER + "add,ann,MATH101,student,2026-01-01,2027-06-30T12:00:00Z\n")
    drop.process()
    enrolment = drop.enrolment(ann, math)
    assert (enrolment.status, enrolment.timestart, enrolment.timeend) == (
        ACTIVE,
        1767225600,
        1814356800,
    )
    assert drop.roles(ann, math) == ["student"]
    assert [e[0] for e in drop.events() if e[0].startswith("user_")] == [
        "user_enrolled",
        "user_enrolment_updated",
        "user_enrolment_updated",
    ]
    assert drop.events("user_enrolment_updated")[-1][2] == "3.csv line 2"


def test_several_roles_give_one_enrolment_in_one_instance_that_owns_them(drop):
    from enrolkit.models import EnrolInstance, RoleAssignment

    site = drop.site
    ann, math = site.user("ann"), site.course("MATH101")
    drop.write("1.csv", HEADER + "add,ann,MATH101,student,,\nadd,ann,MATH101,teacher,,\n")
    drop.write("2.csv", HEADER + "add,ann,MATH101,editingteacher,,\n")
    drop.process()
    [instance] = site.session.query(EnrolInstance).filter_by(course_id=math.id).all()
    assert instance.method == "flatfile"
    assert drop.enrolment(ann, math).instance_id == instance.id
    assert drop.roles(ann, math) == ["editingteacher", "student", "teacher"]
    owners = {(ra.component, ra.itemid) for ra in site.session.query(RoleAssignment)}
    assert owners == {("enrol_flatfile", instance.id)}
    assert len(drop.events("user_enrolled")) == 1


@pytest.mark.parametrize(
    "action, status, roles",
    [
        ("unenrol", None, []),
        ("suspend", SUSPENDED, ["teacher"]),
        ("suspend_noroles", SUSPENDED, []),
        ("keep", ACTIVE, ["teacher"]),
    ],
)
def test_del_removes_its_role_then_applies_the_removal_action(drop, action, status, roles):
    site = drop.site
    ann, math = site.user("ann"), site.course("MATH101")
    with site.atomic():
        site.set_method_settings("flatfile", {"removal": action})
    drop.write("1.csv", HEADER + "add,ann,MATH101,student,,\nadd,ann,MATH101,teacher,,\n")
    drop.write("2.csv", HEADER + "del,ann,MATH101,student,,\n")
    drop.process()
    enrolment = drop.enrolment(ann, math)
    assert (enrolment.status if enrolment else None) == status
    assert drop.roles(ann, math) == roles
    if action == "unenrol":
        assert drop.events("user_unenrolled") == [("user_unenrolled", "ann", "2.csv line 2")]


def test_del_leaves_enrolments_of_other_methods_alone(drop):
    from enrolkit.enrolments import enrol_manually, list_enrolments

    site = drop.site
    ann, math = site.user("ann"), site.course("MATH101")
    enrol_manually(site, ann, math, role=site.role("student"))
    drop.write("del.csv", HEADER + "del,ann,MATH101,student,,\n")
    [result] = drop.process()
    [row] = list_enrolments(site, math)
    assert (row["method"], row["status"], row["roles"]) == ("manual", "active", ["student"])
    assert result.counts["suspended"] == 0


def test_a_future_line_waits_in_the_pending_queue_and_a_later_line_replaces_it(drop, clock):
    from enrolkit import pending

    site = drop.site
    ann, bob, math = site.user("ann"), site.user("bob"), site.course("MATH101")
    drop.write(
        "1.csv",
        HEADER
        + "add,ann,MATH101,student,2026-10-01,2027-07-01\n"
        + "add,bob,MATH101,student,2026-10-01,\n",
    )
    [result] = drop.process()
    assert result.counts["scheduled"] == 2
    assert drop.enrolment(ann, math) is None
    # A later file: ann's start moves; bob's line is replaced by an immediate one.
    drop.write(
        "2.csv",
        HEADER + "add,ann,MATH101,student,2026-11-01,2027-07-01\nadd,bob,MATH101,teacher,,\n"
        "add,bob,MATH101,student,,\n",
    )
    drop.process()
    [waiting] = pending.pending(site)
    assert (waiting.user_id, waiting.due, waiting.reason) == (ann.id, 1793491200, "2.csv line 2")
    assert drop.enrolment(bob, math).timestart == 0
    assert drop.roles(bob, math) == ["student", "teacher"]

    clock.set("2026-10-15")
    pending.apply_due(site)
    assert drop.enrolment(ann, math) is None
    clock.set("2026-11-01T00:00:01Z")
    pending.apply_due(site)
    enrolment = drop.enrolment(ann, math)
    assert (enrolment.status, enrolment.timestart, enrolment.timeend) == (
        ACTIVE,
        1793491200,
        1814400000,
    )
    assert drop.roles(ann, math) == ["student"]


def test_a_future_del_removes_the_role_when_due(drop, clock):
    from enrolkit import pending

    site = drop.site
    ann, math = site.user("ann"), site.course("MATH101")
    drop.write("1.csv", HEADER + "add,ann,MATH101,student,,\ndel,ann,MATH101,student,2026-12-01,\n")
    drop.process()
    assert drop.enrolment(ann, math).status == ACTIVE
    clock.set("2026-12-02")
    pending.apply_due(site)
    assert drop.enrolment(ann, math).status == SUSPENDED
    assert drop.roles(ann, math) == []


def test_lines_of_one_course_apply_in_order_across_transactions(drop):
    """With 2 lines per transaction, a course's 7 lines come in 4 slices, still in order."""
    site = drop.site
    users = site.users(3)
    math = site.course("MATH101")
    with site.atomic():
        site.set_method_settings("flatfile", {"chunk_size": "2"})
    drop.write(
        "big.csv",
        HEADER
        + "add,u1,MATH101,student,,\nadd,u2,MATH101,student,,\nadd,u3,MATH101,student,,\n"
        + "del,u1,MATH101,student,,\nadd,u1,MATH101,teacher,,\ndel,u2,MATH101,student,,\n"
        + "add,u3,MATH101,teacher,,\n",
    )
    [result] = drop.process()
    assert [drop.roles(u, math) for u in users] == [["teacher"], [], ["student", "teacher"]]
    assert [drop.enrolment(u, math).status for u in users] == [ACTIVE, SUSPENDED, ACTIVE]
    assert result.counts["lines"] == 7


def test_repeated_lines_and_a_repeated_file_are_harmless(drop):
    site = drop.site
    ann, math = site.user("ann"), site.course("MATH101")
    line = "add,ann,MATH101,student,1700000000,\n"
    drop.write("1.csv", HEADER + line * 3)
    drop.process()
    drop.write("1.csv", HEADER + line)  # the same export again, a day later
    [again] = drop.process()
    assert drop.roles(ann, math) == ["student"]
    assert len(drop.events("user_enrolled")) == 1
    assert not any(again.counts[k] for k in ("enrolled", "updated", "roles_added"))
    assert drop.files() == ["1.csv.2.done", "1.csv.done"]


def test_files_apply_in_name_order_and_only_regular_files_of_the_folder(drop, tmp_path):
    site = drop.site
    ann, math = site.user("ann"), site.course("MATH101")
    drop.write("b.csv", HEADER + "del,ann,MATH101,student,,\n")
    drop.write("a.csv", HEADER + "add,ann,MATH101,student,,\n")
    elsewhere = tmp_path / "elsewhere.csv"
    elsewhere.write_text(HEADER + "add,bob,MATH101,student,,\n")
    site.user("bob")
    (drop.folder / "link.csv").symlink_to(elsewhere)
    (drop.folder / "sub").mkdir()
    (drop.folder / "sub" / "c.csv").write_text(HEADER + "add,bob,MATH101,student,,\n")
    drop.write("old.csv.done", HEADER + "add,bob,MATH101,student,,\n")
    drop.write("old.csv.errors.csv", "line,reason,original_line\n")
    drop.write(".uploading.csv", HEADER + "add,bob,MATH101,student,,\n")

    results = drop.process()

    assert [r.name for r in results] == ["a.csv", "b.csv"]
    assert drop.enrolment(ann, math).status == SUSPENDED
    assert len(drop.events("user_enrolled")) == 1  # bob: none of the other files was read
    assert drop.files() == [
        ".uploading.csv",
        "a.csv.done",
        "b.csv.done",
        "link.csv",
        "old.csv.done",
        "old.csv.errors.csv",
        "sub",
    ]


def test_one_named_file_of_the_folder(drop):
    site = drop.site
    ann, math = site.user("ann"), site.course("MATH101")
    drop.write("waiting.csv", HEADER + "add,ann,MATH101,teacher,,\n")
    path = drop.write("one.csv", HEADER + "add,ann,MATH101,student,,\n")
    [result] = drop.process(path=path)
    assert result.renamed_to == drop.folder / "one.csv.done" and result.renamed_to.exists()
    assert drop.roles(ann, math) == ["student"]
    assert "waiting.csv" in drop.files()


def test_a_dry_run_says_what_would_change_and_writes_nothing(drop):
    from enrol_flatfile.models import FlatfileFile
    from enrolkit.models import EnrolInstance, LogEntry

    site = drop.site
    site.user("ann"), site.user("bob"), site.course("MATH101")
    drop.write("1.csv", HEADER + "add,ann,MATH101,student,,\nadd,bob,MATH101,student,,\n"
               "add,cy,MATH101,student,,\nadd,ann,MATH101,student,2027-01-01,\n")  # fmt: skip
    [result] = drop.process(dry_run=True)
    assert result.dry_run
    assert result.counts["enrolled"] == 2 and result.counts["rejected"] == 1
    assert result.counts["scheduled"] == 1
    assert result.changes == [
        {
            "course": "MATH101",
            "enrolled": 2,
            "updated": 0,
            "suspended": 0,
            "unenrolled": 0,
            "scheduled": 1,
            "users": {
                "enrolled": ["ann", "bob"],
                "updated": [],
                "suspended": [],
                "unenrolled": [],
            },  # fmt: skip
        }
    ]
    assert result.errors == [
        {"line": 4, "reason": "unknown user 'cy'", "text": "add,cy,MATH101,student,,"}
    ]
    assert drop.files() == ["1.csv"]
    for model in (EnrolInstance, LogEntry, FlatfileFile):
        assert site.session.query(model).count() == 0, model


def test_a_disabled_method_applies_nothing(drop):
    from enrolkit.errors import Refused

    site = drop.site
    with site.atomic():
        site.set_method_enabled("flatfile", False)
    drop.write("1.csv", HEADER)
    with pytest.raises(Refused, match="enable it: enrolkit method enable flatfile"):
        drop.process()
    assert drop.files() == ["1.csv"]
