"""LMS traffic on two web nodes sharing one PostgreSQL, with a cron runner, then consistency checks.

The deployment of ``docs/deploying.md`` on one machine: a throwaway PostgreSQL cluster
(``scripts/postgres.sh``), one shared home (``config.py`` with the database URL and a shared
``SECRET_KEY``), two ``enrolkit serve`` nodes on it, and a runner calling ``enrolkit cron --force``
every 20 s. One process drives the mix of issue 18 through the REST API, over keep-alive
connections spread across both nodes, for ``--seconds`` (default 180):

    logins 35%, course views 20%, enrol-me 10%, listings 15%, cohort add/remove 20%

The site: ``--users`` people (default 3,000) in 10 departments and 3 campuses (a custom profile
field); 24 courses that enrol at login (12 by department, 12 by campus, the custom-field rules the
prefilter index skips), 10 that enrol at course view, 10 behind "Enrol me", and 10 fed by 5 cohorts
of about 100 members each.

It prints requests/s, p50/p95/p99 per endpoint, the status codes and the cron runs, then checks the
database: cohort enrolments equal cohort members; no method-owned role without its enrolment;
every auto-enrolment matches its rule; every enrolment and cohort membership is logged; no task
lock held. It exits 1 when a request failed or a check did not hold. Aim on a 2-core machine:
85 requests/s or more, p95 300 ms or less, no error. The load average is printed with the figures,
as a shared machine skews them.

Run: ``.venv/bin/python benchmarks/bench_load.py [--seconds 180] [--clients 16] [--threads N]``.
Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ENROLKIT = str(BIN / "enrolkit")

MIX = (
    ("login", 35),
    ("course-view", 20),
    ("enrol-me", 10),
    ("listing", 15),
    ("cohort", 20),
)
DEPARTMENTS = [f"D{n}" for n in range(10)]
CAMPUSES = ("North", "South", "East")
COHORTS = [f"cohort{n}" for n in range(5)]
CRON_EVERY = 20
AIM_RPS, AIM_P95_MS = 85, 300


# --- the cluster, the home, the nodes ----------------------------------------------------------


def start_postgres(folder: Path) -> str:
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "postgres.sh"), "start", str(folder)],
        check=True,
        capture_output=True,
        text=True,
    )
    server = out.stdout.strip().splitlines()[-1]
    name = f"bench_load_{secrets.token_hex(4)}"
    psql(server, f'CREATE DATABASE "{name}"')
    return server.rsplit("/", 1)[0] + "/" + name


def stop_postgres(folder: Path) -> None:
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "postgres.sh"), "stop", str(folder)],
        capture_output=True,
        check=False,
    )


def psql(server: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(statement)


def make_home(folder: Path, url: str) -> dict[str, str]:
    """The shared home: config.py names the database and the session key every node shares."""
    folder.mkdir(parents=True)
    (folder / "config.py").write_text(
        f"DATABASE_URL = {url!r}\nSECRET_KEY = {secrets.token_hex(32)!r}\n"
    )
    env = dict(os.environ, ENROLKIT_HOME=str(folder))
    env.pop("ENROLKIT_DATABASE_URL", None)
    env.pop("ENROLKIT_NOW", None)
    return env


def enrolkit(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [ENROLKIT, *args], env=env, input=stdin, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise SystemExit(f"enrolkit {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_node(env: dict[str, str], port: int, threads: int | None, log: Path) -> subprocess.Popen:
    """A node as deployed: ``enrolkit serve``'s own thread count unless ``threads`` is given."""
    extra = ["--threads", str(threads)] if threads else []
    return subprocess.Popen(
        [ENROLKIT, "serve", "--port", str(port), *extra],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def wait_ready(port: int, token: str, node: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if node.poll() is not None:
            raise SystemExit(f"the node on port {port} stopped (exit {node.returncode})")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/v1/courses", headers={"Authorization": f"Bearer {token}"})
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"the node on port {port} did not answer within 60 s")


# --- the site ----------------------------------------------------------------------------------


@dataclass
class World:
    users: list[str]
    login_courses: list[str]
    view_courses: list[str]
    confirm_courses: list[str]
    cohort_courses: list[str]
    members: dict[str, set[str]]
    lock: threading.Lock = field(default_factory=threading.Lock)


def rule(**equality: str) -> str:
    (name, value), custom = next(iter(equality.items())), "campus" in equality
    key = "cf" if custom else "sf"
    node = {"type": "profile", key: name, "op": "isequalto", "v": value}
    return json.dumps({"op": "&", "c": [node]})


def build(url: str, home: Path, users: int) -> World:
    """Through the functions the CLI's imports and ``instance add`` call, in this process (a
    subprocess per command would take minutes on a loaded machine)."""
    from enrolkit import catalog, cohorts, lookup, people
    from enrolkit.enrolments import add_instance
    from enrolkit.plugins import Plugins
    from enrolkit.runtime import Runtime

    rng = random.Random(18)
    names = [f"user{n:05d}" for n in range(users)]
    world = World(names, [], [], [], [], {})
    files = {name: home / f"{name}.csv" for name in ("users", "courses", "cohorts")}
    with files["users"].open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["username", "email", "firstname", "lastname", "department",
                         "profile_field_campus"])  # fmt: skip
        for n, name in enumerate(names):
            writer.writerow([name, f"{name}@example.org", "U", str(n),
                             DEPARTMENTS[n % 10], CAMPUSES[n % 3]])  # fmt: skip
    with files["courses"].open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["shortname", "fullname", "category"])
        for kind, count in (("LOGIN", 24), ("VIEW", 10), ("CONFIRM", 10), ("COHORT", 10)):
            for n in range(count):
                writer.writerow([f"{kind}{n}", f"{kind.title()} course {n}", "Bench"])
                getattr(world, f"{kind.lower()}_courses").append(f"{kind}{n}")
    with files["cohorts"].open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["idnumber", "name"])
        for idnumber in COHORTS:
            writer.writerow([idnumber, idnumber.title()])
    plugins = Plugins()
    plugins.load_all()
    runtime = Runtime(url, plugins)
    with runtime.site() as site:
        for imported in (people.import_users, catalog.import_courses, cohorts.import_cohorts):
            imported(site, files[imported.__name__.removeprefix("import_")], strict=True)
        for idnumber in COHORTS:
            chosen = rng.sample(names, 100)
            world.members[idnumber] = set(chosen)
            found = [lookup.user(site.session, name) for name in chosen]
            cohorts.add_members(site, lookup.cohort(site.session, idnumber), found)
        with site.atomic():
            site.set_method_enabled("autoenrol", True)
            site.set_method_enabled("cohort", True)
        instances: list[tuple[str, str, dict[str, str]]] = []
        for n, course in enumerate(world.login_courses):
            chosen = (
                rule(department=DEPARTMENTS[n % 10]) if n < 12 else rule(campus=CAMPUSES[n % 3])
            )
            instances.append((course, "autoenrol", {"mode": "login", "rule": chosen}))
        for n, course in enumerate(world.view_courses):
            chosen = rule(department=DEPARTMENTS[n % 10])
            instances.append((course, "autoenrol", {"mode": "view", "rule": chosen}))
        for course in world.confirm_courses:
            instances.append((course, "autoenrol", {"mode": "confirm"}))
        for n, course in enumerate(world.cohort_courses):
            instances.append((course, "cohort", {"cohort": COHORTS[n % 5]}))
        for course, method, settings in instances:
            add_instance(site, lookup.course(site.session, course), method, settings)
    runtime.dispose()
    return world


