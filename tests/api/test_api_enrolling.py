"""Methods and their site settings, instances (settings validated by each method's schema) and
enrolments through the API, with the same checks and refusals as the CLI."""

from __future__ import annotations

from enrolkit.models import EnrolInstance, UserEnrolment
from sqlalchemy import func, select


def enrolled(runtime, course) -> dict[str, str]:
    with runtime.site() as site:
        from enrolkit.enrolments import list_enrolments

        return {row["username"]: row["method"] for row in list_enrolments(site, course)}


def test_methods_show_their_state_settings_and_fields(api, world):
    methods = {m["name"]: m for m in api.get("/methods?page_size=100").get_json()}
    manual = methods["manual"]
    assert manual["enabled"] and manual["order"] >= 1
    assert manual["settings"] == {"expiry_action": "unenrol"}
    assert manual["site_fields"][0]["name"] == "expiry_action"
    assert "keep" in manual["site_fields"][0]["choices"]
    cohort = api.get("/methods/cohort").get_json()
    assert cohort["instance_fields"][0] == {
        **cohort["instance_fields"][0],
        "name": "cohort",
        "required": True,
    }
    assert api.get("/methods/nope").status_code == 404


def test_a_method_is_switched_and_its_settings_validated(api, world):
    response = api.patch(
        "/methods/cohort", json={"enabled": False, "settings": {"role": "teacher"}}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["enabled"], body["order"], body["settings"]["role"]) == (False, None, "teacher")
    bad = api.patch("/methods/cohort", json={"enabled": True, "settings": {"removal": "explode"}})
    assert "removal" in api.field_errors(bad)["settings"]
    assert api.get("/methods/cohort").get_json()["enabled"] is False  # nothing applied
    unknown = api.patch("/methods/cohort", json={"settings": {"colour": "red"}})
    assert api.field_errors(unknown)["settings"] == {"colour": ["Unknown field."]}
    assert api.field_errors(api.patch("/methods/cohort", json={"enabled": "maybe"}))["enabled"]


def test_an_instance_is_added_synced_changed_and_deleted(api, api_runtime, world):
    added = api.post(
        "/courses/PHYS101/instances",
        json={"method": "cohort", "settings": {"cohort": "promo", "role": "student"}},
    )
    assert added.status_code == 201, added.get_json()
    result = added.get_json()
    instance = result["instance"]
    assert (instance["method"], instance["course"], instance["role"]) == (
        "cohort",
        "PHYS101",
        "student",
    )
    assert result["outcome"]["enrolled"] == 1
    assert enrolled(api_runtime, world.physics) == {"ann": "cohort"}
    assert [i["id"] for i in api.get("/courses/PHYS101/instances").get_json()] == [instance["id"]]
    assert api.get(f"/instances/{instance['id']}").get_json()["settings"]["cohort"] == "promo"

    changed = api.patch(f"/instances/{instance['id']}", json={"settings": {"enabled": False}})
    assert changed.status_code == 200 and changed.get_json()["instance"]["enabled"] is False

    deleted = api.delete(f"/instances/{instance['id']}")
    assert deleted.status_code == 200 and deleted.get_json()["unenrolled"] == 1
    assert api.get(f"/instances/{instance['id']}").status_code == 404
    assert enrolled(api_runtime, world.physics) == {}


