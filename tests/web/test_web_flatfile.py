"""The flat-file admin page: upload, dry run, apply, processed files and their errors."""

from __future__ import annotations

import io

import pytest
from enrolkit.models import EnrolInstance, UserEnrolment
from sqlalchemy import select

pytest.importorskip("enrol_flatfile")

CSV = (
    b"operation,username,course,role\n"
    b"add,student,PHYS101,student\n"
    b"add,teacher,PHYS101,student\n"
    b"add,nobody,PHYS101,student\n"
)


def _enrolled(runtime, course_id) -> set[int]:
    with runtime.site() as site:
        return set(
            site.session.scalars(
                select(UserEnrolment.user_id)
                .join(EnrolInstance, EnrolInstance.id == UserEnrolment.instance_id)
                .where(EnrolInstance.course_id == course_id, EnrolInstance.method == "flatfile")
            )
        )


def test_upload_preview_apply_and_read_the_error_report(
    world, drop, client_as, post, csrf, web_runtime
):
    admin = client_as("admin")
    response = admin.post(
        "/admin/flatfile/upload",
        data={"csrf_token": csrf(admin), "file": (io.BytesIO(CSV), "enrol.csv")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert "enrol.csv is in the drop folder." in page
    assert (drop / "enrol.csv").read_bytes() == CSV
    assert not [p for p in drop.iterdir() if p.name.startswith(".")]

    preview = post(admin, "/admin/flatfile/process", file="enrol.csv", dry_run="1")
    text = preview.get_data(as_text=True)
    assert "Dry run: nothing was changed" in text and "PHYS101" in text
    assert "nobody" in text  # the rejected line
    assert _enrolled(web_runtime, world.other_course.id) == set()

    post(admin, "/admin/flatfile/process", file="enrol.csv")
    assert _enrolled(web_runtime, world.other_course.id) == {world.student.id, world.teacher.id}
    assert (drop / "enrol.csv.done").exists()
    page = admin.get("/admin/flatfile").get_data(as_text=True)
    assert "No file is waiting." in page and "enrol.csv" in page
    participants = admin.get(f"/course/{world.other_course.id}/manage/participants")
    assert "Jean Dupont" in participants.get_data(as_text=True)

    from enrol_flatfile.models import FlatfileFile

    with web_runtime.site() as site:
        journal = site.session.scalar(select(FlatfileFile.id))
    report = admin.get(f"/admin/flatfile/files/{journal}").get_data(as_text=True)
    assert "nobody" in report and "Rejected lines" in report


BAD = b"operation,username,course,role\nadd,student,PHYS101,student\nadd,nobody,PHYS101,student\n"


def test_rejected_lines_read_in_the_readers_language(world, drop, client_as, post, web_runtime):
    """The dry run and the processed file's page show the reasons in the reader's language; the
    report file beside it is in the site's (one file for every reader)."""
    drop.mkdir(exist_ok=True)
    (drop / "enrol.csv").write_bytes(BAD)
    admin = client_as("admin")
    english = post(admin, "/admin/flatfile/process", file="enrol.csv", dry_run="1")
    assert "unknown user &#39;nobody&#39;" in english.get_data(as_text=True)

    post(admin, f"/user/{world.admin.id}", lang="fr")
    french = post(admin, "/admin/flatfile/process", file="enrol.csv", dry_run="1")
    page = french.get_data(as_text=True)
    assert "utilisateur &#39;nobody&#39; inconnu" in page and "unknown user" not in page

    post(admin, f"/user/{world.admin.id}", lang="en")
    with web_runtime.site() as site, site.atomic():
        site.set_config("core", "lang", "fr")
    post(admin, "/admin/flatfile/process", file="enrol.csv")
    assert "utilisateur 'nobody' inconnu" in (drop / "enrol.csv.errors.csv").read_text()
    from enrol_flatfile.models import FlatfileFile

    with web_runtime.site() as site:
        journal = site.session.scalar(select(FlatfileFile.id))
    report = admin.get(f"/admin/flatfile/files/{journal}").get_data(as_text=True)
    assert "Rejected lines" in report and "unknown user &#39;nobody&#39;" in report
    post(admin, f"/user/{world.admin.id}", lang="fr")
    report = admin.get(f"/admin/flatfile/files/{journal}").get_data(as_text=True)
    assert "Lignes rejetées" in report and "utilisateur &#39;nobody&#39; inconnu" in report
