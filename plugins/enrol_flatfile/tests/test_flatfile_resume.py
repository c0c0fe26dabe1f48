"""Exactly once: a run killed anywhere is finished by the next, every line applied once.

The real thing: ``enrolkit flatfile process`` killed with SIGKILL while reading and while
applying a 20,000-line file, then run again. And the last gap, between the commit that marks
a file done and its rename, made by a rename that fails once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from enrol_flatfile.models import FlatfileFile, FlatfileLine
from enrolkit.models import Course, LogEntry, MailMessage, User, UserEnrolment
from sqlalchemy import create_engine, func, insert, select, text

ENROLKIT = str(Path(sys.executable).with_name("enrolkit"))
HEADER = "operation,username,course,role,timestart,timeend\n"
USERS, COURSES = 1000, 20


def test_a_file_applied_but_not_renamed_is_only_renamed_next_time(drop, monkeypatch):
    from enrol_flatfile import processor

    site = drop.site
    site.user("ann"), site.course("MATH101")
    site.user("root", siteadmin=True)
    drop.write("enrol.csv", HEADER + "add,ann,MATH101,student,,\nadd,zed,MATH101,student,,\n")
    real_rename = os.rename

    def crash(src, dst):
        raise OSError("the machine went down")

    monkeypatch.setattr(processor.os, "rename", crash)
    with pytest.raises(OSError):
        drop.process()
    assert drop.files() == ["enrol.csv", "enrol.csv.errors.csv"]
    monkeypatch.setattr(processor.os, "rename", real_rename)

    [result] = drop.process()

    assert drop.files() == ["enrol.csv.done", "enrol.csv.errors.csv"]
    assert result.counts["enrolled"] == 1 and result.counts["rejected"] == 1
    assert result.errors == [
        {"line": 3, "reason": "unknown user 'zed'", "text": "add,zed,MATH101,student,,"}
    ]
    assert len(drop.events("user_enrolled")) == 1
    assert len(drop.events("flatfile_processed")) == 1
    assert site.session.query(MailMessage).count() == 1


@pytest.fixture
def big(any_db, make_runtime, tmp_path, clock):
    """A site (SQLite or PostgreSQL) with 1,000 users and 20 courses, the method enabled with
    500 lines per transaction, and a 20,000-line file: every user in every course."""
    runtime = make_runtime(url=any_db, entry_points=True)
    with runtime.site() as site, site.atomic():
        site.session.execute(insert(User), [{"username": f"u{i}"} for i in range(USERS)])
        site.session.execute(insert(Course), [{"shortname": f"C{c}"} for c in range(COURSES)])
        site.set_method_enabled("flatfile", True)
        site.set_method_settings("flatfile", {"chunk_size": "500"})
    folder = tmp_path / "home" / "flatfile"
    folder.mkdir(parents=True)
    lines = (f"add,u{i},C{c},student,,\n" for i in range(USERS) for c in range(COURSES))
    (folder / "enrol.csv").write_text(HEADER + "".join(lines))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENROLKIT_")}
    env.update(
        ENROLKIT_DATABASE_URL=any_db,
        ENROLKIT_HOME=str(tmp_path / "home"),
        ENROLKIT_NOW=str(clock.now()),
    )
    engine = create_engine(any_db.replace("postgresql://", "postgresql+psycopg://", 1))
    yield folder, env, engine
    engine.dispose()


def _scalar(engine, statement):
    with engine.connect() as conn:
        return conn.execute(statement).scalar()


@pytest.mark.parametrize("phase", ["reading", "applying"])
def test_sigkill_mid_file_then_a_rerun_applies_every_line_exactly_once(big, phase):
    folder, env, engine = big
    if phase == "reading":  # some chunks staged, none applied yet
        started = select(func.count()).select_from(FlatfileLine)
    else:  # some courses applied
        started = select(func.count()).select_from(UserEnrolment)
    proc = subprocess.Popen(
        [ENROLKIT, "flatfile", "process"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not _scalar(engine, started):
        assert proc.poll() is None, f"the run ended before it was killed: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "nothing was committed"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    enrolled = _scalar(engine, select(func.count()).select_from(UserEnrolment))
    assert enrolled < USERS * COURSES and (folder / "enrol.csv").exists()
    status = _scalar(engine, select(FlatfileFile.status))
    assert status == phase

    again = subprocess.run(
        [ENROLKIT, "flatfile", "process"], env=env, capture_output=True, text=True, timeout=300
    )

    assert again.returncode == 0, again.stderr
    assert "enrol.csv: 20000 line(s), 20000 applied" in again.stdout
    assert sorted(p.name for p in folder.iterdir()) == ["enrol.csv.done"]
    assert _scalar(engine, select(func.count()).select_from(UserEnrolment)) == USERS * COURSES
    per_pair = (
        select(LogEntry.user_id, LogEntry.course_id, func.count().label("n"))
        .where(LogEntry.event == "user_enrolled", LogEntry.component == "enrol_flatfile")
        .group_by(LogEntry.user_id, LogEntry.course_id)
        .subquery()
    )
    with engine.connect() as conn:
        counts = dict(conn.execute(select(per_pair.c.n, func.count()).group_by(per_pair.c.n)).all())
        assert counts == {1: USERS * COURSES}  # each line's enrolment logged exactly once
        roles = conn.execute(text("SELECT COUNT(*) FROM role_assignments")).scalar()
        assert roles == USERS * COURSES
        assert conn.execute(select(FlatfileFile.status, FlatfileFile.counts)).one() == (
            "finished",
            {
                "lines": 20000,
                "accepted": 20000,
                "rejected": 0,
                "scheduled": 0,
                "enrolled": 20000,
                "updated": 0,
                "suspended": 0,
                "unenrolled": 0,
                "roles_added": 20000,
                "roles_removed": 0,
            },
        )
        assert conn.execute(select(func.count()).select_from(FlatfileLine)).scalar() == 0


def test_two_runs_at_once_take_turns_and_apply_every_line_once(big):
    folder, env, engine = big
    users = 200  # 4,000 lines: 8 chunks to read, 8 to apply, for two runs to share
    lines = (f"add,u{i},C{c},student,,\n" for i in range(users) for c in range(COURSES))
    (folder / "enrol.csv").write_text(HEADER + "".join(lines))
    runs = [
        subprocess.Popen(
            [ENROLKIT, "flatfile", "process"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert sorted(p.name for p in folder.iterdir()) == ["enrol.csv.done"]
    with engine.connect() as conn:
        logged = conn.execute(
            select(func.count()).where(
                LogEntry.event == "user_enrolled", LogEntry.component == "enrol_flatfile"
            )
        ).scalar()
        assert logged == users * COURSES
        assert conn.execute(select(FlatfileFile.counts)).scalar()["enrolled"] == users * COURSES
