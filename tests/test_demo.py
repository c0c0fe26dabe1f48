"""The demo site shows the mission: all six methods on and visibly at work, with logins for an
admin, a French teacher and a French student."""

from __future__ import annotations

import pytest
from enrolkit import demo, lookup
from enrolkit.enrolments import list_enrolments
from enrolkit.models import EnrolInstance, LogEntry, MailMessage, PendingAction
from sqlalchemy import func, select

SIX = ("flatfile", "cohort", "meta", "category", "autoenrol", "completion")


@pytest.fixture
def demo_site(any_db, make_runtime, tmp_path, monkeypatch):
    monkeypatch.setenv("ENROLKIT_HOME", str(tmp_path / "home"))
    runtime = make_runtime(url=any_db, entry_points=True)
    missing = [name for name in SIX if name not in runtime.plugins.methods]
    if missing:
        pytest.skip(f"plugins not installed: {missing}")
    with runtime.site() as site:
        demo.load(site)
        yield site


def _rows(site, shortname: str) -> list[dict]:
    return list_enrolments(site, lookup.course(site.session, shortname))


def test_all_six_methods_are_on(demo_site):
    assert all(demo_site.method_enabled(name) for name in SIX)


def test_a_flat_file_was_applied_with_one_rejected_line(demo_site, tmp_path):
    rows = {(r["username"], r["method"]) for r in _rows(demo_site, "PHYS101")}
    assert {("marie", "flatfile"), ("paul", "flatfile")} <= rows
    folder = tmp_path / "home" / "flatfile"
    errors = (folder / "demo-inscriptions.csv.errors.csv").read_text().splitlines()
    assert len(errors) == 2 and "inconnu" in errors[1]
    assert (folder / "demo-inscriptions.csv.done").exists()


def test_a_cohort_promotion_with_a_group(demo_site):
    synced = [r for r in _rows(demo_site, "MATH101") if r["method"] == "cohort"]
    assert {r["username"] for r in synced} == {"etudiant1", "etudiant2", "etudiant3"}
    assert all(r["groups"] for r in synced)


def test_a_meta_link_mirrors_the_course(demo_site):
    linked = {r["username"] for r in _rows(demo_site, "MATH201") if r["method"] == "meta"}
    assert {"etudiant1", "etudiant2", "etudiant3"} <= linked


def test_a_category_role_enrols_in_the_category_courses(demo_site):
    for shortname in ("MATH101", "MATH201", "PHYS101"):
        rows = _rows(demo_site, shortname)
        assert ("prof.dubois", "category") in {(r["username"], r["method"]) for r in rows}


def test_auto_enrol_on_department_with_groups_per_department(demo_site):
    rows = {r["username"]: r for r in _rows(demo_site, "ONBOARD") if r["method"] == "autoenrol"}
    assert "Groupe_Marketing" in str(rows["paul"]["groups"])
    assert "Groupe_IT" in str(rows["jean"]["groups"])


def test_a_completion_path_with_a_delay_and_a_welcome_mail(demo_site):
    session = demo_site.session
    completed = {r["username"] for r in _rows(demo_site, "SEC101") if r["method"] == "completion"}
    assert {"jean", "marie"} <= completed
    sec201 = lookup.course(session, "SEC201")
    delayed = session.scalars(
        select(PendingAction.user_id)
        .join(EnrolInstance, EnrolInstance.id == PendingAction.instance_id)
        .where(EnrolInstance.course_id == sec201.id, PendingAction.status == "pending")
    ).all()
    assert delayed == [lookup.user(session, "jean").id]  # two days after completing SEC101
    subjects = set(session.scalars(select(MailMessage.subject)))
    assert any("Security basics" in subject for subject in subjects)


def test_loading_twice_changes_nothing(demo_site):
    before = demo_site.session.scalar(select(func.count()).select_from(LogEntry))
    assert demo.load(demo_site) == {
        "users": 0, "courses": 0, "cohorts": 0, "methods at work": 0
    }  # fmt: skip
    assert demo_site.session.scalar(select(func.count()).select_from(LogEntry)) == before
