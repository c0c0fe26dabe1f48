"""Issue 12, High 1 and the flat-file Low lines: the drop folder cannot be moved out of its
confinement by a web admin or an API token, a file elsewhere or a link is never read, renamed or
written beside, and no report, JSON or mail carries a whole file or a 10 MB line.

Each attack runs on SQLite and PostgreSQL; the CLI ones run the real ``enrolkit`` command."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from enrolkit import people
from enrolkit.api import tokens
from enrolkit.models import Config, MailMessage, User
from enrolkit.testing import SiteFactory
from enrolkit.web import create_app
from sqlalchemy import select

pytest.importorskip("enrol_flatfile")

from enrol_flatfile.processor import process  # noqa: E402

ENROLKIT = str(Path(sys.executable).with_name("enrolkit"))
HEADER = "operation,username,course,role,timestart,timeend\n"
SECRET = "the-flask-secret-key-0123456789abcdef"
PASSWORD = "correct-horse-battery"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Site:
    runtime: object
    url: str
    home: Path
    folder: Path
    env: dict

    def process(self, **options) -> list:
        with self.runtime.site() as site:
            return list(process(site, **options))

    def run(self, *args: str) -> subprocess.CompletedProcess:
        """The real ``enrolkit`` command on this site."""
        return subprocess.run(
            [ENROLKIT, *args], env=self.env, capture_output=True, text=True, timeout=120
        )

    def mails(self) -> list[MailMessage]:
        with self.runtime.site() as site:
            return list(site.session.scalars(select(MailMessage).order_by(MailMessage.id)))


@pytest.fixture
def flat(make_runtime, any_db, tmp_path, monkeypatch, clock) -> Site:
    """A site with the method on, an admin who gets the reports, and a home holding its secret
    key as ``enrolkit serve`` leaves it."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "secret_key").write_text(SECRET + "\n")
    monkeypatch.setenv("ENROLKIT_HOME", str(home))
    monkeypatch.delenv("ENROLKIT_FLATFILE_ROOTS", raising=False)
    runtime = make_runtime(url=any_db, entry_points=True)
    with runtime.site() as site, site.atomic():
        f = SiteFactory(site)
        admin = f.user("admin", siteadmin=True, email="admin@example.org")
        admin.password_hash = people.hash_password(PASSWORD)
        f.user("ann")
        f.course("MATH101")
        site.set_method_enabled("flatfile", True)
    folder = home / "flatfile"
    assert folder.is_dir(), "enabling the flat file creates its drop folder"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENROLKIT_")}
    env.update(ENROLKIT_DATABASE_URL=any_db, ENROLKIT_HOME=str(home), ENROLKIT_NOW=str(clock.now()))
    return Site(runtime, any_db, home, folder, env)


@pytest.fixture
def app(flat):
    return create_app({"TESTING": True}, runtime=flat.runtime)


@pytest.fixture
def api(app, flat):
    """``api(method, path, json=...)`` with a write token, as the attacker holds one."""
    with flat.runtime.site() as site:
        secret = tokens.create(site, "attacker", tokens.WRITE)
    client = app.test_client()

    def call(method: str, path: str, **kwargs):
        headers = {"Authorization": f"Bearer {secret}"}
        return client.open(f"/api/v1{path}", method=method, headers=headers, **kwargs)

    return call


@pytest.fixture
def admin(app):
    """A web client logged in as the site admin through the login form."""
    client = app.test_client()
    client.post(
        "/login", data={"username": "admin", "password": PASSWORD, "csrf_token": _csrf(client)}
    )
    return client


def _csrf(client) -> str:
    page = client.get("/login")
    if page.status_code == 302:
        page = client.get("/")
    return _TOKEN.search(page.get_data(as_text=True)).group(1)


def _stored_folder(flat: Site) -> str:
    with flat.runtime.site() as site:
        return site.method_settings("flatfile")["folder"]


# --- the folder is the operator's -------------------------------------------------------------


def test_api_cannot_point_the_folder_at_the_home_and_read_the_secret_key(flat, api):
    moved = api("PATCH", "/methods/flatfile", json={"settings": {"folder": str(flat.home)}})
    body = moved.get_data(as_text=True)
    assert moved.status_code == 422, body
    assert "secret key" in body and "folder of its own" in body
    assert _stored_folder(flat) == ""

    read = api("POST", "/flatfile/process", json={"dry_run": True, "file": "secret_key"})
    assert read.status_code == 422
    assert SECRET not in read.get_data(as_text=True)
    assert (flat.home / "secret_key").read_text() == SECRET + "\n"


