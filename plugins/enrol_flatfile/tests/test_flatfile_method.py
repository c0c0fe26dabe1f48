"""The method: off on a fresh site, its site settings and form, its task, its end dates."""

from __future__ import annotations

import json

import pytest
from enrol_flatfile.method import load_settings
from enrolkit.errors import SettingsError
from enrolkit.models import ACTIVE, SUSPENDED
from enrolkit.tasks import Runner, list_tasks, set_schedule

HEADER = "operation,username,course,role,timestart,timeend\n"


def test_disabled_on_a_fresh_site_until_enabled(cli, home):
    rows = {row["name"]: row for row in json.loads(cli("method", "list", "--json").output)}
    assert rows["flatfile"]["enabled"] is False
    assert cli("method", "enable", "flatfile").output == "flatfile enabled\n"
    rows = {row["name"]: row for row in json.loads(cli("method", "list", "--json").output)}
    assert rows["flatfile"]["enabled"] is True


def test_site_settings_and_their_defaults(site, home):
    assert site.method_settings("flatfile") == {
        "folder": "",
        "encoding": "utf-8",
        "mail_admins": True,
        "mail_students": False,
        "mail_teachers": False,
        "removal": "suspend_noroles",
        "role_map": "",
        "expiry_action": "suspend_noroles",
        "chunk_size": 20_000,
    }
    settings = load_settings(site)
    assert settings.folder == home / "flatfile"
    assert settings.roles == {
        name: site.role(name).id for name in ("manager", "editingteacher", "teacher", "student")
    }
    with site.atomic():
        site.set_method_settings("flatfile", {"folder": str(home / "in"), "removal": "keep"})
    assert load_settings(site).folder == home / "in"


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("encoding", "klingon", "unknown encoding 'klingon'"),
        ("encoding", "utf-16", "does not write ASCII as ASCII"),
        ("encoding", "utf-32-le", "does not write ASCII as ASCII"),
        ("removal", "delete", "Must be one of"),
        ("role_map", "teacher", "write shortname=alias"),
        ("role_map", "teacher=prof, editingteacher=prof", "alias(es) given to several roles: prof"),
        ("chunk_size", "0", "greater than or equal to 1"),
    ],
)
def test_bad_settings_are_refused(cli, key, value, message):
    result = cli("method", "set", "flatfile", f"{key}={value}")
    assert result.exit_code == 1
    assert message in result.output and result.output.count("\n") == 1


def test_a_role_map_naming_a_missing_role_stops_processing(site, home):
    with site.atomic():
        site.set_method_settings("flatfile", {"role_map": "professor=prof"})
    with pytest.raises(SettingsError, match="no role 'professor' on this site"):
        load_settings(site)


def test_the_settings_form_comes_from_the_schema(site):
    method = site.plugins.method("flatfile")
    html = site.plugins.render_settings(
        site=site,
        method=method,
        scope="site",
        schema=method.site_schema(),
        values=site.method_settings("flatfile"),
        errors={"encoding": ["unknown encoding 'x'"]},
    )
    for label in (
        "Drop folder",
        "File encoding",
        "Mail the admins a report",
        "Removal action for del lines",
        "Role aliases",
        "When an enrolment ends",
        "Lines per transaction",
    ):
        assert f">{label}</label>" in html
    assert '<option value="suspend_noroles" selected>' in html
    assert '<input type="checkbox" id="f-mail_admins" name="mail_admins" value="1" checked>' in html
    assert "unknown encoding &#39;x&#39;" in html


def test_instances_are_made_by_files_not_by_hand(cli, site):
    site.course("MATH101")
    site.session.commit()
    cli("method", "enable", "flatfile")
    result = cli("instance", "add", "MATH101", "flatfile")
    assert result.exit_code == 1
    assert "creates its instances itself" in result.output


def test_the_task_runs_hourly_by_default_and_applies_the_folder(drop, runtime):
    site = drop.site
    ann, math = site.user("ann"), site.course("MATH101")
    site.session.commit()
    [task] = [t for t in list_tasks(site) if t.name == "flatfile_sync"]
    assert (task.schedule, task.component) == ("0 * * * *", "enrol_flatfile")
    set_schedule(site, "flatfile_sync", "*/15 * * * *")
    [task] = [t for t in list_tasks(site) if t.name == "flatfile_sync"]
    assert task.schedule == "*/15 * * * *"

    drop.write("enrol.csv", HEADER + "add,ann,MATH101,student,,\nadd,x,MATH101,student,,\n")
    outcome = Runner(runtime).run("flatfile_sync")
    assert outcome.status == "ok", outcome.result
    assert outcome.result == "1 file(s) applied (enrol.csv): 2 line(s), 1 rejected"
    site.session.commit()  # end the test's read snapshot: the task wrote in its own session
    assert drop.enrolment(ann, math).status == ACTIVE
    assert drop.events("user_enrolled")[0][1:] == ("ann", "enrol.csv line 2")

    with site.atomic():
        site.set_method_enabled("flatfile", False)
    drop.write("more.csv", HEADER)
    assert Runner(runtime).run("flatfile_sync").result == (
        "flat-file enrolment is disabled; nothing done"
    )
    assert "more.csv" in drop.files()


def test_ended_enrolments_get_the_expiry_action(drop, clock):
    from enrolkit.expiry import enforce_end_dates

    site = drop.site
    ann, math = site.user("ann"), site.course("MATH101")
    drop.write("enrol.csv", HEADER + "add,ann,MATH101,student,2026-01-01,2026-10-01\n")
    drop.process()
    clock.set("2026-10-02")
    enforce_end_dates(site)
    assert drop.enrolment(ann, math).status == SUSPENDED
    assert drop.roles(ann, math) == []
    with site.atomic():
        site.set_method_settings("flatfile", {"expiry_action": "unenrol"})
    enforce_end_dates(site)
    assert drop.enrolment(ann, math) is None
