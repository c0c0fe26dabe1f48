"""SCIM as an identity provider uses it: users and groups in, enrolments following, on both
databases, through the web app's /scim/v2."""

from __future__ import annotations

import pytest
from enrolkit.api import tokens
from enrolkit.models import Cohort, CohortMember, LogEntry, User, UserEnrolment
from enrolkit.testing import SiteFactory
from sqlalchemy import func, select

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def new_user(scim, username, department="", active=True, email=None):
    body = {
        "schemas": [USER, ENTERPRISE],
        "userName": username,
        "name": {"givenName": username.capitalize(), "familyName": "Test"},
        "emails": [{"value": email or f"{username}@example.org", "primary": True}],
        "active": active,
        ENTERPRISE: {"department": department},
    }
    response = scim("POST", "/Users", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def names(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [r["userName"] for r in response.get_json().get("Resources", [])]


def test_tokens_need_the_scim_scope_and_errors_are_scim_errors(scim, scim_runtime):
    with scim_runtime.site() as site:
        write = tokens.create(site, "hr", tokens.WRITE)
    missing = scim.client.get("/scim/v2/Users")
    assert missing.status_code == 401 and missing.get_json()["schemas"] == [ERROR]
    refused = scim("GET", "/Users", token=write)
    assert refused.status_code == 403 and "scim token" in refused.get_json()["detail"]
    api = scim.client.get("/api/v1/users", headers={"Authorization": f"Bearer {scim.token}"})
    assert api.status_code == 403 and "/scim/v2 only" in api.get_json()["message"]
    bad = scim("GET", '/Users?filter=userName eq "x" and')
    assert bad.status_code == 400 and bad.get_json()["scimType"] == "invalidFilter"


def test_users_are_filtered_sorted_and_paged_in_sql(scim):
    new_user(scim, "alice", "Sales")
    new_user(scim, "bob", "IT", active=False)
    new_user(scim, "carol", "Sales", email="carol@corp.example")
    assert names(scim("GET", '/Users?filter=userName eq "ALICE"')) == ["alice"]
    assert names(scim("GET", '/Users?filter=emails co "corp"')) == ["carol"]
    assert names(scim("GET", '/Users?filter=emails[value sw "bob@"]')) == ["bob"]
    assert names(scim("GET", "/Users?filter=active eq false")) == ["bob"]
    found = scim(
        "GET",
        f'/Users?filter={ENTERPRISE}:department eq "sales" and not (userName eq "alice")',
    )
    assert names(found) == ["carol"]
    assert names(scim("GET", '/Users?filter=userName eq "bob" or displayName sw "Ali"')) == [
        "alice",
        "bob",
    ]
    assert names(scim("GET", "/Users?filter=externalId pr")) == []
    page = scim("GET", "/Users?sortBy=userName&sortOrder=descending&startIndex=2&count=1")
    assert names(page) == ["bob"] and page.get_json()["totalResults"] == 3
    taken = scim("POST", "/Users", json={"schemas": [USER], "userName": "Alice"})
    assert taken.status_code == 409 and taken.get_json()["scimType"] == "uniqueness"


@pytest.fixture
def synced(scim_runtime, scim):
    """A course whose cohort-sync instance follows the SCIM group "eng" (group=new)."""
    people = [new_user(scim, f"u{i}", "IT") for i in range(1, 4)]
    group = scim(
        "POST",
        "/Groups",
        json={
            "schemas": [GROUP],
            "displayName": "Engineering",
            "externalId": "eng",
            "members": [{"value": p["id"]} for p in people[:2]],
        },
    )
    assert group.status_code == 201, group.get_json()
    with scim_runtime.site() as site:
        factory = SiteFactory(site)
        course = factory.course("ENG1")
        factory.instance(course, "cohort", cohort="eng", group="new")
        site.session.commit()
    return group.get_json(), people


def enrolled(runtime) -> list[str]:
    with runtime.site() as site:
        return sorted(
            site.session.scalars(
                select(User.username)
                .join(UserEnrolment, UserEnrolment.user_id == User.id)
                .where(UserEnrolment.status == 0)
            )
        )


def test_group_membership_patches_move_enrolments_at_once(scim, scim_runtime, synced):
    group, people = synced
    assert enrolled(scim_runtime) == ["u1", "u2"]
    patch = {
        "schemas": [PATCH],
        "Operations": [
            {"op": "remove", "path": f'members[value eq "{people[0]["id"]}"]'},
            {"op": "add", "path": "members", "value": [{"value": people[2]["id"]}]},
        ],
    }
    response = scim("PATCH", f"/Groups/{group['id']}", json=patch)
    assert response.status_code in (200, 204), response.get_json()
    assert enrolled(scim_runtime) == ["u2", "u3"]
    with scim_runtime.site() as site:
        origins = set(
            site.session.scalars(
                select(LogEntry.origin).where(LogEntry.event.like("cohort_member_%"))
            )
        )
        assert origins == {"scim"}
        assert site.session.scalar(select(Cohort.name).where(Cohort.idnumber == "eng")) == (
            "Engineering"
        )
    listed = scim("GET", f'/Groups?filter=members[value eq "{people[2]["id"]}"]')
    assert [g["externalId"] for g in listed.get_json()["Resources"]] == ["eng"]


def test_deactivating_suspends_and_deleting_unenrols(scim, scim_runtime, synced):
    _, people = synced
    off = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]}
    assert scim("PATCH", f"/Users/{people[0]['id']}", json=off).status_code in (200, 204)
    with scim_runtime.site() as site:
        assert site.session.get(User, int(people[0]["id"])).suspended
    assert scim("DELETE", f"/Users/{people[1]['id']}").status_code == 204
    assert scim("GET", f"/Users/{people[1]['id']}").status_code == 404
    with scim_runtime.site() as site:
        gone = site.session.get(User, int(people[1]["id"]))
        assert gone.deleted
        assert not site.session.scalar(
            select(func.count()).select_from(CohortMember).where(CohortMember.user_id == gone.id)
        )
        assert not site.session.scalar(
            select(func.count()).select_from(UserEnrolment).where(UserEnrolment.user_id == gone.id)
        )
        assert (
            site.session.scalar(select(LogEntry.origin).where(LogEntry.event == "user_deleted"))
            == "scim"
        )