@pytest.mark.parametrize(
    "folder",
    ["/etc", "../", "flatfile/../..", "/", "{home}/..", "{tmp}/elsewhere"],
)
def test_api_cannot_move_the_folder_outside_the_roots(flat, api, folder, tmp_path):
    value = folder.format(home=flat.home, tmp=tmp_path)
    moved = api("PATCH", "/methods/flatfile", json={"settings": {"folder": value}})
    body = moved.get_json()
    assert moved.status_code == 422, body
    text = json.dumps(body)
    assert "ENROLKIT_FLATFILE_ROOTS" in text or "folder of its own" in text
    assert _stored_folder(flat) == ""


def test_a_link_inside_the_home_does_not_lead_the_folder_out(flat, api, tmp_path):
    (tmp_path / "outside").mkdir()
    (flat.home / "innocent").symlink_to(tmp_path / "outside")
    moved = api("PATCH", "/methods/flatfile", json={"settings": {"folder": "innocent"}})
    assert moved.status_code == 422
    assert "outside the allowed roots" in json.dumps(moved.get_json())


def test_the_api_may_move_the_folder_within_the_home_or_a_listed_root(
    flat, api, tmp_path, monkeypatch
):
    inside = api("PATCH", "/methods/flatfile", json={"settings": {"folder": "incoming"}})
    assert inside.status_code == 200, inside.get_json()
    assert inside.get_json()["settings"]["folder"] == "incoming"
    monkeypatch.setenv("ENROLKIT_FLATFILE_ROOTS", str(tmp_path / "srv"))
    listed = api(
        "PATCH", "/methods/flatfile", json={"settings": {"folder": str(tmp_path / "srv" / "hr")}}
    )
    assert listed.status_code == 200, listed.get_json()


def test_the_web_settings_form_refuses_the_home_with_the_rule(flat, admin):
    response = admin.post(
        "/admin/methods/flatfile/settings",
        data={"csrf_token": _csrf(admin), "folder": str(flat.home), "encoding": "utf-8",
              "removal": "suspend_noroles", "expiry_action": "suspend_noroles",
              "chunk_size": "5000"},
    )  # fmt: skip
    page = response.get_data(as_text=True)
    assert response.status_code == 400, page
    assert "folder of its own" in page
    assert _stored_folder(flat) == ""


def test_the_cli_setting_follows_the_same_rule(flat):
    refused = flat.run("method", "set", "flatfile", f"folder={flat.home}")
    assert refused.returncode != 0
    assert refused.stderr.count("\n") == 1 and "folder of its own" in refused.stderr
    allowed = flat.run("method", "set", "flatfile", "folder=incoming")
    assert allowed.returncode == 0, allowed.stderr


def test_a_folder_stored_before_the_rule_is_refused_when_a_run_starts(flat, api, admin):
    with flat.runtime.site() as site, site.atomic():
        site.session.add(
            Config(component="enrol_flatfile", name="folder", value=json.dumps(str(flat.home)))
        )
    ran = flat.run("flatfile", "process", "--dry-run", "--json")
    assert ran.returncode == 1 and SECRET not in ran.stdout + ran.stderr
    assert ran.stderr.startswith("enrolkit: error: invalid stored site settings of flatfile: ")
    assert "folder of its own" in ran.stderr and ran.stderr.count("\n") == 1
    answered = api("POST", "/flatfile/process", json={"dry_run": True})
    assert answered.status_code in (409, 422) and SECRET not in answered.get_data(as_text=True)
    page = admin.get("/admin/flatfile")
    assert page.status_code == 200 and "folder of its own" in page.get_data(as_text=True)
    assert SECRET not in page.get_data(as_text=True)
    form = admin.get("/admin/methods/flatfile/settings")  # where the admin fixes it
    assert form.status_code == 200 and "folder of its own" in form.get_data(as_text=True)


# --- files are read only from the folder, never through a link -------------------------------


def test_processing_a_file_elsewhere_is_refused_and_leaves_it_alone(flat, tmp_path):
    """``enrolkit flatfile process /etc/passwd`` renamed /etc/passwd to /etc/passwd.done."""
    outside = tmp_path / "etc"
    outside.mkdir()
    passwd = outside / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\n")
    for dry in ([], ["--dry-run"]):
        ran = flat.run("flatfile", "process", str(passwd), *dry)
        assert ran.returncode == 1, ran.stdout
        assert ran.stderr == (
            f"enrolkit: error: {passwd} is not in the drop folder {flat.folder}; only files there "
            "are applied: move it there, or add --copy to copy it in first\n"
        )
        assert "root:x" not in ran.stdout
    assert sorted(p.name for p in outside.iterdir()) == ["passwd"]
    assert passwd.read_text() == "root:x:0:0:root:/root:/bin/bash\n"


