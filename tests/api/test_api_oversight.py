"""Tasks and cron runs, the log, plans held by the mass-removal guard, and the flat-file drop
folder, through the API."""

from __future__ import annotations

import io
import json

import pytest
from enrolkit.models import UserEnrolment
from enrolkit.testing import SiteFactory
from sqlalchemy import func, select


def test_tasks_are_listed_rescheduled_switched_and_run(api, world):
    names = [t["name"] for t in api.get("/tasks?page_size=100").get_json()]
    assert "deliver_mail" in names and names == sorted(names)
    changed = api.patch("/tasks/deliver_mail", json={"schedule": "*/5  * * * *"})
    assert changed.status_code == 200 and changed.get_json()["schedule"] == "*/5 * * * *"
    bad = api.patch("/tasks/deliver_mail", json={"schedule": "every day"})
    assert "has 2 field(s)" in api.field_errors(bad)["schedule"][0]
    assert api.get("/tasks/deliver_mail").get_json()["schedule"] == "*/5 * * * *"
    assert api.patch("/tasks/deliver_mail", json={"enabled": False}).get_json()["enabled"] is False
    run = api.post("/tasks/deliver_mail/run").get_json()
    assert (run["name"], run["status"]) == ("deliver_mail", "ok")
    assert api.get("/tasks/deliver_mail").get_json()["last_result"] == run["result"]
    assert api.post("/tasks/nope/run").status_code == 404
    assert api.get("/tasks/nope").status_code == 404


def test_a_cron_run_reports_each_task(api, world):
    runs = api.post("/cron", json={"force": True}).get_json()
    assert {"apply_pending_actions", "deliver_mail"} <= {r["name"] for r in runs}
    assert all(r["status"] == "ok" for r in runs), runs
    assert api.post("/cron", json={}).status_code == 200


def test_the_log_is_filtered_and_paged_newest_first(api, world):
    api.post("/events/login", json={"username": "bob"})
    api.post("/events/login", json={"username": "ann"})
    logins = api.get("/log?event=user_loggedin").get_json()
    assert [e["username"] for e in logins] == ["ann", "bob"]
    assert all(e["origin"] == "api" for e in logins)
    page = api.get("/log?page_size=1")
    assert len(page.get_json()) == 1 and json.loads(page.headers["X-Pagination"])["total"] > 2
    assert [e["username"] for e in api.get("/log?event=user_loggedin&username=bob").get_json()] == [
        "bob"
    ]
    enrolments = api.get("/log?course=MATH101&component=enrol_manual").get_json()
    assert {e["event"] for e in enrolments} >= {"user_enrolled"}
    assert api.get("/log?since=2999-01-01").get_json() == []
    assert api.field_errors(api.get("/log?since=yesterday"), "query")["since"]
    assert api.get("/log?username=zed").status_code == 404


@pytest.fixture
def held_plan(api, api_runtime, world) -> int:
    """A cohort of 12 in PHYS101 that loses everyone at once: the guard holds the plan."""
    with api_runtime.site() as site, site.atomic():
        f = SiteFactory(site)
        crowd = f.users(12, prefix="m")
        f.cohort("crowd", members=crowd)
    added = api.post(
        "/courses/PHYS101/instances", json={"method": "cohort", "settings": {"cohort": "crowd"}}
    )
    assert added.get_json()["outcome"]["enrolled"] == 12
    names = [f"m{i}" for i in range(1, 13)]
    assert api.post("/cohorts/crowd/members/remove", json={"usernames": names}).status_code == 200
    [plan] = api.get("/plans").get_json()
    return plan["id"]


def enrolments(runtime) -> int:
    with runtime.site() as site:
        return site.session.scalar(select(func.count()).select_from(UserEnrolment))


