"""Users, cohorts, roles and badges through the API: each resource's answers, bad input named
field by field, and the refusals the services make."""

from __future__ import annotations

import io
import json

from enrolkit import people
from enrolkit.models import CohortMember, RoleAssignment, User
from sqlalchemy import select


def csv_upload(text: str, name: str = "people.csv", **form) -> dict:
    return {"data": {"file": (io.BytesIO(text.encode()), name), **form}}


# --- users -------------------------------------------------------------------------------------


def test_users_are_listed_a_page_at_a_time_and_searched(api, world):
    first = api.get("/users?page_size=2")
    assert first.status_code == 200
    assert [u["username"] for u in first.get_json()] == ["ann", "bob"]
    pages = json.loads(first.headers["X-Pagination"])
    assert (pages["total"], pages["total_pages"], pages["next_page"]) == (3, 2, 2)
    assert [u["username"] for u in api.get("/users?page=2&page_size=2").get_json()] == ["teacher"]
    assert api.get("/users?page=99").get_json() == []
    found = api.get("/users?q=ANN").get_json()
    assert [u["username"] for u in found] == ["ann"]
    assert api.get("/users?q=%25").get_json() == []  # a wildcard is searched for literally
    assert api.field_errors(api.get("/users?page_size=0"), "query")["page_size"]


def test_a_user_shows_with_their_profile_fields(api, world):
    api.patch("/users/ann", json={"profile": {"badge_no": "42"}})
    user = api.get("/users/ann").get_json()
    assert user["department"] == "Sales" and user["profile"] == {"badge_no": "42"}
    missing = api.get("/users/nobody")
    assert missing.status_code == 404 and "nobody" in missing.get_json()["message"]


def test_changing_a_profile_goes_through_the_service(api, api_runtime, world):
    response = api.patch("/users/bob", json={"department": "Sales", "suspended": True})
    assert response.status_code == 200
    assert response.get_json()["department"] == "Sales" and response.get_json()["suspended"]
    log = api.get("/log?event=user_updated&username=bob").get_json()
    assert log[0]["reason"] == "department, suspended" and log[0]["origin"] == "api"


def test_bad_profile_changes_are_refused_by_field(api, world):
    errors = api.field_errors(api.patch("/users/bob", json={"shoe_size": "44"}))
    assert "shoe_size" in errors
    errors = api.field_errors(api.patch("/users/bob", json={"suspended": "perhaps"}))
    assert "suspended" in errors
    bad_email = api.patch("/users/bob", json={"email": "not-an-address"})
    assert "not an email address" in api.field_errors(bad_email)["email"][0]
    assert api.get("/users/bob").get_json()["email"] == "bob@example.org"


def test_a_password_is_stored_hashed(api, api_runtime, world):
    assert api.put("/users/bob/password", json={"password": "long enough pass"}).status_code == 204
    with api_runtime.site() as site:
        stored = site.session.scalar(select(User.password_hash).where(User.username == "bob"))
    assert people.check_password(stored, "long enough pass")
    short = api.put("/users/bob/password", json={"password": "short"})
    assert short.status_code == 422 and "8 characters" in short.get_json()["message"]
    assert api.field_errors(api.put("/users/bob/password", json={}))["password"]


def test_users_are_imported_from_csv_as_the_cli_does(api, world):
    text = (
        "username,email,firstname,lastname,department\n"
        "cy,cy@example.org,Cy,Ng,IT\n"
        "ann,ann@example.org,Ann,Lee,Support\n"
        "dee,bad-address,Dee,Ox,IT\n"
    )
    report = api.post("/users/import", **csv_upload(text)).get_json()
    assert (report["created"], report["updated"]) == (1, 1)
    assert report["rejected"] == [
        {"line": 4, "message": "column email: 'bad-address' is not an email address"}
    ]
    assert api.get("/users/ann").get_json()["department"] == "Support"


def test_a_strict_import_with_a_bad_row_applies_nothing(api, world):
    text = "username,email,firstname,lastname\ncy,cy@example.org,Cy,Ng\ndee,x,Dee,Ox\n"
    response = api.post("/users/import", **csv_upload(text, strict="true"))
    assert response.status_code == 422
    assert response.get_json()["errors"]["rows"][0]["line"] == 3
    assert api.get("/users/cy").status_code == 404
    no_file = api.post("/users/import", data={"strict": "false"})
    assert api.field_errors(no_file, "files")["file"]
    bad_header = api.post("/users/import", **csv_upload("name\nx\n"))
    assert (
        bad_header.status_code == 422
        and "missing required column" in bad_header.get_json()["message"]
    )


# --- cohorts -----------------------------------------------------------------------------------