# --- the traffic -------------------------------------------------------------------------------


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, endpoint: str, status: int, seconds: float, body: bytes) -> None:
        with self.lock:
            self.latencies[endpoint].append(seconds)
            self.statuses[(endpoint, status)] += 1
            if status >= 400 and len(self.failures) < 20:
                self.failures.append(f"{endpoint} {status}: {body[:300].decode(errors='replace')}")


class Client:
    """One simulated LMS worker: a keep-alive connection to each node, requests at random."""

    def __init__(self, ports: list[int], token: str, world: World, results: Results, seed: int):
        self.ports = ports
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.world = world
        self.results = results
        self.rng = random.Random(seed)
        self.connections: dict[int, http.client.HTTPConnection] = {}

    def send(self, endpoint: str, method: str, path: str, body: dict | None = None) -> dict:
        """One request; its JSON answer ({} when it failed)."""
        port = self.rng.choice(self.ports)
        data = json.dumps(body).encode() if body is not None else None
        started = time.perf_counter()
        try:
            conn = self.connections.get(port)
            if conn is None:
                conn = self.connections[port] = http.client.HTTPConnection(
                    "127.0.0.1", port, timeout=60
                )
            conn.request(method, f"/api/v1{path}", body=data, headers=self.headers)
            response = conn.getresponse()
            payload = response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            self.connections.pop(port, None)
            status, payload = 599, f"{type(exc).__name__}: {exc}".encode()
        self.results.add(endpoint, status, time.perf_counter() - started, payload)
        return json.loads(payload) if status == 200 and payload else {}

    def one(self) -> None:
        rng, world = self.rng, self.world
        user = rng.choice(world.users)
        kind = rng.choices([k for k, _ in MIX], weights=[w for _, w in MIX])[0]
        if kind == "login":
            self.send("login", "POST", "/events/login", {"username": user})
        elif kind == "course-view":
            course = rng.choice(world.view_courses + world.cohort_courses + world.login_courses)
            self.send("course-view", "POST", "/events/course-view",
                      {"username": user, "course": course})  # fmt: skip
        elif kind == "enrol-me":
            course = rng.choice(world.confirm_courses)
            self.send("enrol-me", "POST", "/events/enrol-me", {"username": user, "course": course})
        elif kind == "listing":
            if rng.random() < 0.5:
                course = rng.choice(world.login_courses + world.cohort_courses)
                self.send("listing", "GET", f"/courses/{course}/enrolments?page_size=50")
            else:
                self.send("listing", "GET", "/courses?page_size=50")
        else:
            # Adds mostly add (a random user is rarely a member); removes remove a member.
            cohort = rng.choice(COHORTS)
            members = world.members[cohort]
            if rng.random() < 0.5 or not members:
                answer = self.send("cohort-add", "POST", f"/cohorts/{cohort}/members",
                                   {"usernames": [user]})  # fmt: skip
            else:
                with world.lock:
                    user = rng.choice(sorted(members))
                answer = self.send("cohort-remove", "POST", f"/cohorts/{cohort}/members/remove",
                                   {"usernames": [user]})  # fmt: skip
            with world.lock:
                members.update(answer.get("added", ()))
                members.difference_update(answer.get("removed", ()))

    def run(self, until: float) -> None:
        while time.monotonic() < until:
            self.one()
        for conn in self.connections.values():
            conn.close()