def test_copy_puts_the_file_in_the_folder_first(flat, tmp_path):
    source = tmp_path / "hr.csv"
    source.write_text(HEADER + "add,ann,MATH101,student,,\n")
    ran = flat.run("flatfile", "process", "--copy", str(source), "--json")
    assert ran.returncode == 0, ran.stderr
    [result] = json.loads(ran.stdout)
    assert result["renamed_to"] == str(flat.folder / "hr.csv.done")
    assert result["counts"]["enrolled"] == 1
    assert source.read_text() == HEADER + "add,ann,MATH101,student,,\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("hr")) == ["hr.csv"]


def test_a_symlink_in_the_folder_named_as_the_file_is_refused(flat, tmp_path):
    target = tmp_path / "private.csv"
    target.write_text(HEADER + "add,ann,MATH101,student,,\nsecret line\n")
    link = flat.folder / "enrol.csv"
    link.symlink_to(target)
    ran = flat.run("flatfile", "process", str(link))
    assert ran.returncode == 1
    assert ran.stderr == (
        f"enrolkit: error: {link} is a symbolic link; only regular files directly in the drop "
        "folder are applied: put the file itself there\n"
    )
    assert link.is_symlink() and sorted(p.name for p in flat.folder.iterdir()) == ["enrol.csv"]
    assert target.read_text().endswith("secret line\n")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("private")) == [
        "private.csv"
    ]
    assert flat.run("flatfile", "process", "--json").stdout == "[]\n"  # the folder skips it


