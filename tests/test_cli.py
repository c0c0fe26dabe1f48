"""The CLI contract of the core (DESIGN §7), through the real ``enrolkit`` command in-process,
and as a subprocess where exit codes, stderr and start-up matter."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import enrolkit
import pytest
from enrolkit.models import Category, Cohort, CohortMember, Course, LogEntry, User, UserEnrolment
from sqlalchemy import func, select

ENROLKIT = str(Path(sys.executable).with_name("enrolkit"))


def ok(result):
    assert result.exit_code == 0, result.output
    return result


def refused(result, *fragments):
    """A refusal: non-zero exit, one line on stderr naming the problem, no traceback."""
    assert result.exit_code != 0, result.output
    lines = result.stderr.strip().splitlines()
    assert lines and all(not line.startswith("Traceback") for line in lines), result.stderr
    assert lines[-1].startswith("enrolkit: error:"), result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    return result


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def count(site, model, *where) -> int:
    site.session.rollback()
    return site.session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def run(tmp_path):
    """Run the installed ``enrolkit`` script in a subprocess with its own data home."""
    home = tmp_path / "home"

    def run(*args: str, input: str | None = None, env: dict | None = None):
        environ = {**os.environ, "ENROLKIT_HOME": str(home), **(env or {})}
        environ.pop("ENROLKIT_DATABASE_URL", None)
        return subprocess.run(
            [ENROLKIT, *args], capture_output=True, text=True, input=input, env=environ, timeout=60
        )

    run.home = home
    return run


# --- the command itself -----------------------------------------------------------------------


def test_help_lists_every_group(run):
    result = run("--help")
    assert result.returncode == 0
    for group in (
        "db",
        "demo",
        "serve",
        "user",
        "course",
        "cohort",
        "role",
        "badge",
        "method",
        "instance",
        "enrolment",
        "plan",
        "log",
        "plugin",
        "completion",
    ):
        assert f"  {group} " in result.stdout, group


def test_a_fresh_home_says_to_upgrade_then_works(run):
    first = run("enrolment", "list", "MATH101")
    assert first.returncode == 1
    assert (
        first.stderr.strip()
        == "enrolkit: error: the database has no schema yet; run: enrolkit db upgrade"
    )
    assert run("db", "upgrade").returncode == 0
    assert (run.home / "enrolkit.db").exists()
    assert run("db", "upgrade").returncode == 0  # idempotent


def test_demo_is_idempotent_and_prints_credentials(run):
    run("db", "upgrade")
    first = run("demo")
    assert "admin login: admin / " in first.stdout
    assert "teacher login (French): prof.martin / " in first.stdout
    assert "student login (French): jean / " in first.stdout
    before = json.loads(run("enrolment", "list", "MATH101", "--json").stdout)
    again = run("demo")
    assert "nothing new" in again.stdout
    assert json.loads(run("enrolment", "list", "MATH101", "--json").stdout) == before


def test_errors_are_one_line_without_traceback(run):
    run("db", "upgrade")
    for args, fragment in [
        (("enrolment", "add", "ghost", "MATH101"), "no user with username 'ghost'"),
        (("cohort", "add", "nope", "admin"), "no cohort with idnumber 'nope'"),
        (("method", "enable", "telepathy"), "no enrolment method 'telepathy'"),
        (("role", "assign", "wizard", "admin"), "no role 'wizard'"),
        (("log", "--since", "yesterday"), "not a time"),
    ]:
        result = run(*args)
        assert result.returncode == 1, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert result.stderr.count("\n") == 1 and fragment in result.stderr, result.stderr


def test_serve_answers_http(run):
    run("db", "upgrade")
    run("demo")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "ENROLKIT_HOME": str(run.home)}
    server = subprocess.Popen(
        [ENROLKIT, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    page = response.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert "enrolkit" in page and 'name="csrf_token"' in page  # the login form
    finally:
        server.terminate()
        server.wait(timeout=10)
        server.stdout.close()
        server.stderr.close()


# --- users ----------------------------------------------------------------------------------


def test_user_import_creates_updates_and_reports_bad_rows(cli, site, tmp_path):
    path = write(
        tmp_path,
        "users.csv",
        "username,email,firstname,lastname,department,profile_field_promo\n"
        "jean,jean@x.org,Jean,Dupont,IT,2026\n"
        "marie,not-an-email,Marie,Curie,Support,2026\n"
        "paul,paul@x.org,Paul\n"
        "lea,lea@x.org,Léa,Martin,Sales,2027\n",
    )
    result = cli("user", "import", path)
    assert result.exit_code == 2
    assert "users: 2 created, 0 updated, 2 rejected" in result.stdout
    assert "users.csv:3: column email: 'not-an-email' is not an email address" in result.stderr
    assert "users.csv:4: expected 6 fields, found 3" in result.stderr
    assert count(site, User) == 2
    from enrolkit.people import profile_values

    jean = site.session.scalar(select(User).where(User.username == "jean"))
    assert jean.department == "IT"
    assert profile_values(site.site, jean.id) == {"promo": "2026"}

    ok(
        cli(
            "user",
            "import",
            write(
                tmp_path,
                "again.csv",
                "username,email,firstname,lastname,department\n"
                "jean,jean@x.org,Jean,Dupont,Support\n",
            ),
        )
    )
    site.session.rollback()
    assert jean.department == "Support"


def test_user_import_strict_applies_nothing(cli, site, tmp_path):
    path = write(
        tmp_path, "users.csv", "username,email,firstname,lastname\na,a@x.org,A,A\nb,b@x.org,B\n"
    )
    refused(cli("user", "import", path, "--strict"), "nothing applied", "users.csv:3")
    assert count(site, User) == 0


def test_user_import_missing_column(cli, site, tmp_path):
    path = write(tmp_path, "users.csv", "username,firstname,lastname\na,A,A\n")
    refused(cli("user", "import", path), "users.csv:1: missing required column(s) email")


def test_user_set_and_login(cli, site, clock):
    site.user("jean", department="IT")
    site.session.commit()
    ok(cli("user", "set", "jean", "department=Sales", "profile_field_team=Blue"))
    refused(cli("user", "set", "jean", "shoe_size=42"), "shoe_size: unknown field")
    refused(cli("user", "set", "jean", "nonsense"), "expected KEY=VALUE")
    ok(cli("user", "login", "jean"))
    site.session.rollback()
    jean = site.session.scalar(select(User).where(User.username == "jean"))
    assert jean.department == "Sales"
    assert jean.lastlogin == clock.now()


def test_user_passwd_reads_stdin_and_stores_a_hash(cli, site):
    site.user("jean")
    site.session.commit()
    ok(cli("user", "passwd", "jean", input="correct horse battery\n"))
    site.session.rollback()
    stored = site.session.scalar(select(User.password_hash).where(User.username == "jean"))
    assert "correct horse" not in stored
    from enrolkit.people import check_password

    assert check_password(stored, "correct horse battery")
    assert not check_password(stored, "wrong")
    refused(cli("user", "passwd", "jean", input="short\n"), "at least 8 characters")


# --- courses, categories, cohorts, roles, badges ----------------------------------------------


def test_course_import_creates_categories(cli, site, tmp_path):
    path = write(
        tmp_path,
        "courses.csv",
        "shortname,fullname,category,startdate,enablecompletion\n"
        "MATH101,Maths,Sciences / Mathematics,2026-09-01,1\n"
        "PHYS101,Physics,Sciences / Physics,1788220800,yes\n"
        "BAD,Bad,,someday,1\n",
    )
    result = cli("course", "import", path)
    assert result.exit_code == 2
    assert "courses.csv:4: column startdate: 'someday' is not a time" in result.stderr
    assert count(site, Course) == 2
    assert count(site, Category) == 3
    from enrolkit import lookup

    maths = lookup.course(site.session, "MATH101")
    assert lookup.category_path(site.session, maths.category_id) == "Sciences / Mathematics"
    assert maths.startdate == 1788220800


def test_cohort_import_add_remove(cli, site, tmp_path):
    site.users(3)
    site.session.commit()
    ok(
        cli(
            "cohort",
            "import",
            write(tmp_path, "c.csv", "idnumber,name,category\npromo,Promotion 2026,Sciences\n"),
        )
    )
    ok(cli("cohort", "add", "promo", "u1", "u2", "u3"))
    ok(cli("cohort", "remove", "promo", "u2"))
    # an unknown user among several changes nothing
    refused(cli("cohort", "add", "promo", "u2", "ghost"), "ghost")
    cohort = site.session.scalar(select(Cohort))
    assert count(site, CohortMember, CohortMember.cohort_id == cohort.id) == 2


def test_role_assign_in_category_and_course(cli, site):
    site.user("claire")
    site.course("MATH101", category="Sciences / Mathematics")
    site.session.commit()
    ok(cli("role", "assign", "manager", "claire", "--category", "Sciences / Mathematics"))
    ok(cli("role", "assign", "teacher", "claire", "--course", "MATH101"))
    refused(
        cli("role", "assign", "manager", "claire", "--category", "Nowhere"), "no category 'Nowhere'"
    )
    ok(cli("role", "unassign", "teacher", "claire", "--course", "MATH101"))
    log = json.loads(ok(cli("log", "--json", "--user", "claire")).stdout)
    assert [row["event"] for row in log] == ["role_unassigned", "role_assigned", "role_assigned"]


def test_badge_award(cli, site):
    site.user("jean")
    site.session.commit()
    assert "awarded to jean" in ok(cli("badge", "award", "Onboarding complété", "jean")).stdout
    assert "already held" in ok(cli("badge", "award", "Onboarding complété", "jean")).stdout


def test_course_complete_and_completion_list(cli, site):
    site.user("jean")
    site.course("A")
    site.session.commit()
    ok(cli("course", "complete", "jean", "A", "--time", "2026-06-30T12:00:00Z"))
    assert "already" in ok(cli("course", "complete", "jean", "A")).stdout
    rows = json.loads(ok(cli("completion", "list", "A", "--json")).stdout)
    assert rows == [{"username": "jean", "timecompleted": 1782820800}]


# --- methods, instances, enrolments ---------------------------------------------------------


def test_fresh_site_enables_manual_only_of_the_core(cli):
    methods = {m["name"]: m for m in json.loads(ok(cli("method", "list", "--json")).stdout)}
    assert methods["manual"]["enabled"] is True
    ok(cli("method", "disable", "manual"))
    methods = {m["name"]: m for m in json.loads(ok(cli("method", "list", "--json")).stdout)}
    assert methods["manual"]["enabled"] is False


def test_method_set_validates_with_the_schema(cli):
    ok(cli("method", "set", "manual", "expiry_action=suspend"))
    result = refused(cli("method", "set", "manual", "expiry_action=explode"), "expiry_action")
    assert "Must be one of" in result.stderr
    refused(cli("method", "set", "manual", "colour=blue"), "colour: Unknown field")
    methods = {m["name"]: m for m in json.loads(ok(cli("method", "list", "--json")).stdout)}
    assert methods["manual"]["settings"]["expiry_action"] == "suspend"


def test_manual_enrolment_add_list_remove(cli, site, clock):
    site.user("jean")
    site.course("MATH101")
    site.session.commit()
    ok(
        cli(
            "enrolment",
            "add",
            "jean",
            "MATH101",
            "--role",
            "teacher",
            "--start",
            "2026-09-01",
            "--end",
            "2027-06-30T00:00:00Z",
        )
    )
    rows = json.loads(ok(cli("enrolment", "list", "MATH101", "--json")).stdout)
    assert rows == [
        {
            "username": "jean",
            "method": "manual",
            "instance": rows[0]["instance"],
            "roles": ["teacher"],
            "status": "active",
            "timestart": 1788220800,
            "timeend": 1814313600,
            "timecreated": clock.now(),
            "groups": [],
        }
    ]
    refused(
        cli("enrolment", "add", "jean", "MATH101", "--start", "2027-01-01", "--end", "2026-01-01"),
        "end must come after the start",
    )
    ok(cli("enrolment", "remove", "jean", "MATH101"))
    assert json.loads(ok(cli("enrolment", "list", "MATH101", "--json")).stdout) == []
    refused(cli("enrolment", "remove", "jean", "MATH101"), "not enrolled")
    events = [
        r["event"] for r in json.loads(ok(cli("log", "--json", "--course", "MATH101")).stdout)
    ]
    assert events[:2] == ["role_unassigned", "user_unenrolled"] or set(events[:2]) == {
        "role_unassigned",
        "user_unenrolled",
    }


def test_instance_add_list_update_delete(cli, site):
    site.users(2)
    site.course("MATH101")
    site.session.commit()
    instance_id = ok(cli("instance", "add", "MATH101", "manual", "name=Staff", "role=teacher"))
    instance_id = int(instance_id.stdout.strip())
    refused(cli("instance", "add", "MATH101", "manual"), "allows only one per course")
    refused(cli("instance", "update", str(instance_id), "role=wizard"), "role: no role 'wizard'")
    refused(cli("instance", "update", str(instance_id), "colour=blue"), "colour: Unknown field")
    rows = json.loads(ok(cli("instance", "list", "MATH101", "--json")).stdout)
    assert rows == [
        {
            "id": instance_id,
            "course": "MATH101",
            "method": "manual",
            "name": "Staff",
            "enabled": True,
            "role": "teacher",
            "settings": {},
        }
    ]
    ok(cli("instance", "update", str(instance_id), "enabled=off"))
    refused(cli("instance", "update", str(instance_id), "enabled=perhaps"), "expected on or off")
    ok(cli("enrolment", "add", "u1", "MATH101"))
    result = ok(cli("instance", "delete", str(instance_id)))
    assert "1 unenrolled" in result.stdout
    assert count(site, UserEnrolment) == 0
    refused(cli("instance", "delete", str(instance_id)), f"no enrolment instance {instance_id}")


def test_disabled_method_cannot_be_added(cli, site):
    site.course("MATH101")
    site.session.commit()
    ok(cli("method", "disable", "manual"))
    refused(cli("instance", "add", "MATH101", "manual"), "enrolkit method enable manual")


# --- plans held by the guard, through the CLI -------------------------------------------------


class Roster(enrolkit.EnrolMethod):
    """A test method whose desired state is whoever has ``department == 'IT'``."""

    name = "roster"
    manual_unenrol = False

    def sync(self, site, instance):
        from sqlalchemy import literal

        desired = select(
            User.id.label("user_id"),
            literal(instance.role_id).label("role_id"),
            literal(0).label("timestart"),
            literal(0).label("timeend"),
            literal(0).label("status"),
            literal(None).label("group_id"),
        ).where(User.department == "IT")
        return enrolkit.Plan(instance.id, reason="roster sync", desired=desired)

    def refusal(self, site, instance):
        return "change the user's department instead"


class RosterPlugin:
    @enrolkit.hookimpl
    def register_methods(self, register):
        register(Roster())


@pytest.fixture
def roster_cli(make_runtime):
    from enrolkit.testing import SiteFactory, run_cli

    runtime = make_runtime(plugins=(RosterPlugin(),))

    def run(*args):
        return run_cli(runtime, *args)

    with runtime.site() as site:
        run.site = SiteFactory(site)
        yield run


def test_guard_holds_then_approve_and_discard(roster_cli):
    cli, site = roster_cli, roster_cli.site
    site.users(12, department="IT")
    site.course("C1")
    site.session.commit()
    ok(cli("method", "enable", "roster"))
    instance_id = int(ok(cli("instance", "add", "C1", "roster")).stdout)
    assert count(site, UserEnrolment) == 12
    # ownership: a manual unenrol is refused and says where to act
    refused(cli("enrolment", "remove", "u1", "C1"), "change the user's department instead")
    site.session.execute(User.__table__.update().values(department="Sales"))
    site.session.commit()
    held = ok(cli("instance", "update", str(instance_id), "name=Roster"))
    assert "held as plan" in held.stdout
    assert count(site, UserEnrolment) == 12
    plans = json.loads(ok(cli("plan", "list", "--json")).stdout)
    assert len(plans) == 1 and plans[0]["summary"]["unenrolled"] == 12
    shown = ok(cli("plan", "show", str(plans[0]["id"])))
    assert "would unenrol (12): u1" in shown.stdout
    ok(cli("plan", "approve", str(plans[0]["id"])))
    assert count(site, UserEnrolment) == 0
    refused(cli("plan", "approve", str(plans[0]["id"])), "already approved")
    # a second hold, discarded this time
    site.session.execute(User.__table__.update().values(department="IT"))
    site.session.commit()
    ok(cli("instance", "update", str(instance_id), "name=Roster 2"))
    site.session.execute(User.__table__.update().values(department="HR"))
    site.session.commit()
    ok(cli("instance", "update", str(instance_id), "name=Roster 3"))
    held_id = json.loads(ok(cli("plan", "list", "--json")).stdout)[0]["id"]
    ok(cli("plan", "discard", str(held_id)))
    assert count(site, UserEnrolment) == 12
    assert json.loads(ok(cli("plan", "list", "--json")).stdout) == []


def test_instance_add_dry_run_changes_nothing(roster_cli):
    cli, site = roster_cli, roster_cli.site
    site.users(3, department="IT")
    site.course("C1")
    site.session.commit()
    ok(cli("method", "enable", "roster"))
    result = ok(cli("instance", "add", "C1", "roster", "--dry-run"))
    assert "would change: 3 enrolled, 3 roles_added" in result.stdout
    assert json.loads(ok(cli("instance", "list", "C1", "--json")).stdout) == []
    assert count(site, UserEnrolment) == 0


def test_log_json_fields(cli, site):
    site.user("jean")
    site.course("MATH101")
    site.session.commit()
    ok(cli("enrolment", "add", "jean", "MATH101"))
    rows = json.loads(ok(cli("log", "--json", "--event", "user_enrolled")).stdout)
    assert len(rows) == 1
    assert set(rows[0]) == {
        "time",
        "event",
        "component",
        "course",
        "user",
        "instance",
        "origin",
        "reason",
    }
    assert rows[0]["component"] == "enrol_manual"
    assert rows[0]["course"] == "MATH101" and rows[0]["user"] == "jean"
    assert rows[0]["origin"] == "cli"


def test_enrolkit_now_overrides_the_clock(cli, site, monkeypatch):
    site.user("jean")
    site.course("MATH101")
    site.session.commit()
    monkeypatch.setenv("ENROLKIT_NOW", "2030-01-02T03:04:05Z")
    ok(cli("enrolment", "add", "jean", "MATH101"))
    row = json.loads(ok(cli("enrolment", "list", "MATH101", "--json")).stdout)[0]
    assert row["timecreated"] == 1893553445
    assert count(site, LogEntry, LogEntry.time == 1893553445) >= 1