def test_a_held_plan_is_shown_and_approved(api, api_runtime, held_plan):
    plan = api.get(f"/plans/{held_plan}").get_json()
    assert (plan["status"], plan["course"], plan["method"]) == ("held", "PHYS101", "cohort")
    assert sorted(plan["would_unenrol"]) == sorted(f"m{i}" for i in range(1, 13))
    before = enrolments(api_runtime)
    approved = api.post(f"/plans/{held_plan}/approve")
    assert approved.status_code == 200 and approved.get_json()["unenrolled"] == 12
    assert enrolments(api_runtime) == before - 12
    assert api.get("/plans").get_json() == []
    [done] = api.get("/plans?status=approved").get_json()
    assert (done["decided_by"], done["id"]) == ("hr-system", held_plan)
    again = api.post(f"/plans/{held_plan}/approve")
    assert again.status_code == 422 and "already approved" in again.get_json()["message"]


def test_a_held_plan_is_discarded(api, api_runtime, held_plan):
    before = enrolments(api_runtime)
    discarded = api.post(f"/plans/{held_plan}/discard")
    assert discarded.status_code == 200 and discarded.get_json()["status"] == "discarded"
    assert enrolments(api_runtime) == before
    assert api.post("/plans/99999/discard").status_code == 404
    assert api.field_errors(api.get("/plans?status=lost"), "query")["status"]


# --- the flat file -----------------------------------------------------------------------------

CSV = b"operation,username,course,role\nadd,bob,PHYS101,student\nadd,nobody,PHYS101,student\n"


@pytest.fixture
def drop(api, api_runtime, tmp_path, monkeypatch):
    pytest.importorskip("enrol_flatfile")
    folder = tmp_path / "drop"
    monkeypatch.setenv("ENROLKIT_FLATFILE_ROOTS", str(tmp_path))  # the operator allows it
    settings = {"folder": str(folder), "mail_admins": False}
    response = api.patch("/methods/flatfile", json={"enabled": True, "settings": settings})
    assert response.status_code == 200, response.get_json()
    return folder


def upload(api, content: bytes, name: str = "enrol.csv"):
    return api.post("/flatfile/pending", data={"file": (io.BytesIO(content), name)})


def test_a_file_is_uploaded_previewed_and_applied(api, api_runtime, world, drop):
    made = upload(api, CSV)
    assert made.status_code == 201 and made.get_json()["name"] == "enrol.csv"
    assert upload(api, CSV).get_json()["name"] == "enrol.csv.2"
    assert [f["name"] for f in api.get("/flatfile/pending").get_json()] == [
        "enrol.csv",
        "enrol.csv.2",
    ]
    [preview] = api.post(
        "/flatfile/process", json={"file": "enrol.csv", "dry_run": True}
    ).get_json()
    assert preview["dry_run"] and preview["counts"]["rejected"] == 1
    assert (drop / "enrol.csv").exists()
    results = api.post("/flatfile/process", json={}).get_json()
    assert [r["file"] for r in results] == ["enrol.csv", "enrol.csv.2"]
    assert results[0]["errors"][0]["line"] == 3
    assert (drop / "enrol.csv.done").exists()
    assert api.get("/flatfile/pending").get_json() == []
    journal = api.get("/flatfile/files").get_json()
    assert [f["name"] for f in journal] == ["enrol.csv.2", "enrol.csv"]
    assert [e["username"] for e in api.get("/courses/PHYS101/enrolments").get_json()] == ["bob"]


def test_flat_file_mistakes_are_named(api, world, drop):
    missing = api.post("/flatfile/process", json={"file": "ghost.csv"})
    assert "not waiting" in api.field_errors(missing)["file"][0]
    kept = upload(api, CSV, "old.csv.done")
    assert api.field_errors(kept, "files")["file"]
    api.patch("/methods/flatfile", json={"enabled": False})
    upload(api, CSV)
    disabled = api.post("/flatfile/process", json={})
    assert disabled.status_code == 409 and "disabled" in disabled.get_json()["message"]


def test_without_the_plugin_the_flat_file_resources_are_not_found(make_runtime, world):
    from enrolkit.api import tokens
    from enrolkit.web import create_app

    bare = make_runtime()  # the core's built-ins only
    with bare.site() as site:
        raw = tokens.create(site, "t", tokens.WRITE)
    client = create_app({"TESTING": True}, runtime=bare).test_client()
    response = client.get("/api/v1/flatfile/pending", headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 404 and "not installed" in response.get_json()["message"]