def test_links_planted_as_report_names_are_never_written_through(flat, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched\n")
    for name in ("a.csv.errors.csv", "a.csv.done"):
        (flat.folder / name).symlink_to(victim)
    (flat.folder / "a.csv").write_text(HEADER + "add,nobody,MATH101,student,,\n")
    [result] = flat.process()
    assert result.counts["rejected"] == 1
    assert result.renamed_to == flat.folder / "a.csv.2.done"
    assert result.errors_file == flat.folder / "a.csv.2.errors.csv"
    assert victim.read_text() == "untouched\n"
    assert (flat.folder / "a.csv.errors.csv").is_symlink()


def test_a_pipe_named_as_the_file_is_refused_without_blocking(flat):
    fifo = flat.folder / "pipe.csv"
    os.mkfifo(fifo)
    ran = flat.run("flatfile", "process", str(fifo))
    assert ran.returncode == 1
    assert "not a regular file" in ran.stderr


# --- what a report may carry ----------------------------------------------------------------


def test_over_long_rejected_lines_are_capped_in_json_report_and_mail(flat):
    long_line = "add,nobody," + "x" * 5000 + ",student,,"
    lines = [f"add,ghost{i},MATH101,student,," for i in range(149)] + [long_line]
    (flat.folder / "big.csv").write_text(HEADER + "\n".join(lines) + "\n")
    ran = flat.run("flatfile", "process", "--json")
    assert ran.returncode == 2, ran.stderr  # 2: lines were rejected
    [result] = json.loads(ran.stdout)
    assert result["counts"]["rejected"] == 150
    assert len(result["errors"]) == 100 and result["errors_not_shown"] == 50
    with (flat.folder / "big.csv.errors.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert len(rows) == 151
    last = rows[-1]
    assert last[2].startswith("add,nobody,xxx") and len(last[2]) < 240
    assert "more characters" in last[2] and len(last[1]) < 340
    [mail] = flat.mails()
    assert "... and 50 more" in mail.body and len(mail.body) < 100 * 400
    assert "x" * 201 not in mail.body
    with flat.runtime.site() as site:  # the database keeps only the lines a page lists
        from enrol_flatfile.models import FlatfileReject

        assert site.session.query(FlatfileReject).count() == 100


def test_a_10_mb_field_is_a_rejected_line_and_the_page_still_opens(flat, admin):
    huge = "y" * (10 * 1024 * 1024)
    (flat.folder / "huge.csv").write_text(
        HEADER + f'add,"{huge}",MATH101,student,,\nadd,ann,MATH101,student,,\n'
    )
    ran = flat.run("flatfile", "process", "--json")
    assert ran.returncode == 2, ran.stderr[-500:]  # 2: lines were rejected
    [result] = json.loads(ran.stdout)
    assert result["counts"]["enrolled"] == 1 and result["counts"]["rejected"] == 1
    assert "longer than 131,072 characters" in result["errors"][0]["reason"]
    assert len(ran.stdout) < 5000
    assert (flat.folder / "huge.csv.errors.csv").stat().st_size < 2000
    [mail] = flat.mails()
    assert len(mail.body) < 5000
    with flat.runtime.site() as site:
        from enrol_flatfile.models import FlatfileFile

        file_id = site.session.scalar(select(FlatfileFile.id))
    page = admin.get(f"/admin/flatfile/files/{file_id}")
    assert page.status_code == 200
    assert "longer than 131,072 characters" in page.get_data(as_text=True)


def test_a_report_written_before_the_caps_still_opens_on_the_web(flat, admin):
    (flat.folder / "old.csv").write_text(HEADER + "add,nobody,MATH101,student,,\n")
    [result] = flat.process()
    with result.errors_file.open("w", newline="") as handle:  # as the old code wrote it
        csv.writer(handle).writerows(
            [("line", "reason", "original_line"), (2, "bad", "z" * 300_000)]
        )
    with flat.runtime.site() as site:
        from enrol_flatfile.models import FlatfileFile

        file_id = site.session.scalar(select(FlatfileFile.id))
    page = admin.get(f"/admin/flatfile/files/{file_id}")
    assert page.status_code == 200


# --- Medium 4: formulas in the error report --------------------------------------------------


def test_formula_cells_of_the_error_report_are_neutralised(flat, app):
    attacks = ["=cmd|' /C calc'!A0", "+1+cmd", "-2+cmd", "@SUM(1)", "\tcmd", "'quoted"]
    (flat.folder / "f.csv").write_text(HEADER + "\n".join(attacks) + "\n")
    [result] = flat.process()
    assert result.counts["rejected"] == len(attacks)
    with result.errors_file.open(newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    for row, attack in zip(rows, attacks, strict=True):
        assert row[2] == "'" + attack, row
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row)
    # the people reading the report on the web see the line as it was
    from enrol_flatfile.report import read_errors

    assert [e["text"] for e in read_errors(result.errors_file)] == attacks


def test_copy_control_characters_in_a_line_are_kept_as_text_not_read_as_copy_syntax(flat):
    """Lines are staged with COPY on PostgreSQL: a field holding COPY's own syntax (``\\N`` for
    NULL, a tab, a backslash, an end-of-data marker) must be staged as the text it is, so the
    rejected line reads back exactly as the file had it."""
    hostile = [
        "add,\\N,MATH101,student,,",
        'add,"tab\there",MATH101,student,,',
        "add,back\\slash\\,MATH101,student,,",
        "add,\\.,MATH101,student,,",
    ]
    (flat.folder / "copy.csv").write_text(HEADER + "\n".join(hostile) + "\n")
    ran = flat.run("flatfile", "process", "--json")
    assert ran.returncode == 2, ran.stderr
    [result] = json.loads(ran.stdout)
    assert result["counts"]["rejected"] == len(hostile)
    with (flat.folder / "copy.csv.errors.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    assert [row[2] for row in rows] == hostile


# --- Rejected-line reasons in the reader's language -----------------------------------------


def test_values_quoted_in_a_french_reason_are_escaped_and_never_formats(flat, admin):
    """A value from the file is a parameter of the reason, whatever it looks like: HTML is
    escaped on the page, ``%(...)s`` and ``{0}`` read as they are, in French as in English."""
    (flat.folder / "x.csv").write_text(
        HEADER + "add,<img src=x onerror=alert(1)>,MATH101,student,,\n"
        "add,ann,MATH101,%(known)s{0},,\n"
    )
    flat.process()
    with flat.runtime.site() as site, site.atomic():
        from enrol_flatfile.models import FlatfileFile

        file_id = site.session.scalar(select(FlatfileFile.id))
        site.session.scalar(select(User).where(User.username == "admin")).lang = "fr"
    page = admin.get(f"/admin/flatfile/files/{file_id}")
    text = page.get_data(as_text=True)
    assert "<img src=x" not in text
    assert "utilisateur &#39;&lt;img src=x onerror=alert(1)&gt;&#39; inconnu" in text
    assert "rôle &#39;%(known)s{0}&#39; inconnu (rôles utilisables" in text


def test_a_file_applied_before_reasons_were_kept_shows_its_report(flat, admin):
    """Its rejected lines are no longer in the database: the page reads the report file."""
    (flat.folder / "old.csv").write_text(HEADER + "add,nobody,MATH101,student,,\n")
    flat.process()
    with flat.runtime.site() as site, site.atomic():
        from enrol_flatfile.models import FlatfileFile, FlatfileReject

        file_id = site.session.scalar(select(FlatfileFile.id))
        site.session.query(FlatfileReject).delete()
    page = admin.get(f"/admin/flatfile/files/{file_id}").get_data(as_text=True)
    assert "unknown user &#39;nobody&#39;" in page