@dataclass
class CronRuns:
    durations: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def cron_runner(env: dict[str, str], stop: threading.Event, runs: CronRuns) -> None:
    """``enrolkit cron --force`` every CRON_EVERY seconds (from the start of the previous run)."""
    while not stop.is_set():
        started = time.monotonic()
        done = subprocess.run(
            [ENROLKIT, "cron", "--force"], env=env, capture_output=True, text=True, check=False
        )
        runs.durations.append(time.monotonic() - started)
        if done.returncode:
            runs.failures.append(f"exit {done.returncode}: {done.stderr.strip()[-300:]}")
        stop.wait(max(0.0, CRON_EVERY - (time.monotonic() - started)))


def lock_sampler(url: str, stop: threading.Event, samples: list[tuple[int, int]]) -> None:
    """Every second: how many sessions run a statement, and how many of them wait for a lock
    (an instance's advisory lock, a row): what the database, not Python, makes requests wait."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.wait(1.0):
            samples.append(
                conn.execute(
                    "SELECT COUNT(*) FILTER (WHERE state = 'active'),"
                    " COUNT(*) FILTER (WHERE wait_event_type = 'Lock')"
                    " FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid()"
                ).fetchone()
            )


# --- the checks --------------------------------------------------------------------------------


def checks(url: str) -> list[tuple[str, int]]:
    """Each check's name and how many rows break it (0: it holds)."""
    from enrolkit.models import EnrolInstance, User
    from enrolkit.plugins import Plugins
    from enrolkit.rules import parse
    from enrolkit.runtime import Runtime
    from sqlalchemy import select, text

    plugins = Plugins()
    plugins.load_all()
    runtime = Runtime(url, plugins)
    found: list[tuple[str, int]] = []
    with runtime.site() as site:
        s = site.session

        def count(sql: str) -> int:
            return s.execute(text(sql)).scalar()

        found.append((
            "cohort instances equal cohort members",
            count("""
                SELECT COUNT(*) FROM (
                  SELECT ei.id, cm.user_id FROM enrol_instances ei
                  JOIN cohorts c ON c.idnumber = ei.settings ->> 'cohort'
                  JOIN cohort_members cm ON cm.cohort_id = c.id
                  WHERE ei.method = 'cohort' AND ei.enabled
                  EXCEPT
                  SELECT ue.instance_id, ue.user_id FROM user_enrolments ue WHERE ue.status = 0
                ) missing
            """)
            + count("""
                SELECT COUNT(*) FROM user_enrolments ue
                JOIN enrol_instances ei ON ei.id = ue.instance_id AND ei.method = 'cohort'
                WHERE ue.status = 0 AND NOT EXISTS (
                  SELECT 1 FROM cohorts c JOIN cohort_members cm ON cm.cohort_id = c.id
                  WHERE c.idnumber = ei.settings ->> 'cohort' AND cm.user_id = ue.user_id)
            """),
        ))  # fmt: skip
        found.append((
            "no method-owned role without its enrolment",
            count("""
                SELECT COUNT(*) FROM role_assignments ra WHERE ra.component <> ''
                AND NOT EXISTS (SELECT 1 FROM user_enrolments ue
                                WHERE ue.instance_id = ra.itemid AND ue.user_id = ra.user_id)
            """),
        ))  # fmt: skip
        wrong = 0
        for instance in s.scalars(select(EnrolInstance).where(EnrolInstance.method == "autoenrol")):
            tree = parse((instance.settings or {}).get("rule"), site.plugins.conditions)
            enrolled = text("SELECT user_id FROM user_enrolments WHERE instance_id = :i")
            matching = set(s.scalars(select(User.id).where(tree.sql(site))))
            wrong += len(set(s.scalars(enrolled, {"i": instance.id})) - matching)
        found.append(("every auto-enrolment matches its rule", wrong))
        found.append((
            "every enrolment and cohort membership logged",
            count("""
                SELECT COUNT(*) FROM user_enrolments ue WHERE NOT EXISTS (
                  SELECT 1 FROM log l WHERE l.event = 'user_enrolled'
                  AND l.instance_id = ue.instance_id AND l.user_id = ue.user_id)
            """)
            + count("""
                SELECT COUNT(*) FROM cohort_members cm JOIN cohorts c ON c.id = cm.cohort_id
                WHERE NOT EXISTS (SELECT 1 FROM log l WHERE l.event = 'cohort_member_added'
                  AND l.user_id = cm.user_id AND l.reason = 'cohort ' || c.idnumber)
            """),
        ))  # fmt: skip
        found.append((
            "no task lock held",
            count("SELECT COUNT(*) FROM scheduled_tasks WHERE lock_owner <> ''"
                  " AND lock_until > CAST(EXTRACT(EPOCH FROM now()) AS BIGINT)"),
        ))  # fmt: skip
    runtime.dispose()
    return found


