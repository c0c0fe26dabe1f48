"""How fast an identity provider provisions through SCIM, against a live ``enrolkit serve``.

    .venv/bin/python benchmarks/bench_scim.py [--url URL] [--users N] [--connections C]

Without ``--url`` the server runs on a new SQLite file in a temporary folder; with a PostgreSQL
URL a new database is created on that server for the run and dropped afterwards. The server is
``enrolkit serve`` (waitress, its default threads) in a subprocess, every installed plugin loaded; the
client sends plain SCIM JSON over HTTP/1.1 with keep-alive (no client-side validation, so the
figure is the server's).

(a) N users created with ``POST /Users`` (core and enterprise schema, a department each), on
    C connections at once (an IdP provisions in parallel; C=1 is one request after another).
(b) ``PATCH /Groups/{id}`` adding 1,000 members in one request to a group synced into 10
    courses (10 cohort-sync instances, each with ``group=new``): the time until the answer,
    by which the 10,000 enrolments, role assignments and group memberships are committed.

Each figure comes with the server process's CPU time (read from /proc): on a shared machine
the wall clock follows the load, the CPU time much less (on PostgreSQL the database server's
share is not in it). Issue 14 asks for both figures; it sets no aim.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
from bench_sync import _database
from enrolkit.models import UserEnrolment
from enrolkit.runtime import Runtime
from enrolkit.testing import SiteFactory
from sqlalchemy import func, select

ENROLKIT = str(Path(sys.executable).with_name("enrolkit"))
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
MEMBERS = 1000
COURSES = 10


def serve(url: str, home: Path):
    """``enrolkit serve`` on a free loopback port over ``url``; (base URL, scim token, process)."""
    env = {**os.environ, "ENROLKIT_HOME": str(home), "ENROLKIT_DATABASE_URL": url}
    subprocess.run([ENROLKIT, "db", "upgrade"], env=env, check=True, capture_output=True)
    token = subprocess.run(
        [ENROLKIT, "token", "create", "idp", "--scope", "scim"],
        env=env, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [ENROLKIT, "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/login", timeout=2).close()
            return base, token, server
        except OSError:
            if time.monotonic() > deadline:
                server.kill()
                raise


def cpu_seconds(pid: int) -> float:
    """The CPU time a process has used (Linux): on a shared machine a steadier figure than the
    wall clock. The PostgreSQL server's share is not in it."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def connection(base: str, token: str) -> httpx2.Client:
    return httpx2.Client(
        base_url=f"{base}/scim/v2",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"},
        timeout=600,
    )


def create_users(base: str, token: str, numbers: range, prefix: str) -> list[str]:
    made = []
    with connection(base, token) as http:
        for i in numbers:
            body = {
                "schemas": [USER, ENTERPRISE],
                "userName": f"{prefix}{i:06d}",
                "name": {"givenName": "User", "familyName": str(i)},
                "emails": [{"value": f"{prefix}{i}@example.org", "primary": True}],
                "active": True,
                ENTERPRISE: {"department": ("Sales", "IT", "HR")[i % 3]},
            }
            response = http.post("/Users", json=body)
            assert response.status_code == 201, response.text
            made.append(response.json()["id"])
    return made


def created_per_second(server, base: str, token: str, users: int, connections: int) -> float:
    prefix = f"bench{connections}_"
    cpu = cpu_seconds(server.pid)
    started = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        list(
            pool.map(
                lambda n: create_users(base, token, range(n, users, connections), prefix),
                range(connections),
            )
        )
    seconds = time.perf_counter() - started
    cpu = cpu_seconds(server.pid) - cpu
    print(f"  (a) {users} users created on {connections} connection(s): {seconds:.1f} s, "
          f"{users / seconds:.1f} users/s; server CPU {cpu:.1f} s, "
          f"{1000 * cpu / users:.1f} ms per user")  # fmt: skip
    return users / seconds


def patch_members(server, base: str, token: str, url: str) -> float:
    member_ids = create_users(base, token, range(MEMBERS), "member")
    with connection(base, token) as http:
        group = http.post(
            "/Groups", json={"schemas": [GROUP], "displayName": "Staff", "externalId": "staff"}
        )
        assert group.status_code == 201, group.text
        runtime = Runtime(url)
        try:
            with runtime.site() as site:
                factory = SiteFactory(site)
                for n in range(COURSES):
                    factory.instance(
                        factory.course(f"SYNC{n}"), "cohort", cohort="staff", group="new"
                    )
                site.session.commit()
            body = {
                "schemas": [PATCH],
                "Operations": [
                    {"op": "add", "path": "members", "value": [{"value": i} for i in member_ids]}
                ],
            }
            cpu = cpu_seconds(server.pid)
            started = time.perf_counter()
            response = http.patch(f"/Groups/{group.json()['id']}", json=body)
            seconds = time.perf_counter() - started
            cpu = cpu_seconds(server.pid) - cpu
            assert response.status_code in (200, 204), response.text
            with runtime.site() as site:
                enrolled = site.session.scalar(select(func.count()).select_from(UserEnrolment))
        finally:
            runtime.dispose()
    assert enrolled == MEMBERS * COURSES, enrolled
    print(f"  (b) PATCH adding {MEMBERS} members to a group synced into {COURSES} courses: "
          f"{seconds:.2f} s, server CPU {cpu:.2f} s ({enrolled} enrolments)")  # fmt: skip
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    print(f"SCIM against enrolkit serve ({args.url or 'sqlite'}), "
          f"load average {os.getloadavg()[0]:.2f}:")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        url, cleanup = _database(args.url, Path(folder), "scim")
        base, token, server = serve(url, Path(folder) / "home")
        try:
            created_per_second(server, base, token, args.users, 1)
            if args.connections > 1:
                created_per_second(server, base, token, args.users, args.connections)
            patch_members(server, base, token, url)
        finally:
            server.terminate()
            server.wait(timeout=30)
            cleanup()
    print(f"  load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
