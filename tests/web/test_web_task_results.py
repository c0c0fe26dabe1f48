"""A scheduled task's last result is stored as its message id and parameters, so the tasks page
shows it in the reader's language; results stored before as plain English still show. On SQLite
and PostgreSQL (the stored form goes through the database)."""

from __future__ import annotations

import re
from html import unescape

import pytest
from enrolkit.catalogs import gettext_for
from enrolkit.models import ScheduledTask, User
from enrolkit.texts import Text, translate

#: One cell of the tasks page: the task's name (the row's id) and its result.
RESULT = re.compile(r'<tr id="task-([\w.]+)">.*?<td class="result">(.*?)</td>', re.DOTALL)


@pytest.fixture
def web_runtime(make_runtime, any_db):
    """Every installed plugin, on each database backend."""
    return make_runtime(url=any_db, entry_points=True)


def _results(page: str) -> dict[str, str]:
    return {name: unescape(cell).strip() for name, cell in RESULT.findall(page)}


def _speak_french(runtime, username: str) -> None:
    with runtime.site() as site, site.atomic():
        site.session.query(User).filter_by(username=username).one().lang = "fr"


def test_a_french_admin_reads_the_last_result_of_every_task_in_french(
    world, client_as, web_runtime, run_cron, monkeypatch, tmp_path
):
    monkeypatch.setenv("ENROLKIT_HOME", str(tmp_path / "home"))  # the flat-file drop folder
    monkeypatch.delenv("ENROLKIT_SMTP_URL", raising=False)
    _speak_french(web_runtime, "admin")
    with web_runtime.site() as site, site.atomic():
        for method in site.plugins.methods:
            site.set_method_enabled(method, True)
    run_cron(force=True, runtime=web_runtime)

    shown = _results(client_as("admin").get("/admin/tasks").get_data(as_text=True))

    with web_runtime.site() as site:
        stored = {task.name: task.last_result for task in site.session.query(ScheduledTask)}
        french = gettext_for(site, "fr")
    assert set(shown) == set(stored) and len(shown) >= 10
    for name, result in stored.items():
        assert isinstance(result, Text), f"{name} stored plain text: {result!r}"
        assert shown[name] == translate(result, french) != result, name
    assert shown["apply_pending_actions"] == (
        "0 action(s) en attente appliquée(s) dans 0 instance(s)"
    )
    assert shown["deliver_mail"].startswith("SMTP non configuré (définissez ENROLKIT_SMTP_URL)")
    assert shown["cohort_sync"].endswith("instance(s) vérifiée(s), 0 resynchronisée(s)")


def test_a_failed_run_reads_in_french_on_the_tasks_page_and_the_admin_home(
    world, client_as, web_runtime, run_cron, monkeypatch
):
    monkeypatch.setenv("ENROLKIT_SMTP_URL", "smtp://")  # no host: the delivery task fails
    _speak_french(web_runtime, "admin")
    run_cron(force=True, runtime=web_runtime, check=False)
    admin = client_as("admin")

    shown = _results(admin.get("/admin/tasks").get_data(as_text=True))
    assert shown["deliver_mail"] == (
        "échec : ENROLKIT_SMTP_URL ne nomme aucun serveur ; utilisez smtp://host:port"
    )
    home = admin.get("/admin/").get_data(as_text=True)
    assert "La tâche deliver_mail" in home


def test_a_result_stored_as_plain_english_before_still_shows(world, client_as, web_runtime):
    with web_runtime.site() as site, site.atomic():
        site.session.add(
            ScheduledTask(
                name="deliver_mail",
                component="core",
                schedule="* * * * *",
                default_schedule="* * * * *",
                last_run=1_700_000_000,
                last_result="failed: the example failure",
            )
        )
    admin = client_as("admin")
    assert _results(admin.get("/admin/tasks").get_data(as_text=True))["deliver_mail"] == (
        "failed: the example failure"
    )
    home = admin.get("/admin/").get_data(as_text=True)
    assert "deliver_mail" in home  # still listed among the tasks that failed
