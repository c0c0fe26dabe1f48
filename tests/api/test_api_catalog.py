"""Categories, courses and completions, and the events an LMS reports (login, course view,
"Enrol me", completion), which fire the same hooks as the CLI."""

from __future__ import annotations

import io

from enrolkit.models import LogEntry
from sqlalchemy import select


def test_categories_are_made_with_their_parents_and_listed_in_tree_order(api, world):
    made = api.post("/categories", json={"path": "Arts / Music / Jazz"})
    assert made.status_code == 201
    jazz = made.get_json()
    assert (jazz["path"], jazz["parent"], jazz["depth"]) == (
        "Arts / Music / Jazz",
        "Arts / Music",
        3,
    )
    assert api.post("/categories", json={"path": "Arts / Music"}).status_code == 200
    paths = [c["path"] for c in api.get("/categories").get_json()]
    assert paths.index("Arts") < paths.index("Arts / Music") < paths.index("Arts / Music / Jazz")
    assert api.get(f"/categories/{jazz['id']}").get_json() == jazz
    assert api.get("/categories/99999").status_code == 404
    assert (
        "not a category path"
        in api.field_errors(api.post("/categories", json={"path": "A //"}))["path"][0]
    )


def test_courses_are_listed_filtered_and_shown(api, world):
    assert [c["shortname"] for c in api.get("/courses").get_json()] == ["MATH101", "PHYS101"]
    physics = api.get("/courses?category=Sciences / Physics").get_json()
    assert [c["shortname"] for c in physics] == ["PHYS101"]
    assert [c["shortname"] for c in api.get("/courses?q=math").get_json()] == ["MATH101"]
    course = api.get("/courses/MATH101").get_json()
    assert (course["fullname"], course["category"]) == ("Maths", "Sciences / Mathematics")
    assert api.get("/courses/NOPE").status_code == 404
    assert api.get("/courses?category=Nowhere").status_code == 404


def test_courses_are_imported_from_csv(api, world):
    text = (
        "shortname,fullname,category,startdate\nCHEM1,Chemistry,Sciences / Chemistry,2026-09-01\n"
    )
    upload = {"file": (io.BytesIO(text.encode()), "courses.csv")}
    report = api.post("/courses/import", data=upload).get_json()
    assert report == {"created": 1, "updated": 0, "rejected": []}
    chem = api.get("/courses/CHEM1").get_json()
    assert (chem["category"], chem["startdate"]) == ("Sciences / Chemistry", 1788220800)


def test_a_login_event_is_a_real_login(api, api_runtime, world, clock):
    response = api.post("/events/login", json={"username": "bob"})
    assert response.get_json() == {"username": "bob", "lastlogin": clock.now()}
    assert api.field_errors(api.post("/events/login", json={"username": "zed"}))["username"]
    assert api.field_errors(api.post("/events/login", json={}))["username"]


def test_a_course_view_answers_with_the_access_decision(api, world):
    granted = api.post("/events/course-view", json={"username": "ann", "course": "MATH101"})
    assert granted.get_json()["decision"] == "granted"
    denied = api.post("/events/course-view", json={"username": "bob", "course": "MATH101"})
    assert denied.get_json()["decision"] == "denied"
    assert "MATH101" in denied.get_json()["reason"]
    refused = api.post("/events/enrol-me", json={"username": "bob", "course": "MATH101"})
    assert refused.status_code == 409 and "offers no enrolment" in refused.get_json()["message"]
    assert api.field_errors(
        api.post("/events/course-view", json={"username": "bob", "course": "X"})
    )["course"]


def test_a_completion_is_recorded_once(api, api_runtime, world):
    body = {"username": "ann", "course": "MATH101", "time": "2026-06-30T12:00:00Z"}
    first = api.post("/events/completion", json=body).get_json()
    assert (first["recorded"], first["timecompleted"]) == (True, 1782820800)
    again = api.post("/events/completion", json={**body, "time": 5}).get_json()
    assert (again["recorded"], again["timecompleted"]) == (False, 1782820800)
    assert api.get("/courses/MATH101/completions").get_json() == [
        {"username": "ann", "timecompleted": 1782820800}
    ]
    with api_runtime.site() as site:
        events = site.session.scalars(
            select(LogEntry.event).where(LogEntry.event == "course_completed")
        ).all()
    assert events == ["course_completed"]
    bad = api.post("/events/completion", json={**body, "time": "next tuesday"})
    assert "ISO 8601" in api.field_errors(bad)["time"][0]
    assert api.field_errors(api.post("/events/completion", json={**body, "time": 10**30}))["time"]
