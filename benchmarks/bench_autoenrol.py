"""Auto-enrol at scale: the cost of a login among many login-mode instances, and the hourly task.

1. **Login.** A site with N login-mode instances (1,000, then 10,000), each with a rule of the
   form ``department = D and badge "Safety"`` (every other one ``(department = D or department =
   X) and badge``), plus 5 badge-only rules that cannot be indexed and that nobody matches. Each
   department has 20 instances, so a user of department D0 with the badge matches exactly 20.
   Timed: a user's *first* login (it enrols them in the 20, one plan each) and a *repeat* login
   (it re-checks the 20 enrolments and their groups, changing nothing); the median over several
   users, and how it grows from 1,000 to 10,000 instances. For scale, the cost of evaluating
   every rule for one user, as a login without the prefilter index would.
2. **Hourly task.** 100,000 users, 100 login-mode instances with ``department = Dk and (language
   = en or badge "Safety")`` and a group per city: the first run (enrols everyone who matches and
   has logged in), a second run (nothing to do), and the daily expiry task over the result.

The first run is set beside the baselines of ``_support.py``: the rows it wrote, written again
into same-shaped copies, ``raw`` (executemany of the enrolments and role assignments, no log) and
the set-based limit (one INSERT ... SELECT per table: enrolments, roles, group memberships, log).

Runs on SQLite, and also on PostgreSQL when ENROLKIT_TEST_POSTGRES_URL is set (``--url`` runs on
that database server only). ``--quick``: 200 and 1,000 login-mode instances, 5 logins, 5,000 users
and 20 instances for the task.

    .venv/bin/python benchmarks/bench_autoenrol.py [--users N] [--logins N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import enrol_autoenrol
from _results import record
from _support import WRITTEN, Baselines, backend, fresh_database, servers
from enrol_autoenrol.prefilter import index
from enrol_autoenrol.tasks import process_enrolments, process_expiry
from enrolkit import lookup, rules
from enrolkit.models import Badge, BadgeAward, Base, Course, EnrolInstance, User, UserEnrolment
from enrolkit.people import login
from enrolkit.plugins import Plugins
from enrolkit.runtime import Runtime
from sqlalchemy import func, insert, select

CHUNK = 10_000
MATCHING = 20
UNINDEXABLE = 5
CITIES = [f"City{i}" for i in range(20)]
AIM_LOGIN_MS, AIM_GROWTH, AIM_TASK_S = 20, 2.0, 10
BENCH = "bench_autoenrol"


def profile(department: str) -> dict:
    return {"type": "profile", "sf": "department", "op": "isequalto", "v": department}


def settings(rule: dict | None) -> dict:
    """What ``prepare_instance`` stores for ``mode=login`` with this rule."""
    return {
        "mode": "login",
        "rule": json.dumps(rule) if rule else "",
        "duration": 0,
        "enrolstart": 0,
        "enrolend": 0,
        "newenrols": True,
        "maxenrolled": 0,
        "group_template": "G_{city}",
        "unenrol_on_mismatch": True,
        "removal": "suspend",
        "inactive_days": 0,
        "welcome": False,
        "welcome_template": "",
    }


def open_runtime(url: str) -> Runtime:
    runtime = Runtime(url, Plugins(entry_points=False, extra=(enrol_autoenrol,)))
    Base.metadata.create_all(runtime.db)
    runtime.bootstrap()
    with runtime.site() as site, site.atomic():
        site.set_method_enabled("autoenrol", True)
    return runtime


def add_instances(runtime: Runtime, rules_json: list[dict | None]) -> None:
    """Bulk-insert one course and one login-mode instance per rule, then index each instance
    exactly as saving it would (``instance_saved``)."""
    with runtime.site() as site:
        first = (site.session.scalar(select(func.max(Course.id))) or 0) + 1
        student = lookup.role(site.session, "student").id
        with site.atomic():
            ids = range(first, first + len(rules_json))
            site.session.execute(
                insert(Course), [{"id": i, "shortname": f"c{i}", "fullname": f"c{i}"} for i in ids]
            )
            site.session.execute(
                insert(EnrolInstance),
                [
                    {
                        "id": i,
                        "course_id": i,
                        "method": "autoenrol",
                        "enabled": True,
                        "role_id": student,
                        "settings": settings(rule),
                    }
                    for i, rule in zip(ids, rules_json, strict=True)
                ],
            )
            for instance in site.session.scalars(
                select(EnrolInstance).where(EnrolInstance.id >= first)
            ):
                index(
                    site, instance, rules.parse(instance.settings["rule"], site.plugins.conditions)
                )


def analyze(runtime: Runtime) -> None:
    with runtime.db.begin() as conn:
        conn.exec_driver_sql("ANALYZE")


# --- 1. login ------------------------------------------------------------------------------


def login_site(url: str, instances: int, logins: int) -> Runtime:
    runtime = open_runtime(url)
    rnd = random.Random(42)
    departments = instances // MATCHING
    with runtime.db.begin() as conn:
        conn.execute(insert(Badge), [{"name": "Safety"}, {"name": "Never"}])
        background = [
            {
                "username": f"bg{i}",
                "email": f"bg{i}@example.org",
                "department": f"D{rnd.randrange(1, departments)}",
                "city": rnd.choice(CITIES),
                "lastlogin": 1,
            }
            for i in range(2_000)
        ]
        people = [
            {"username": f"me{i}", "email": f"me{i}@example.org", "department": "D0",
             "city": rnd.choice(CITIES), "lastlogin": 0}
            for i in range(logins)
        ]  # fmt: skip
        conn.execute(insert(User), background + people)
        badge = conn.scalar(select(Badge.id).where(Badge.name == "Safety"))
        conn.execute(
            insert(BadgeAward),
            [{"badge_id": badge, "user_id": uid} for uid in conn.scalars(select(User.id))],
        )
    trees: list[dict | None] = []
    for number in range(instances):
        department = f"D{number // MATCHING}"
        if number % 2:
            wanted = {"op": "|", "c": [profile(department), profile(f"X{number}")]}
        else:
            wanted = profile(department)
        trees.append({"op": "&", "c": [wanted, {"type": "badge", "id": "Safety"}]})
    trees += [{"op": "&", "c": [{"type": "badge", "id": "Never"}]}] * UNINDEXABLE
    add_instances(runtime, trees)
    analyze(runtime)
    return runtime


def time_logins(runtime: Runtime, logins: int) -> tuple[list[float], list[float], float]:
    """(first logins, repeat logins) in ms, and one naive full evaluation in ms."""
    first, repeat = [], []
    with runtime.site(origin="web") as site:
        people = site.session.scalars(select(User).where(User.username.like("me%"))).all()
        for rounds in (first, repeat):
            for user in people:
                started = time.perf_counter()
                login(site, user)
                rounds.append((time.perf_counter() - started) * 1e3)
        enrolled = site.session.scalar(select(func.count()).select_from(UserEnrolment))
        if enrolled != MATCHING * len(people):
            raise SystemExit(f"expected {MATCHING * len(people)} enrolments, found {enrolled}")
        started = time.perf_counter()
        for instance in site.session.scalars(select(EnrolInstance)):
            rules.parse(instance.settings["rule"], site.plugins.conditions).matches(site, people[0])
        naive = (time.perf_counter() - started) * 1e3
        site.session.rollback()
    return first, repeat, naive


def bench_login(tmp: Path, server: str | None, logins: int, sizes: tuple[int, int]) -> None:
    name = backend(server)
    print(f"== {name}: one login among N login-mode instances, {MATCHING} of which match")
    medians = {}
    for instances in sizes:
        with fresh_database(server, tmp, f"login{instances}") as url:
            runtime = login_site(url, instances, logins)
            first, repeat, naive = time_logins(runtime, logins)
            runtime.dispose()
        medians[instances] = (statistics.median(first), statistics.median(repeat))
        figure = f"first login enrolling into {MATCHING} of {instances:,} instances, median"
        record(BENCH, figure, name, medians[instances][0], "ms")
        figure = f"repeat login among {instances:,} instances, median"
        record(BENCH, figure, name, medians[instances][1], "ms")
        print(
            f"   {instances:>6,} instances: first login (enrols {MATCHING}) median "
            f"{medians[instances][0]:6.1f} ms, repeat login median {medians[instances][1]:6.1f} ms"
            f"  [every rule evaluated, no index: {naive:,.0f} ms]"
        )
    for label, column in (("first", 0), ("repeat", 1)):
        growth = medians[sizes[1]][column] / medians[sizes[0]][column]
        verdict = "ok" if growth < AIM_GROWTH else "over the aim"
        print(
            f"   growth {sizes[0]:,} -> {sizes[1]:,}, {label} login: {growth:.2f}x"
            f" (aim < {AIM_GROWTH}x: {verdict})"
        )
        figure = f"{label} login, growth {sizes[0]:,} -> {sizes[1]:,} instances"
        record(BENCH, figure, name, growth, "x")
    worst = max(medians[sizes[1]])
    verdict = "ok" if worst < AIM_LOGIN_MS else "over the aim"
    print(
        f"   median at {sizes[1]:,} instances: {worst:.1f} ms at worst"
        f" (aim < {AIM_LOGIN_MS} ms: {verdict})"
    )


# --- 2. the hourly task --------------------------------------------------------------------


def task_site(url: str, users: int, instances: int) -> Runtime:
    runtime = open_runtime(url)
    rnd = random.Random(7)
    with runtime.db.begin() as conn:
        conn.execute(insert(Badge), [{"name": "Safety"}])
        badge = conn.scalar(select(Badge.id))
        for start in range(1, users + 1, CHUNK):
            ids = range(start, min(start + CHUNK, users + 1))
            conn.execute(
                insert(User),
                [
                    {
                        "id": i,
                        "username": f"user{i}",
                        "email": f"user{i}@example.org",
                        "department": f"D{rnd.randrange(instances)}",
                        "lang": "en" if rnd.random() < 0.7 else "fr",
                        "city": rnd.choice(CITIES),
                        "lastlogin": 1_700_000_000 if rnd.random() < 0.9 else 0,
                    }
                    for i in ids
                ],
            )
            conn.execute(
                insert(BadgeAward),
                [{"badge_id": badge, "user_id": i} for i in ids if rnd.random() < 0.2],
            )
    either = {"op": "|", "c": [{"type": "language", "id": "en"}, {"type": "badge", "id": "Safety"}]}
    add_instances(runtime, [{"op": "&", "c": [profile(f"D{k}"), either]} for k in range(instances)])
    analyze(runtime)
    return runtime


def bench_task(tmp: Path, server: str | None, users: int, instances: int) -> None:
    name = backend(server)
    print(f"== {name}: the hourly task over {users:,} users and {instances} instances")
    started = time.perf_counter()
    with fresh_database(server, tmp, "task") as url:
        runtime = task_site(url, users, instances)
        print(f"   site generated in {time.perf_counter() - started:.1f} s")
        # What the first run writes: enrolments, their roles and groups, and the log.
        baselines = Baselines(runtime.db, (*WRITTEN, "group_members"))
        with runtime.site(origin="cron") as site:
            runs = []
            mark = baselines.mark()
            for _ in range(2):
                started = time.perf_counter()
                result = process_enrolments(site)
                runs.append(time.perf_counter() - started)
                print(f"   run {len(runs)}: {runs[-1]:6.2f} s  ({result})")
                site.session.commit()
                if len(runs) == 1:
                    base = baselines.measure(mark)
            started = time.perf_counter()
            result = process_expiry(site)
            expiry = time.perf_counter() - started
            print(f"   daily expiry task: {expiry:6.2f} s  ({result})")
        runtime.dispose()
    verdict = "ok" if runs[0] < AIM_TASK_S else "over the aim"
    print(f"   first run {runs[0]:.2f} s (aim < {AIM_TASK_S} s: {verdict}); {base.ratios(runs[0])}")
    figure = f"hourly auto-enrol, {users:,} users x {instances} instances, first run"
    record(BENCH, figure, name, runs[0], "s")
    record(BENCH, f"{figure}: vs raw", name, runs[0] / base.raw, "x")
    record(BENCH, f"{figure}: vs set-based", name, runs[0] / base.set, "x")
    figure = f"hourly auto-enrol, {users:,} users x {instances} instances, nothing to do"
    record(BENCH, figure, name, runs[1], "s")
    record(BENCH, f"daily auto-enrol expiry, {users:,} users", name, expiry, "s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000, help="users for the task")
    parser.add_argument("--instances", type=int, default=100, help="instances for the task")
    parser.add_argument("--logins", type=int, default=30, help="logins timed per size")
    parser.add_argument("--url", help="database URL (default: SQLite, and PostgreSQL if set)")
    parser.add_argument("--quick", action="store_true", help="small sizes, to try the script")
    args = parser.parse_args()
    sizes = (1_000, 10_000)
    if args.quick:
        args.users, args.instances, args.logins, sizes = 5_000, 20, 5, (200, 1_000)
    for server in servers(args.url):
        with tempfile.TemporaryDirectory() as tmp:
            bench_login(Path(tmp), server, args.logins, sizes)
            bench_task(Path(tmp), server, args.users, args.instances)


if __name__ == "__main__":
    main()
