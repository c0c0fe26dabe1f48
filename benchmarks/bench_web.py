"""How fast the participants page renders for a course of 100,000 enrolments.

Builds a fresh SQLite site (``--users N``, default 100,000) with one course holding everyone
through a manual instance, each with a student role and a third of them in groups, then times the
page through Flask's test client, logged in as an admin: the first page, a filtered page, a
search and the last page. Aim: under 300 ms each. Run: ``.venv/bin/python benchmarks/bench_web.py``
(``--quick``: 5,000 users, 2 runs).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _results import record
from enrolkit import people
from enrolkit.enrolments import ensure_instance
from enrolkit.models import (
    COURSE,
    Base,
    Course,
    Group,
    GroupMember,
    Role,
    RoleAssignment,
    User,
    UserEnrolment,
)
from enrolkit.plugins import Plugins
from enrolkit.runtime import Runtime
from enrolkit.web import create_app
from sqlalchemy import insert, select

AIM_MS = 300
CHUNK = 10_000


def build(runtime: Runtime, count: int) -> int:
    with runtime.site() as site, site.atomic():
        admin = User(
            username="admin", siteadmin=True, password_hash=people.hash_password("bench-pass")
        )
        course = Course(shortname="BIG101", fullname="A big course")
        site.session.add_all([admin, course])
        site.session.flush()
        instance = ensure_instance(site, course, "manual")
        student = site.session.scalar(select(Role.id).where(Role.shortname == "student"))
        groups = []
        for name in ("Groupe_A", "Groupe_B", "Groupe_C"):
            group = Group(
                course_id=course.id, name=name, component="enrol_manual", itemid=instance.id
            )
            site.session.add(group)
            groups.append(group)
        site.session.flush()
        first = site.session.scalar(select(User.id).order_by(User.id.desc())) + 1
        for start in range(0, count, CHUNK):
            ids = range(first + start, first + min(start + CHUNK, count))
            site.session.execute(
                insert(User),
                [
                    {
                        "id": i,
                        "username": f"user{i:06d}",
                        "firstname": f"First{i}",
                        "lastname": f"Last{i % 997}",
                        "email": f"user{i}@example.org",
                        "department": ("Sales", "IT", "Support")[i % 3],
                    }
                    for i in ids
                ],
            )
            site.session.execute(
                insert(UserEnrolment),
                [
                    {"instance_id": instance.id, "user_id": i, "timecreated": 1_700_000_000}
                    for i in ids
                ],
            )
            site.session.execute(
                insert(RoleAssignment),
                [
                    {"role_id": student, "user_id": i, "contextlevel": COURSE,
                     "instanceid": course.id, "component": "enrol_manual", "itemid": instance.id}
                    for i in ids
                ],
            )  # fmt: skip
            site.session.execute(
                insert(GroupMember),
                [
                    {"group_id": groups[i % 3].id, "user_id": i, "component": "enrol_manual",
                     "itemid": instance.id}
                    for i in ids if i % 3 == 0
                ],
            )  # fmt: skip
        return course.id


def timed(client, url: str, runs: int) -> tuple[float, int]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url)
        body = response.get_data()
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(samples), len(body)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="5,000 users, 2 runs")
    args = parser.parse_args()
    if args.quick:
        args.users, args.runs = 5_000, 2
    with tempfile.TemporaryDirectory() as home:
        runtime = Runtime(f"sqlite:///{Path(home) / 'bench.db'}", Plugins(entry_points=False))
        Base.metadata.create_all(runtime.db)
        runtime.bootstrap()
        started = time.perf_counter()
        course_id = build(runtime, args.users)
        print(f"built {args.users:,} enrolments in {time.perf_counter() - started:.1f} s")
        app = create_app({"TESTING": True}, runtime=runtime)
        client = app.test_client()
        login_page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', login_page).group(1)
        client.post(
            "/login", data={"username": "admin", "password": "bench-pass", "csrf_token": token}
        )
        base = f"/course/{course_id}/manage/participants"
        pages = {
            "first page": base,
            "role filter": f"{base}?role=student&status=active",
            "search": f"{base}?q=Last42",
            "last page": f"{base}?page={-(-args.users // 50)}",
        }
        worst = 0.0
        for label, url in pages.items():
            median, size = timed(client, url, args.runs)
            worst = max(worst, median)
            print(f"participants, {label:<12} median {median:7.1f} ms  ({size // 1024} KiB)")
            figure = f"participants page of {args.users:,}, {label}, median"
            record("bench_web", figure, "sqlite", median, "ms")
        verdict = "ok" if worst < AIM_MS else "SLOW"
        print(f"worst median {worst:.1f} ms; aim under {AIM_MS} ms: {verdict}")
        runtime.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