PROFILE = "urn:enrolkit:params:scim:schemas:extension:profile:2.0:User"


def test_custom_profile_fields_travel_in_the_enrolkit_extension(scim, scim_runtime):
    from enrolkit.people import profile_field, profile_values

    with scim_runtime.site() as site, site.atomic():
        profile_field(site, "promo", create=True)
    schemas = scim("GET", "/Schemas").get_json()["Resources"]
    assert PROFILE in [s["id"] for s in schemas]
    created = scim(
        "POST",
        "/Users",
        json={"schemas": [USER, PROFILE], "userName": "dana", PROFILE: {"promo": "2026"}},
    )
    assert created.status_code == 201, created.get_json()
    assert created.get_json()[PROFILE] == {"promo": "2026"}
    with scim_runtime.site() as site:
        assert profile_values(site, int(created.get_json()["id"])) == {"promo": "2026"}
    new_user(scim, "erin")
    assert names(scim("GET", f'/Users?filter={PROFILE}:promo eq "2026"')) == ["dana"]
    assert names(scim("GET", f"/Users?filter={PROFILE}:promo pr")) == ["dana"]


def test_the_schemas_publish_what_enrolkit_keeps_and_other_attributes_are_ignored(scim):
    """A client that discovers the service learns what a round trip keeps; an IdP that sends
    more (Entra and Okta send a title, phone numbers, an employee number) is still served."""
    schemas = {s["id"]: s for s in scim("GET", "/Schemas").get_json()["Resources"]}
    user = {a["name"]: a for a in schemas[USER]["attributes"]}
    assert "title" not in user and "phoneNumbers" not in user and "password" not in user
    assert [s["name"] for s in user["name"]["subAttributes"]] == ["familyName", "givenName"]
    assert user["displayName"]["mutability"] == "readOnly"
    assert [a["name"] for a in schemas[ENTERPRISE]["attributes"]] == ["organization", "department"]
    members = next(a for a in schemas[GROUP]["attributes"] if a["name"] == "members")
    display = next(s for s in members["subAttributes"] if s["name"] == "display")
    assert display["mutability"] == "readOnly"

    body = {
        "schemas": [USER, ENTERPRISE],
        "userName": "ann",
        "title": "Director",
        "phoneNumbers": [{"value": "+33 1 23 45 67 89", "type": "work"}],
        ENTERPRISE: {"department": "IT", "employeeNumber": "701"},
    }
    created = scim("POST", "/Users", json=body)
    assert created.status_code == 201, created.get_json()
    patch = {
        "schemas": [PATCH],
        "Operations": [
            {"op": "replace", "path": "title", "value": "CEO"},
            {"op": "replace", "path": "name.givenName", "value": "Ann"},
        ],
    }
    changed = scim("PATCH", f"/Users/{created.get_json()['id']}", json=patch)
    assert changed.status_code in (200, 204), changed.get_json()
    kept = scim("GET", f"/Users/{created.get_json()['id']}").get_json()
    assert kept["name"] == {"givenName": "Ann"} and kept[ENTERPRISE] == {"department": "IT"}
    assert "title" not in kept and "phoneNumbers" not in kept
