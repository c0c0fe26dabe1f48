"""Custom profile fields on the web (Moodle's Site admin > Users > User profile fields): edit a
field's name, description and short name, delete it after a confirmation that says how many
users hold a value; both refused, with links to where to act, while a rule or a template reads
it. Admins only. Run on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from enrolkit import people
from enrolkit.enrolments import add_instance
from enrolkit.models import EnrolInstance, LogEntry, ProfileData, ProfileField, User
from sqlalchemy import func, select

pytest.importorskip("enrol_autoenrol")

RULE = {"op": "&", "c": [{"type": "profile", "cf": "campus", "op": "isequalto", "v": "Nord"}]}


@pytest.fixture
def web_runtime(make_runtime, any_db):
    """Every installed plugin, on each backend."""
    return make_runtime(url=any_db, entry_points=True)


@pytest.fixture
def fields(web_runtime, world) -> dict[str, int]:
    """``campus`` (two users hold a value) and ``badge`` (one), both unused yet."""
    with web_runtime.site() as site:
        with site.atomic():
            for shortname, name in (("campus", "Campus"), ("badge", "Badge number")):
                site.session.add(ProfileField(shortname=shortname, name=name))
        for username, campus in (("student", "Nord"), ("teacher", "Sud")):
            user = site.session.scalar(select(User).where(User.username == username))
            people.set_fields(site, user, {"profile_field_campus": campus})
        people.set_fields(site, world.student, {"profile_field_badge": "B-17"})
        return dict(site.session.execute(select(ProfileField.shortname, ProfileField.id)).all())


def _autoenrol_reading_campus(web_runtime, world) -> int:
    with web_runtime.site() as site:
        site.set_method_enabled("autoenrol", True)
        settings = {
            "mode": "login",
            "name": "Campus Nord",
            "rule": json.dumps(RULE),
            "group_template": "Groupe_{profile_field_campus}",
        }
        return add_instance(site, world.course, "autoenrol", settings).instance.id


def _field(web_runtime, field_id: int) -> ProfileField | None:
    with web_runtime.site() as site:
        return site.session.get(ProfileField, field_id)


def test_the_list_links_each_field_to_its_edit_and_delete_pages(fields, client_as):
    page = client_as("admin").get("/admin/profile-fields").get_data(as_text=True)
    assert f'href="/admin/profile-fields/{fields["campus"]}"' in page
    assert f'href="/admin/profile-fields/{fields["campus"]}/delete"' in page


def test_an_admin_edits_the_name_and_description_and_users_see_them(
    fields, world, client_as, post, web_runtime
):
    admin = client_as("admin")
    url = f"/admin/profile-fields/{fields['campus']}"
    page = admin.get(url).get_data(as_text=True)
    assert "2 users have a value in this field." in page and 'value="campus"' in page
    done = post(admin, url, follow=True, shortname="campus", name="Site",
                description="Where the student follows <b>most</b> courses")  # fmt: skip
    assert "Profile field campus saved." in done.get_data(as_text=True)
    field = _field(web_runtime, fields["campus"])
    assert (field.name, field.description) == (
        "Site",
        "Where the student follows <b>most</b> courses",
    )
    user_page = admin.get(f"/admin/users/{world.student.id}").get_data(as_text=True)
    assert "Where the student follows &lt;b&gt;most&lt;/b&gt; courses" in user_page
    assert '<label for="u-pf-campus">Site</label>' in user_page


def test_renaming_an_unused_field_keeps_every_users_value(
    fields, world, client_as, post, web_runtime
):
    admin = client_as("admin")
    post(admin, f"/admin/profile-fields/{fields['campus']}", shortname="site", name="Site")
    with web_runtime.site() as site:
        assert people.profile_values(site, world.student.id)["site"] == "Nord"
        assert "campus" not in people.profile_values(site, world.student.id)
        reasons = site.session.scalars(
            select(LogEntry.reason).where(LogEntry.event == "profile_field_updated")
        ).all()
    assert reasons == ["campus -> site"]


def test_a_rename_to_a_taken_or_malformed_name_is_refused(fields, client_as, post, web_runtime):
    admin = client_as("admin")
    url = f"/admin/profile-fields/{fields['campus']}"
    taken = post(admin, url, shortname="badge", name="Campus")
    assert taken.status_code == 400
    assert "A profile field named badge exists already." in taken.get_data(as_text=True)
    for bad in ("Bad Name", "department", "1st"):
        refused = post(admin, url, shortname=bad, name="Campus")
        assert refused.status_code == 400
        assert "Short name: use lower-case letters" in refused.get_data(as_text=True)
    assert _field(web_runtime, fields["campus"]).shortname == "campus"


def test_a_rename_is_refused_while_a_rule_reads_the_field_with_links_to_it(
    fields, world, client_as, post, web_runtime
):
    instance_id = _autoenrol_reading_campus(web_runtime, world)
    admin = client_as("admin")
    url = f"/admin/profile-fields/{fields['campus']}"
    refused = post(admin, url, shortname="site", name="Campus")
    page = refused.get_data(as_text=True)
    assert refused.status_code == 409
    assert "The profile field campus cannot be renamed: 2 setting(s) read it" in page
    assert f'href="/course/{world.course.id}/manage/rules/{instance_id}"' in page
    assert f'href="/course/{world.course.id}/manage/instance/{instance_id}"' in page
    assert "auto-enrol rule" in page and "group name template" in page
    assert _field(web_runtime, fields["campus"]).shortname == "campus"
    # The name and description, which nothing reads, may still change.
    post(admin, url, shortname="campus", name="Site principal")
    assert _field(web_runtime, fields["campus"]).name == "Site principal"


def test_the_delete_page_says_how_many_users_lose_a_value_then_deletes(
    fields, world, client_as, post, web_runtime
):
    admin = client_as("admin")
    url = f"/admin/profile-fields/{fields['campus']}/delete"
    page = admin.get(url).get_data(as_text=True)
    assert "2 users have a value in this field: they go with the field." in page
    assert "Delete profile field" in page
    done = post(admin, url, follow=True)
    assert "Profile field campus deleted, with the values of 2 users." in done.get_data(
        as_text=True
    )
    with web_runtime.site() as site:
        assert site.session.get(ProfileField, fields["campus"]) is None
        left = site.session.scalar(
            select(func.count())
            .select_from(ProfileData)
            .where(ProfileData.field_id == fields["campus"])
        )
        assert left == 0
        assert people.profile_values(site, world.student.id) == {"badge": "B-17"}


def test_a_field_a_rule_reads_cannot_be_deleted_and_the_page_says_where_to_act(
    fields, world, client_as, post, web_runtime
):
    instance_id = _autoenrol_reading_campus(web_runtime, world)
    admin = client_as("admin")
    url = f"/admin/profile-fields/{fields['campus']}/delete"
    page = admin.get(url).get_data(as_text=True)
    assert "2 settings read this field: change them first, then delete the field." in page
    assert 'class="danger"' not in page  # no delete button to press
    assert f'href="/course/{world.course.id}/manage/rules/{instance_id}"' in page
    forced = post(admin, url)
    assert forced.status_code == 409
    assert "The profile field campus cannot be deleted" in forced.get_data(as_text=True)
    assert _field(web_runtime, fields["campus"]) is not None
    # Once the instance no longer reads it, it goes.
    with web_runtime.site() as site, site.atomic():
        site.session.delete(site.session.get(EnrolInstance, instance_id))
    assert post(admin, url).status_code == 302
    assert _field(web_runtime, fields["campus"]) is None


def test_a_welcome_message_reading_the_field_counts_as_a_use(fields, world, web_runtime):
    from enrolkit import profile_fields

    with web_runtime.site() as site:
        site.set_method_enabled("autoenrol", True)
        welcome = "Bonjour {{ user.firstname }}, campus {{ user.profile['badge'] }}"
        add_instance(
            site, world.course, "autoenrol", {"mode": "login", "welcome_template": welcome}
        )
        assert [use.setting for use in profile_fields.uses(site, "badge")] == ["welcome_template"]
        assert profile_fields.uses(site, "campus") == []


@pytest.mark.parametrize("who", ["teacher", "student"])
def test_teachers_and_students_are_refused_every_profile_field_page(fields, client_as, post, who):
    client = client_as(who)
    for url in (f"/admin/profile-fields/{fields['campus']}",
                f"/admin/profile-fields/{fields['campus']}/delete"):  # fmt: skip
        assert client.get(url).status_code == 403
        assert post(client, url, shortname="x", name="x").status_code == 403


def test_an_unknown_field_is_not_found(fields, client_as):
    assert client_as("admin").get("/admin/profile-fields/999999").status_code == 404
    assert client_as("admin").get("/admin/profile-fields/999999/delete").status_code == 404


def test_the_pages_are_in_french(fields, client_as, web_runtime):
    with web_runtime.site() as site, site.atomic():
        site.session.scalar(select(User).where(User.username == "admin")).lang = "fr"
    admin = client_as("admin")
    page = admin.get(f"/admin/profile-fields/{fields['campus']}/delete").get_data(as_text=True)
    assert "Supprimer le champ de profil campus ?" in page
    assert "2 utilisateurs ont une valeur dans ce champ" in page
