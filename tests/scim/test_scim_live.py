"""scim2-tester, the RFC 7643/7644 compliance checker, against a live ``enrolkit serve``; and
scim2-client acting as the identity provider in the issue's scenario."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

ENROLKIT = str(Path(sys.executable).with_name("enrolkit"))
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
#: Seconds ``enrolkit serve`` may take to answer: a shared CI machine can be slow to start it.
STARTUP = 120
#: Connections the identity provider of the scenario creates users on at once.
CONNECTIONS = 4
#: The page listing every scim2-tester check that does not pass, with the reason.
COMPLIANCE = Path(__file__).parents[2] / "docs" / "scim-compliance.md"


def documented() -> tuple[dict[tuple[str, str, str, str], str], set]:
    """The table of checks that do not pass: (resource, check, attribute, status) -> why; and
    the rows whose status reads "ERROR or SUCCESS" (the outcome depends on the values the
    tester draws at random), which a run may see pass."""
    table = COMPLIANCE.read_text().split("## Checks that do not pass", 1)[1]
    rows, random = {}, set()
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        statuses = cells[3].split(" or ") if len(cells) == 5 else []
        if statuses and statuses[0] in ("SKIPPED", "ERROR", "CRITICAL"):
            row = (*cells[:3], statuses[0])
            rows[row] = cells[4]
            if "SUCCESS" in statuses:
                random.add(row)
    return rows, random


def key(result) -> tuple[str, str, str, str]:
    """How the table names a result: its resource, check, the attribute its reason names."""
    reason = result.reason or ""
    attribute = reason.split("'", 2)[1] if "Attribute '" in reason else ""
    return (result.resource_type or "", result.title, attribute, result.status.name)


@pytest.fixture
def live(tmp_path, any_db):
    """``enrolkit serve`` on a free loopback port over a fresh database, and a scim token."""
    env = {
        **os.environ,
        "ENROLKIT_HOME": str(tmp_path / "home"),
        "ENROLKIT_DATABASE_URL": any_db,
    }
    subprocess.run([ENROLKIT, "db", "upgrade"], env=env, check=True, capture_output=True)
    made = subprocess.run(
        [ENROLKIT, "token", "create", "idp", "--scope", "scim"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [ENROLKIT, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP
    while True:
        try:
            urllib.request.urlopen(f"{base}/login", timeout=2).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise
            time.sleep(0.2)
    yield base, made.stdout.strip(), env
    server.terminate()
    try:
        server.wait(timeout=STARTUP)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@pytest.fixture
def client():
    """``client(base, token)``: a discovered scim2-client; closed after the test."""
    opened = []

    def make(base: str, token: str) -> SyncSCIMClient:
        http = httpx2.Client(
            base_url=f"{base}/scim/v2", headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        opened.append(http)
        scim = SyncSCIMClient(http)
        scim.discover()
        return scim

    yield make
    for http in opened:
        http.close()


def test_scim2_tester_finds_every_check_passing_or_documented(live, client, any_db):
    """Every check passes, or is in docs/scim-compliance.md with the reason; a documented
    check that passes now fails this test too, so the page stays true."""
    base, token, _ = live
    results = check_server(client(base, token))
    reasons, random = documented()
    report = [
        f"{r.status.name:8} {r.resource_type or '-':6} {r.title}: "
        + " | ".join((r.reason or "").splitlines())
        + (f" -- documented: {reasons[key(r)]}" if key(r) in reasons else "")
        for r in results
    ]
    backend = any_db.split(":", 1)[0].split("+", 1)[0]
    default = Path(__file__).parents[2] / "artifacts" / f"scim2-tester-{backend}.txt"
    path = Path(os.environ.get("ENROLKIT_SCIM_REPORT") or default)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(report) + "\n")
    statuses = Counter(r.status.name for r in results)
    print(f"scim2-tester on {backend}: {dict(statuses)}; report in {path}")

    undocumented = [
        line
        for r, line in zip(results, report, strict=True)
        if r.status != Status.SUCCESS and key(r) not in reasons
    ]
    assert results and not undocumented, (
        f"checks that do not pass, missing from {COMPLIANCE.name}:\n" + "\n".join(undocumented)
    )
    flagged = {key(r) for r in results if r.status != Status.SUCCESS}
    stale = [row for row in reasons if row not in flagged and row not in random]
    assert not stale, f"{COMPLIANCE.name} lists checks that pass now; remove: {stale}"


PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _patch(*operations: dict) -> dict:
    return {"schemas": [PATCH], "Operations": list(operations)}


def test_an_identity_provider_provisions_a_synced_group(live, client, tmp_path):
    """The issue's scenario with scim2-client as the IdP: 1,000 users with departments and a
    group synced into a course (group=new), and an auto-enrol instance on department in
    another course, whose users the LMS reports logging in. A member removed, a user
    deactivated and two users moved between departments, and the enrolments follow."""
    from enrolkit.models import Course, EnrolInstance, Group, GroupMember, User, UserEnrolment
    from enrolkit.runtime import Runtime
    from enrolkit.testing import SiteFactory
    from scim2_models import EnterpriseUser
    from scim2_models import Group as ScimGroup
    from scim2_models import User as ScimUser
    from sqlalchemy import select

    base, token, env = live
    runtime = Runtime(env["ENROLKIT_DATABASE_URL"])
    departments = ("Sales", "IT", "HR")
    lms_token = subprocess.run(
        [ENROLKIT, "token", "create", "lms", "--scope", "write"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    lms = httpx2.Client(
        base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {lms_token}"}, timeout=60
    )

    def members(course: str, group: str | None = None, active: bool = True) -> set[int]:
        """Users enrolled (active) in the course, or members of one of its groups."""
        with runtime.site() as site:
            course_id = site.session.scalar(select(Course.id).where(Course.shortname == course))
            if group is not None:
                query = (
                    select(GroupMember.user_id)
                    .join(Group, Group.id == GroupMember.group_id)
                    .where(Group.course_id == course_id, Group.name == group)
                )
            else:
                query = (
                    select(UserEnrolment.user_id)
                    .join(EnrolInstance, EnrolInstance.id == UserEnrolment.instance_id)
                    .where(EnrolInstance.course_id == course_id)
                )
                if active:
                    query = query.where(UserEnrolment.status == 0)
            return set(site.session.scalars(query))

    def log_in(user_ids) -> list[int]:
        """The LMS reports logins (POST /api/v1/events/login); the statuses it got."""
        return [
            lms.post("/events/login", json={"username": f"emp{ids.index(str(u)):04d}"}).status_code
            for u in user_ids
        ]

    try:
        idp = client(base, token)
        count = 1000

        # Discovered one after the other: scim2-models builds its models with pydantic's
        # create_model, which Python 3.11 cannot compile in several threads at once.
        connections = [client(base, token) for _ in range(CONNECTIONS)]

        def create(numbers: range) -> list[str]:
            """One connection of the IdP creating these users, as IdPs provision in parallel."""
            connection = connections[numbers.start]
            made = []
            for i in numbers:
                user = ScimUser[EnterpriseUser](user_name=f"emp{i:04d}", active=True)
                user[EnterpriseUser] = EnterpriseUser(department=departments[i % 3])
                made.append(connection.create(user).id)
            return made

        started = time.perf_counter()
        with ThreadPoolExecutor(CONNECTIONS) as pool:
            chunks = pool.map(create, [range(n, count, CONNECTIONS) for n in range(CONNECTIONS)])
            by_number = {
                i: made
                for n, chunk in enumerate(chunks)
                for i, made in zip(range(n, count, CONNECTIONS), chunk, strict=True)
            }
        ids: list[str] = [by_number[i] for i in range(count)]
        rate = count / (time.perf_counter() - started)
        group = idp.create(ScimGroup(display_name="Staff", external_id="staff"))
        rule = {
            "op": "&",
            "c": [{"type": "profile", "sf": "department", "op": "isequalto", "v": "IT"}],
        }
        with runtime.site() as site:
            factory = SiteFactory(site)
            factory.instance(factory.course("ONBOARD"), "cohort", cohort="staff", group="new")
            factory.instance(
                factory.course("ITTOOLS"),
                "autoenrol",
                mode="login",
                rule=json.dumps(rule),
                group_template="Groupe_{department}",
            )
            site.session.commit()
        started = time.perf_counter()
        idp.modify(
            "Group",
            group.id,
            _patch({"op": "add", "path": "members", "value": [{"value": i} for i in ids]}),
        )
        grouped = time.perf_counter() - started
        everyone = {int(i) for i in ids}
        assert members("ONBOARD") == everyone == members("ONBOARD", "Staff cohort")

        # The first 30 log in: the 10 of IT are auto-enrolled, into the group of their department.
        sample = [int(i) for i in ids[:30]]
        assert log_in(sample) == [200] * 30
        it = {u for n, u in enumerate(sample) if n % 3 == 1}
        assert members("ITTOOLS") == it == members("ITTOOLS", "Groupe_IT")

        removed, deactivated, joining, leaving = (int(ids[n]) for n in (0, 1, 3, 4))
        remove = f'members[value eq "{removed}"]'
        idp.modify("Group", group.id, _patch({"op": "remove", "path": remove}))
        off = {"op": "replace", "path": "active", "value": False}
        idp.modify("User", str(deactivated), _patch(off))
        department = f"{ENTERPRISE}:department"
        for user_id, value in ((joining, "IT"), (leaving, "HR")):
            move = {"op": "replace", "path": department, "value": value}
            idp.modify("User", str(user_id), _patch(move))

        # The removed member leaves the synced course and its group at once.
        assert members("ONBOARD") == everyone - {removed} == members("ONBOARD", "Staff cohort")
        # The deactivated user is suspended: no more logins; the enrolments stay, as Moodle
        # keeps a suspended account's enrolments (the account, not the enrolment, is off).
        with runtime.site() as site:
            assert site.session.get(User, deactivated).suspended
        assert log_in([deactivated]) == [422]
        assert deactivated in members("ONBOARD") and deactivated in members("ITTOOLS")
        # Moved between departments: at their next login the auto-enrolment follows.
        assert log_in([joining, leaving]) == [200, 200]
        assert members("ITTOOLS") == it - {leaving} | {joining}
        assert joining in members("ITTOOLS", "Groupe_IT")
        assert leaving not in members("ITTOOLS", "Groupe_IT")

        (tmp_path / "figures.txt").write_text(
            f"{rate:.0f} users/s created; PATCH adding {count} members to a group synced into "
            f"1 course in {grouped:.1f} s\n"
        )
        print(f"SCIM: {rate:.0f} users/s; PATCH adding {count} members, synced: {grouped:.1f} s")
    finally:
        lms.close()
        runtime.dispose()
