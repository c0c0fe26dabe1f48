"""Issue 12, item 5: role assignment follows Moodle's allow-assign table. An editing teacher may
give teacher and student, not editingteacher or manager; a non-editing teacher gives none."""

from __future__ import annotations

import pytest
from enrolkit.models import EnrolInstance, Role, RoleAssignment, User
from sqlalchemy import select


def _roles_of(runtime, username: str) -> set[str]:
    with runtime.site() as site:
        return set(
            site.session.scalars(
                select(Role.shortname)
                .join(RoleAssignment, RoleAssignment.role_id == Role.id)
                .join(User, User.id == RoleAssignment.user_id)
                .where(User.username == username)
            )
        )


def _flashes(client) -> str:
    return client.get("/").get_data(as_text=True)


@pytest.mark.parametrize("role", ["editingteacher", "manager"])
def test_an_editing_teacher_cannot_give_a_higher_role_by_enrolling(
    sec_runtime, as_user, form_post, cast, role
):
    teacher = as_user("teacher")
    url = f"/course/{cast.course.id}/manage/participants/enrol"
    form_post(teacher, url, username="bob", role=role)
    assert _roles_of(sec_runtime, "bob") == set()
    page = teacher.get(f"/course/{cast.course.id}/manage/participants").get_data(as_text=True)
    assert f"You may not give the role {role} in this course" in page
    assert "Roles you may give: teacher, student." in page


def test_an_editing_teacher_may_give_teacher_and_student(sec_runtime, as_user, form_post, cast):
    teacher = as_user("teacher")
    url = f"/course/{cast.course.id}/manage/participants/enrol"
    form_post(teacher, url, username="bob", role="teacher")
    assert _roles_of(sec_runtime, "bob") == {"teacher"}
    page = teacher.get(f"/course/{cast.course.id}/manage/participants").get_data(as_text=True)
    enrol_form = page.split('id="e-role"')[1].split("</select>")[0]
    assert 'value="student"' in enrol_form and 'value="teacher"' in enrol_form
    assert 'value="editingteacher"' not in enrol_form and 'value="manager"' not in enrol_form


def test_a_non_editing_teacher_gives_no_role(sec_runtime, as_user, form_post, cast):
    assistant = as_user("assistant")
    url = f"/course/{cast.course.id}/manage/participants/enrol"
    form_post(assistant, url, username="bob", role="student")
    assert _roles_of(sec_runtime, "bob") == set()


def test_an_editing_teacher_cannot_make_a_method_give_editingteacher(
    sec_runtime, as_user, form_post, cast
):
    teacher = as_user("teacher")
    response = form_post(
        teacher,
        f"/course/{cast.course.id}/manage/add",
        method="cohort",
        name="Promo",
        role="editingteacher",
        enabled="on",
    )
    assert response.status_code == 400
    assert "You may not give the role editingteacher" in response.get_data(as_text=True)
    with sec_runtime.site() as site:
        assert (
            site.session.scalar(select(EnrolInstance).where(EnrolInstance.method == "cohort"))
            is None
        )


def test_an_admin_may_give_every_role(sec_runtime, as_user, form_post, cast):
    admin = as_user("admin")
    form_post(
        admin,
        f"/course/{cast.course.id}/manage/participants/enrol",
        username="bob",
        role="editingteacher",
    )
    assert _roles_of(sec_runtime, "bob") == {"editingteacher"}