def test_cohorts_and_their_members(api, api_runtime, world):
    [promo] = api.get("/cohorts").get_json()
    assert (promo["idnumber"], promo["members"], promo["category"]) == ("promo", 1, "Sciences")
    added = api.post("/cohorts/promo/members", json={"usernames": ["bob", "ann"]})
    assert added.get_json() == {"added": ["bob"], "removed": []}
    members = api.get("/cohorts/promo/members").get_json()
    assert [m["username"] for m in members] == ["ann", "bob"]
    removed = api.post("/cohorts/promo/members/remove", json={"usernames": ["ann"]})
    assert removed.get_json() == {"added": [], "removed": ["ann"]}
    assert api.get("/cohorts/promo").get_json()["members"] == 1


def test_an_unknown_member_is_named_and_nobody_is_added(api, api_runtime, world):
    response = api.post("/cohorts/promo/members", json={"usernames": ["bob", "nobody"]})
    assert api.field_errors(response) == {"usernames": {"1": ["no user with username 'nobody'"]}}
    with api_runtime.site() as site:
        assert site.session.scalars(select(CohortMember.user_id)).all() == [world.ann.id]
    assert api.field_errors(api.post("/cohorts/promo/members", json={"usernames": []}))
    assert api.post("/cohorts/nope/members", json={"usernames": ["bob"]}).status_code == 404


def test_cohorts_are_imported_and_deleted(api, world):
    text = "idnumber,name,category\nstaff,Staff,Sciences / Physics\n"
    report = api.post("/cohorts/import", **csv_upload(text, "cohorts.csv")).get_json()
    assert report["created"] == 1
    assert api.get("/cohorts/staff").get_json()["category"] == "Sciences / Physics"
    assert api.delete("/cohorts/staff").status_code == 204
    assert api.get("/cohorts/staff").status_code == 404


# --- roles -------------------------------------------------------------------------------------


def test_roles_are_assigned_and_unassigned(api, world):
    assert [r["shortname"] for r in api.get("/roles").get_json()][:2] == [
        "manager",
        "editingteacher",
    ]
    body = {"role": "manager", "username": "bob", "category": "Sciences"}
    made = api.post("/role-assignments", json=body)
    assert made.status_code == 201
    assignment = made.get_json()
    assert (assignment["context"], assignment["category"], assignment["component"]) == (
        "category",
        "Sciences",
        "",
    )
    assert api.post("/role-assignments", json=body).status_code == 200
    listed = api.get("/role-assignments?username=bob").get_json()
    assert [a["id"] for a in listed] == [assignment["id"]]
    assert api.delete(f"/role-assignments/{assignment['id']}").status_code == 204
    assert api.get("/role-assignments?username=bob").get_json() == []
    assert api.delete(f"/role-assignments/{assignment['id']}").status_code == 404


def test_bad_role_assignments_name_the_field(api, world):
    errors = api.field_errors(
        api.post("/role-assignments", json={"role": "wizard", "username": "bob"})
    )
    assert "no role 'wizard'" in errors["role"][0]
    both = {"role": "manager", "username": "bob", "course": "MATH101", "category": "Sciences"}
    assert "not both" in api.field_errors(api.post("/role-assignments", json=both))["course"][0]
    nowhere = {"role": "manager", "username": "bob", "course": "NOPE"}
    assert api.field_errors(api.post("/role-assignments", json=nowhere))["course"]


def test_a_role_an_enrolment_gave_cannot_be_unassigned_by_hand(api, api_runtime, world):
    with api_runtime.site() as site:
        owned = site.session.scalar(
            select(RoleAssignment.id).where(
                RoleAssignment.user_id == world.ann.id, RoleAssignment.component != ""
            )
        )
    response = api.delete(f"/role-assignments/{owned}")
    assert response.status_code == 409
    assert "enrol_manual" in response.get_json()["message"]
    listed = api.get("/role-assignments?username=ann&course=MATH101").get_json()
    assert [a["id"] for a in listed] == [owned]


# --- badges ------------------------------------------------------------------------------------


def test_badges_are_awarded_once(api, world):
    first = api.post("/badge-awards", json={"badge": "First aid", "username": "ann"})
    assert first.status_code == 201 and first.get_json()["badge"] == "First aid"
    assert (
        api.post("/badge-awards", json={"badge": "First aid", "username": "ann"}).status_code == 200
    )
    assert api.get("/badges").get_json()[0]["awarded"] == 1
    assert [a["username"] for a in api.get("/badge-awards?badge=First aid").get_json()] == ["ann"]
    errors = api.field_errors(api.post("/badge-awards", json={"badge": "", "username": "zed"}))
    assert set(errors) == {"badge"}
    assert api.field_errors(api.post("/badge-awards", json={"badge": "X", "username": "zed"}))[
        "username"
    ]


def test_a_users_time_zone_is_set_and_checked_as_on_the_web(api, world):
    bad = api.patch("/users/bob", json={"timezone": "Mars/Olympus_Mons"})
    assert "is not a time zone" in api.field_errors(bad)["timezone"][0]
    response = api.patch("/users/bob", json={"timezone": "America/Montreal"})
    assert response.status_code == 200 and response.get_json()["timezone"] == "America/Montreal"
    assert api.patch("/users/bob", json={"timezone": ""}).get_json()["timezone"] == ""