def test_a_dry_run_reports_and_changes_nothing(api, api_runtime, world):
    response = api.post(
        "/courses/PHYS101/instances",
        json={"method": "cohort", "settings": {"cohort": "promo"}, "dry_run": True},
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["dry_run"] and body["instance"] is None and body["outcome"]["enrolled"] == 1
    with api_runtime.site() as site:
        count = site.session.scalar(
            select(func.count()).where(EnrolInstance.course_id == world.physics.id)
        )
    assert count == 0


def test_instance_settings_are_checked_by_the_methods_schema(api, api_runtime, world):
    no_cohort = api.post("/courses/PHYS101/instances", json={"method": "cohort", "settings": {}})
    assert api.field_errors(no_cohort)["settings"] == {
        "cohort": ["Missing data for required field."]
    }
    unknown = api.post(
        "/courses/PHYS101/instances", json={"method": "cohort", "settings": {"cohort": "ghosts"}}
    )
    assert "no cohort with idnumber 'ghosts'" in api.field_errors(unknown)["settings"]["cohort"][0]
    bad_role = api.post(
        "/courses/PHYS101/instances",
        json={"method": "cohort", "settings": {"cohort": "promo", "role": "wizard"}},
    )
    assert "role" in api.field_errors(bad_role)["settings"]
    assert api.field_errors(api.post("/courses/PHYS101/instances", json={"method": "telepathy"}))[
        "method"
    ]
    with api_runtime.site() as site:
        assert site.session.scalar(select(func.count()).select_from(EnrolInstance)) == 1


def test_a_second_manual_instance_is_refused(api, world):
    response = api.post("/courses/MATH101/instances", json={"method": "manual"})
    assert response.status_code == 409
    assert "only one per course" in response.get_json()["message"]


def test_manual_enrolment_and_unenrolment(api, api_runtime, world):
    response = api.post(
        "/courses/PHYS101/enrolments",
        json={"username": "bob", "role": "teacher", "start": "2026-09-01", "end": 1800000000},
    )
    assert response.status_code == 200 and response.get_json()["enrolled"] == 1
    [row] = api.get("/courses/PHYS101/enrolments").get_json()
    assert (row["username"], row["roles"], row["timestart"]) == ("bob", ["teacher"], 1788220800)
    removed = api.delete("/courses/PHYS101/enrolments/bob")
    assert removed.status_code == 200 and removed.get_json()["outcomes"][0]["unenrolled"] == 1
    again = api.delete("/courses/PHYS101/enrolments/bob")
    assert again.status_code == 422 and "not enrolled" in again.get_json()["message"]


def test_bad_enrolment_input_is_named(api, world):
    late = {"username": "bob", "start": "2026-09-01", "end": "2026-08-01"}
    assert (
        "end must come after"
        in api.post("/courses/PHYS101/enrolments", json=late).get_json()["message"]
    )
    errors = api.field_errors(
        api.post("/courses/PHYS101/enrolments", json={"username": "zed", "role": "x"})
    )
    assert set(errors) == {"username"}
    assert api.post("/courses/NOPE/enrolments", json={"username": "bob"}).status_code == 404


def test_an_enrolment_a_cohort_owns_cannot_be_removed_by_hand(api, api_runtime, world):
    api.post(
        "/courses/PHYS101/instances", json={"method": "cohort", "settings": {"cohort": "promo"}}
    )
    response = api.delete("/courses/PHYS101/enrolments/ann")
    assert response.status_code == 409
    assert "remove the user from the cohort instead" in response.get_json()["message"]
    assert "enrolkit" not in response.get_json()["message"]  # no command line in the API
    with api_runtime.site() as site:
        assert site.session.scalar(select(func.count()).select_from(UserEnrolment)) == 3


def test_durations_are_taken_as_people_type_them(api, api_runtime, world):
    with api_runtime.site() as site, site.atomic():
        site.set_method_enabled("completion", True)
    added = api.post(
        "/courses/PHYS101/instances",
        json={"method": "completion", "settings": {"source": "MATH101", "delay": "P2D",
                                                   "duration": "1w"}},
    )  # fmt: skip
    assert added.status_code == 201, added.get_json()
    with api_runtime.site() as site:
        instance = site.session.scalar(
            select(EnrolInstance).where(EnrolInstance.method == "completion")
        )
        assert (instance.settings["delay"], instance.settings["duration"]) == (172800, 604800)
    bad = api.post(
        "/courses/PHYS101/instances",
        json={"method": "completion", "settings": {"source": "MATH101", "delay": "soon"}},
    )
    assert "'soon' is not a duration" in api.field_errors(bad)["settings"]["delay"][0]
