"""Rule evaluation at scale: one SQL query for a whole site against per-user Python checks.

Generates 100,000 users with custom profile data, badges, completions and cohorts, then evaluates
a five-condition rule both ways. Python is timed on a random sample of users (the per-user path
that a login takes) and extrapolated to the whole site; the output says so. Runs on SQLite, and
also on PostgreSQL when ENROLKIT_TEST_POSTGRES_URL is set.

    .venv/bin/python benchmarks/bench_rules.py [--users N] [--sample N] [--quick]

``--quick``: 5,000 users, a sample of 500.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from _results import record
from _support import fresh_database, servers
from enrolkit import rules
from enrolkit.models import (
    Badge,
    BadgeAward,
    Base,
    Cohort,
    CohortMember,
    Course,
    CourseCompletion,
    ProfileData,
    ProfileField,
    User,
)
from enrolkit.plugins import Plugins
from enrolkit.runtime import Runtime
from sqlalchemy import insert, select

CHUNK = 10_000
DEPARTMENTS = ("Sales", "IT", "HR", "Finance", "Research")
CAMPUSES = ("North", "Northeast", "South", "West", "East")
LANGS = ("en", "en", "en", "fr", "de")
BADGES = 20
COURSES = 50
COHORTS = 10

#: Five conditions: a custom field, a badge or a completion, a standard field, the language.
#: Python stops at the first failing condition, so the order matters to it (not to SQL): the
#: custom field comes first, as it often does in real filters ("campus starts with North").
RULE = {
    "op": "&",
    "showc": [True, True, True, True],
    "c": [
        {"type": "profile", "cf": "campus", "op": "startswith", "v": "North"},
        {
            "op": "|",
            "c": [{"type": "badge", "id": "badge3"}, {"type": "completion", "course": "c7"}],
        },
        {"type": "profile", "sf": "department", "op": "isequalto", "v": "Sales"},
        {"type": "language", "id": "en"},
    ],
}


def populate(runtime: Runtime, users: int, seed: int = 42) -> float:
    """Bulk-insert the site; return the seconds it took."""
    rnd = random.Random(seed)
    started = time.perf_counter()
    with runtime.db.begin() as conn:
        conn.execute(insert(ProfileField), [{"shortname": "campus"}, {"shortname": "level"}])
        conn.execute(insert(Badge), [{"name": f"badge{i}"} for i in range(BADGES)])
        conn.execute(insert(Course), [{"shortname": f"c{i}"} for i in range(COURSES)])
        conn.execute(
            insert(Cohort), [{"idnumber": f"h{i}", "name": f"h{i}"} for i in range(COHORTS)]
        )
        fields = dict(conn.execute(select(ProfileField.shortname, ProfileField.id)).all())
        badges = list(conn.scalars(select(Badge.id)))
        courses = list(conn.scalars(select(Course.id)))
        cohorts = list(conn.scalars(select(Cohort.id)))
        for first in range(1, users + 1, CHUNK):
            ids = range(first, min(first + CHUNK, users + 1))
            conn.execute(
                insert(User),
                [
                    {
                        "id": i,
                        "username": f"user{i}",
                        "email": f"user{i}@example.org",
                        "department": rnd.choice(DEPARTMENTS),
                        "lang": rnd.choice(LANGS),
                    }
                    for i in ids
                ],
            )
            profile = [
                {"user_id": i, "field_id": fields["campus"], "value": rnd.choice(CAMPUSES)}
                for i in ids
                if rnd.random() < 0.9
            ]
            profile += [
                {"user_id": i, "field_id": fields["level"], "value": str(rnd.randint(1, 5))}
                for i in ids
            ]
            conn.execute(insert(ProfileData), profile)
            conn.execute(
                insert(BadgeAward),
                [
                    {"user_id": i, "badge_id": badge}
                    for i in ids
                    for badge in rnd.sample(badges, rnd.randint(0, 3))
                ],
            )
            conn.execute(
                insert(CourseCompletion),
                [
                    {"user_id": i, "course_id": course, "timecompleted": rnd.choice((0, 1))}
                    for i in ids
                    for course in rnd.sample(courses, rnd.randint(0, 4))
                ],
            )
            conn.execute(
                insert(CohortMember),
                [{"user_id": i, "cohort_id": rnd.choice(cohorts)} for i in ids],
            )
        # Fresh tables have no planner statistics; a live site's would.
        conn.exec_driver_sql("ANALYZE")
    return time.perf_counter() - started


def measure(url: str, users: int, sample: int) -> None:
    runtime = Runtime(url, Plugins(entry_points=False))
    Base.metadata.create_all(runtime.db)
    backend = runtime.db.dialect.name
    print(f"== {backend}: generating {users:,} users ...", flush=True)
    seconds = populate(runtime, users)
    print(f"   bulk insert of the site: {seconds:.1f} s")
    with runtime.site() as site:
        rule = rules.parse(RULE, site.plugins.conditions)

        sql_times = []
        for _ in range(3):
            started = time.perf_counter()
            matched = set(site.session.scalars(select(User.id).where(rule.sql(site))))
            sql_times.append(time.perf_counter() - started)
        sql_seconds = min(sql_times)

        ids = random.Random(7).sample(range(1, users + 1), min(sample, users))
        people = site.session.scalars(select(User).where(User.id.in_(ids))).all()
        started = time.perf_counter()
        python_matched = {user.id for user in people if rule.matches(site, user)}
        python_seconds = time.perf_counter() - started
        if python_matched != matched & set(ids):
            raise SystemExit("Python and SQL disagree on the sample: a bug in a condition type")

    per_user = python_seconds / len(people)
    python_site = per_user * users
    print(f"   rule: {len(matched):,} of {users:,} users match (five conditions)")
    print(f"   SQL, one query for the whole site:   {sql_seconds:8.3f} s (best of 3)")
    print(
        f"   Python, per user, on {len(people):,} users:  {python_seconds:8.3f} s "
        f"({per_user * 1e3:.3f} ms/user)"
    )
    print(
        f"   Python, whole site (extrapolated from the sample): {python_site:8.1f} s  "
        f"-> SQL is {python_site / sql_seconds:,.0f}x faster"
    )
    runtime.dispose()
    figure = f"five-condition rule over {users:,} users, one SQL query"
    record("bench_rules", figure, backend, sql_seconds * 1e3, "ms")
    record("bench_rules", "five-condition rule, Python, per user", backend, per_user * 1e3, "ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=5_000)
    parser.add_argument("--quick", action="store_true", help="5,000 users, a sample of 500")
    args = parser.parse_args()
    if args.quick:
        args.users, args.sample = 5_000, 500
    for server in servers(None):
        with tempfile.TemporaryDirectory() as tmp, fresh_database(server, Path(tmp)) as url:
            measure(url, args.users, args.sample)


if __name__ == "__main__":
    main()
