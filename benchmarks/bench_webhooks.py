"""What queueing webhook events costs a big cohort sync.

    .venv/bin/python benchmarks/bench_webhooks.py [--url URL] [--members N]

A cohort of N members is added to a course (``instance add C cohort cohort=X``: N enrolments,
N role assignments, their log rows), once on a site with no webhook and once, in a second
database, with one subscription to every event, whose 2N events then sit in the outbox. Aim
(issue 14): the second at most 1.5x the first. Then the time to build and sign the batches is
not measured (delivery runs apart from the sync). Besides the wall-clock time, the CPU time of
this process is shown: on a shared machine it is the steadier figure (on SQLite it is all the
work; on PostgreSQL the server's share is not in it).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench_sync import _database, _runtime, _timed, _users
from enrolkit import webhooks
from enrolkit.enrolments import add_instance
from enrolkit.models import Cohort, CohortMember, Course, WebhookEvent
from sqlalchemy import func, insert, select

NOW = 1_790_000_000


def sync(url: str, members: int, subscribe: bool) -> float:
    runtime = _runtime(url)
    try:
        with runtime.site() as site:
            user_ids = _users(site, members)
            cohort = Cohort(idnumber="everyone", name="Everyone")
            course = Course(shortname="C", fullname="C", timecreated=NOW)
            site.session.add_all([cohort, course])
            site.session.flush()
            site.session.execute(
                insert(CohortMember), [{"cohort_id": cohort.id, "user_id": u} for u in user_ids]
            )
            site.set_method_enabled("cohort", True)
            site.session.commit()
            if subscribe:
                os.environ[webhooks.ALLOW_ENV] = "127.0.0.0/8"
                webhooks.add(site, "http://127.0.0.1:9/hook", webhooks.EVENTS)
            cpu = time.process_time()
            seconds, _ = _timed(
                lambda: add_instance(site, course, "cohort", {"cohort": "everyone"})
            )
            cpu = time.process_time() - cpu
            queued = site.session.scalar(select(func.count()).select_from(WebhookEvent))
        print(
            f"  {'with' if subscribe else 'without'} a webhook: {seconds:.2f} s, "
            f"{cpu:.2f} s of this process's CPU ({queued} events queued)"
        )
        return seconds, cpu
    finally:
        runtime.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--members", type=int, default=100_000)
    args = parser.parse_args()
    print(
        f"cohort of {args.members} members added to a course ({args.url or 'sqlite'}), "
        f"load average {os.getloadavg()[0]:.2f}:"
    )
    with tempfile.TemporaryDirectory() as folder:
        times = []
        for name, subscribe in (("plain", False), ("hooked", True)):
            url, cleanup = _database(args.url, Path(folder), name)
            try:
                times.append(sync(url, args.members, subscribe))
            finally:
                cleanup()
    (wall, cpu), (hooked_wall, hooked_cpu) = times
    print(f"  ratio: {hooked_wall / wall:.2f}x (aim: at most 1.5x); on this process's CPU "
          f"{hooked_cpu / cpu:.2f}x; load average at the end {os.getloadavg()[0]:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
