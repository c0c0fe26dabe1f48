"""Group-name templates: groups made on demand and owned by the instance, a user who changes
department changes group at once, an empty value gives no group."""

from __future__ import annotations

import pytest
from autoenrol_helpers import DAY, groups_of
from enrol_autoenrol.tasks import process_enrolments
from enrolkit import access
from enrolkit.enrolments import delete_instance, update_instance
from enrolkit.errors import SettingsError
from enrolkit.models import Group, GroupMember
from enrolkit.people import import_users, login, set_fields
from sqlalchemy import select

TEMPLATE = "Groupe_{profile_field_department}"


def test_users_land_in_the_group_of_their_department(ae, clock):
    mia = ae.user("mia")
    noe = ae.user("noe")
    lea = ae.user("lea")
    set_fields(ae.site, mia, {"profile_field_department": "Marketing"})
    set_fields(ae.site, noe, {"profile_field_department": "Marketing"})
    set_fields(ae.site, lea, {"profile_field_department": ""})
    course = ae.course("C1")
    instance = ae.instance(course, "autoenrol", mode="view", group_template=TEMPLATE)
    for user in (mia, noe, lea):
        access.view_course(ae.site, user, course)

    assert groups_of(ae, course) == {
        "mia": ["Groupe_Marketing"],
        "noe": ["Groupe_Marketing"],
        "lea": [],
    }
    [group] = ae.session.scalars(select(Group).where(Group.course_id == course.id)).all()
    assert (group.name, group.component, group.itemid, group.idnumber) == (
        "Groupe_Marketing",
        "enrol_autoenrol",
        instance.id,
        f"autoenrol|{instance.id}|Groupe_Marketing",
    )
    members = ae.session.scalars(select(GroupMember).where(GroupMember.group_id == group.id))
    assert {(m.component, m.itemid) for m in members} == {("enrol_autoenrol", instance.id)}

    verdict = ae.plugins.method("autoenrol").explain(ae.site, instance, mia)
    assert (verdict.matches, verdict.group) == (True, "Groupe_Marketing")
    assert verdict.text().splitlines()[-1] == "group: Groupe_Marketing"

    set_fields(ae.site, mia, {"profile_field_department": "Ventes"})
    set_fields(ae.site, lea, {"profile_field_department": "Ventes"})
    set_fields(ae.site, noe, {"profile_field_department": "  "})  # blank: no group
    assert groups_of(ae, course) == {"mia": ["Groupe_Ventes"], "noe": [], "lea": ["Groupe_Ventes"]}

    delete_instance(ae.site, instance)
    assert ae.session.scalars(select(Group.name).where(Group.course_id == course.id)).all() == []


def test_an_import_regroups_everyone_it_changes_in_one_pass(ae, tmp_path):
    course = ae.course("C1")
    ae.instance(course, "autoenrol", mode="login", group_template="{department} / {city}")
    people = [ae.user(f"u{i}", department="Sales", city="Lyon") for i in range(1, 6)]
    for user in people:
        login(ae.site, user)
    csv = tmp_path / "users.csv"
    lines = ["username,email,firstname,lastname,department,city"]
    lines += [
        f"u{i},u{i}@example.org,U,Test,{'IT' if i % 2 else 'Sales'},Lyon" for i in range(1, 6)
    ]
    csv.write_text("\n".join(lines) + "\n")
    import_users(ae.site, csv)
    assert groups_of(ae, course) == {
        f"u{i}": ["IT / Lyon" if i % 2 else "Sales / Lyon"] for i in range(1, 6)
    }


def test_an_existing_group_of_that_name_is_used_and_kept(ae):
    course = ae.course("C1")
    ae.session.add(Group(course_id=course.id, name="Team IT"))
    ann = ae.user("ann", department="IT")
    instance = ae.instance(course, "autoenrol", mode="view", group_template="Team {department}")
    access.view_course(ae.site, ann, course)
    assert groups_of(ae, course) == {"ann": ["Team IT"]}
    delete_instance(ae.site, instance)
    assert ae.session.scalars(select(Group.name).where(Group.course_id == course.id)).all() == [
        "Team IT"
    ]


def test_the_task_creates_the_groups_of_everyone_it_enrols(ae, clock):
    course = ae.course("C1")
    for number, department in enumerate(["A", "B", "A", "", "C"]):
        ae.user(f"u{number}", department=department, lastlogin=clock.now() - DAY)
    ae.instance(course, "autoenrol", mode="login", group_template="G-{department}")
    process_enrolments(ae.site)
    assert groups_of(ae, course) == {
        "u0": ["G-A"],
        "u1": ["G-B"],
        "u2": ["G-A"],
        "u3": [],
        "u4": ["G-C"],
    }


def test_a_template_change_regroups_at_the_next_login(ae):
    course = ae.course("C1")
    ann = ae.user("ann", department="IT", city="Paris")
    instance = ae.instance(course, "autoenrol", mode="login", group_template="{department}")
    login(ae.site, ann)
    update_instance(ae.site, instance, {"group_template": "{city}"})
    login(ae.site, ann)
    assert groups_of(ae, course) == {"ann": ["Paris"]}
    update_instance(ae.site, instance, {"group_template": ""})
    login(ae.site, ann)
    assert groups_of(ae, course) == {"ann": []}


def test_a_bad_template_is_refused_when_saved(ae):
    course = ae.course("C1")
    with pytest.raises(SettingsError, match="unknown placeholder {profile_field_campus}"):
        ae.instance(course, "autoenrol", group_template="G {profile_field_campus}")
