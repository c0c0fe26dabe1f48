"""Issue 18 item 4: a first login lost with a killed node is caught up. ``enrolkit user login``
is killed (SIGKILL) in the middle of the login's enrolment work; the login itself was committed
first, so the hourly auto-enrol task, which enrols matching users who have logged in, enrols the
user on its next run, on any node."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from enrolkit.models import LogEntry, User, UserEnrolment
from enrolkit.testing import SiteFactory
from sqlalchemy import select

ENROLKIT = str(Path(sys.executable).with_name("enrolkit"))
MARKETING = json.dumps(
    {"op": "&", "c": [{"type": "profile", "sf": "department", "op": "isequalto", "v": "Marketing"}]}
)


def test_a_first_login_killed_mid_enrolment_is_caught_up_by_the_hourly_task(
    any_db, make_runtime, tmp_path, ektest_tasks_path
):
    runtime = make_runtime(url=any_db, entry_points=True)
    with runtime.site() as site, site.atomic():
        f = SiteFactory(site)
        site.set_method_enabled("autoenrol", True)
        ann = f.user("ann", department="Marketing")  # never logged in
        instance = f.instance(f.course("MKT"), "autoenrol", mode="login", rule=MARKETING)
        ann_id, instance_id = ann.id, instance.id
    record, release = tmp_path / "record.txt", tmp_path / "release"
    record.touch()
    env = {
        **os.environ,
        "ENROLKIT_DATABASE_URL": any_db,
        "ENROLKIT_HOME": str(tmp_path / "home"),
        "PYTHONPATH": os.pathsep.join(
            filter(None, [ektest_tasks_path, os.environ.get("PYTHONPATH")])
        ),
        "EKTEST_TASKS_LOG": str(record),
        "EKTEST_TASKS_RELEASE": str(release),
        "EKTEST_TASKS_WAIT": "300",
    }
    env.pop("ENROLKIT_NOW", None)

    login = subprocess.Popen(
        [ENROLKIT, "user", "login", "ann"],
        env={**env, "EKTEST_LOGIN_HOLD": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while "login-hold" not in record.read_text():
            assert login.poll() is None, login.communicate()
            assert time.monotonic() < deadline, "the login never reached on_login"
            time.sleep(0.05)
    finally:
        login.send_signal(signal.SIGKILL)
        login.communicate()

    with runtime.site() as site:
        assert site.session.get(User, ann_id).lastlogin > 0  # the login was kept
        assert site.session.scalars(select(UserEnrolment.id)).all() == []  # its work was not

    release.touch()  # ektest's own slow task, run by cron --force too, ends at once
    caught_up = subprocess.run(
        [ENROLKIT, "cron", "--force"], env=env, capture_output=True, text=True, timeout=300
    )
    assert caught_up.returncode == 0, caught_up.stderr
    assert "autoenrol_enrolments: ok" in caught_up.stdout
    with runtime.site() as site:
        enrolled = site.session.scalars(
            select(UserEnrolment.user_id).where(UserEnrolment.instance_id == instance_id)
        ).all()
        origins = site.session.scalars(
            select(LogEntry.origin).where(
                LogEntry.event == "user_enrolled", LogEntry.user_id == ann_id
            )
        ).all()
    assert enrolled == [ann_id]
    assert origins == ["cron"]
