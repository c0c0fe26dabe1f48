"""Two tasks that record each run in the file named by ``EKTEST_TASKS_LOG``.

``ektest_slow`` records its start, then waits until the file ``EKTEST_TASKS_RELEASE`` exists (at
most ``EKTEST_TASKS_WAIT`` seconds, 30 by default), then records its end: a test holds it running for as long as it needs.
``ektest_quick`` records one line.
With ``EKTEST_LOGIN_HOLD`` set, a login's ``on_login`` records ``login-hold`` and waits the same
way: a test kills the process in the middle of the login's enrolment work.
"""

import os
import time
from pathlib import Path

from enrolkit import hookimpl


def _record(event: str) -> None:
    with open(os.environ["EKTEST_TASKS_LOG"], "a") as out:
        out.write(f"{event} {os.getpid()} {time.time():.3f}\n")


def _wait_for_release() -> bool:
    release = Path(os.environ["EKTEST_TASKS_RELEASE"])
    deadline = time.monotonic() + float(os.environ.get("EKTEST_TASKS_WAIT", "30"))
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return release.exists()


def slow(site):
    _record("slow-start")
    released = _wait_for_release()
    _record("slow-end")
    return "released" if released else "gave up waiting"


def quick(site):
    _record("quick")


@hookimpl
def register_tasks(register):
    register("ektest_slow", slow, schedule="0 3 * * *", component="ektest_tasks")
    register("ektest_quick", quick, schedule="0 3 * * *", component="ektest_tasks")


@hookimpl
def on_login(site, user):
    if os.environ.get("EKTEST_LOGIN_HOLD"):
        _record("login-hold")
        _wait_for_release()