# --- the report --------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000


def report(
    results: Results, seconds: float, cron: CronRuns, locks: list, load: tuple, found: list
) -> bool:
    total = sum(len(v) for v in results.latencies.values())
    everything = [x for values in results.latencies.values() for x in values]
    rate = total / seconds
    errors = sum(n for (_, status), n in results.statuses.items() if status >= 400)
    print(f"\n{total} requests in {seconds:.0f} s: {rate:.1f} requests/s, {errors} errors")
    print(f"{'endpoint':<14} {'count':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for endpoint in sorted(results.latencies):
        values = results.latencies[endpoint]
        print(f"{endpoint:<14} {len(values):>6} {percentile(values, 0.50):>8.0f}"
              f" {percentile(values, 0.95):>8.0f} {percentile(values, 0.99):>8.0f}")  # fmt: skip
    p95 = percentile(everything, 0.95) if everything else 0.0
    print(f"{'all':<14} {total:>6} {percentile(everything, 0.5):>8.0f} {p95:>8.0f}"
          f" {percentile(everything, 0.99):>8.0f}")  # fmt: skip
    codes = ", ".join(f"{e} {s}: {n}" for (e, s), n in sorted(results.statuses.items()))
    print(f"status codes: {codes}")
    for failure in results.failures:
        print(f"  failed: {failure}")
    if cron.durations:
        print(f"cron --force runs: {len(cron.durations)}, took "
              f"{min(cron.durations):.1f}-{max(cron.durations):.1f} s"
              f"{', failed: ' + '; '.join(cron.failures) if cron.failures else ''}")  # fmt: skip
    if locks:
        waiting = [w for _, w in locks]
        print(f"database sessions running a statement: {sum(a for a, _ in locks) / len(locks):.1f}"
              f" on average; waiting for a lock: {sum(waiting) / len(waiting):.1f} on average,"
              f" {max(waiting)} at most")  # fmt: skip
    print("load average (1, 5, 15 min) at the end: " + ", ".join(f"{x:.2f}" for x in load))
    print("checks:")
    for name, broken in found:
        print(
            f"  {'ok ' if not broken else 'NO '} {name}" + (f" ({broken} rows)" if broken else "")
        )
    aim = rate >= AIM_RPS and p95 <= AIM_P95_MS and not errors
    print(f"aim ({AIM_RPS} requests/s, p95 {AIM_P95_MS} ms, no error): "
          f"{'met' if aim else 'not met'}")  # fmt: skip
    return not errors and not cron.failures and not any(b for _, b in found)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180, help="how long to drive traffic")
    parser.add_argument("--clients", type=int, default=16, help="concurrent LMS workers")
    parser.add_argument(
        "--threads", type=int, help="waitress threads per node (default: enrolkit serve's)"
    )
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--keep", action="store_true", help="keep the cluster and home")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_load_"))
    # Beside the home, not in it: the server may run as another user (postgres, under root).
    cluster = Path(tempfile.gettempdir()) / f"{work.name}_pg"
    print(f"PostgreSQL cluster and home under {work}")
    nodes: list[subprocess.Popen] = []
    try:
        url = start_postgres(cluster)
        env = make_home(work / "home", url)
        enrolkit(env, "db", "upgrade")
        started = time.monotonic()
        world = build(url, work / "home", args.users)
        token = enrolkit(env, "token", "create", "bench", "--scope", "write").strip()
        print(f"site built in {time.monotonic() - started:.0f} s: {len(world.users)} users")
        ports = [free_port(), free_port()]
        for n, port in enumerate(ports):
            nodes.append(start_node(env, port, args.threads, work / f"node{n}.log"))
        for node, port in zip(nodes, ports, strict=True):
            wait_ready(port, token, node)
        threads = args.threads or "serve's default"
        print(f"nodes on ports {ports} ({threads} threads each), {args.clients} clients, "
              f"cron --force every {CRON_EVERY} s, for {args.seconds:.0f} s")  # fmt: skip

        results, cron, stop = Results(), CronRuns(), threading.Event()
        runner = threading.Thread(target=cron_runner, args=(env, stop, cron))
        runner.start()
        locks: list[tuple[int, int]] = []
        sampler = threading.Thread(
            target=lock_sampler, args=(url.replace("+psycopg", ""), stop, locks)
        )
        sampler.start()
        until = time.monotonic() + args.seconds
        began = time.monotonic()
        clients = [
            threading.Thread(target=Client(ports, token, world, results, seed).run, args=(until,))
            for seed in range(args.clients)
        ]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
        elapsed = time.monotonic() - began
        stop.set()
        runner.join()
        sampler.join()
        load = os.getloadavg()
        for node in nodes:
            node.send_signal(signal.SIGTERM)
        for node in nodes:
            node.wait(timeout=30)
        ok = report(results, elapsed, cron, locks, load, checks(url))
        return 0 if ok else 1
    finally:
        for node in nodes:
            if node.poll() is None:
                node.kill()
        if args.keep:
            print(f"kept: {work} and the cluster in {cluster}")
        else:
            stop_postgres(cluster)


if __name__ == "__main__":
    sys.exit(main())
