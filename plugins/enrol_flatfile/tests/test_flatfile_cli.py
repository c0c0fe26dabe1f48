"""``enrolkit flatfile process``: in-process through the ``cli`` fixture, and as the real command
(the ``register_commands`` hook, the progress bar on a terminal)."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

ENROLKIT = str(Path(sys.executable).with_name("enrolkit"))
HEADER = "operation,username,course,role,timestart,timeend\n"


@pytest.fixture
def people(site, home, clock):
    site.user("ann"), site.user("bob"), site.course("MATH101")
    site.session.commit()
    return home / "flatfile"


def test_process_prints_a_summary_and_the_rejected_lines(cli, people):
    assert cli("method", "enable", "flatfile").exit_code == 0
    (people / "enrol.csv").write_text(
        HEADER + "add,ann,MATH101,student,,\nadd,cy,MATH101,student,,\n"
    )
    result = cli("flatfile", "process")
    assert result.exit_code == 2, result.output  # lines were rejected, as `user import` says
    assert result.output == (
        "enrol.csv: 2 line(s), 1 applied, 0 scheduled, 1 rejected; enrolled 1, updated 0, "
        "suspended 0, unenrolled 0, roles added 1, removed 0 -> enrol.csv.done\n"
        "  line 3: unknown user 'cy'\n"
        f"  rejected lines: {people / 'enrol.csv.errors.csv'}\n"
    )
    assert cli("flatfile", "process").output == f"no file to apply in {people}\n"


def test_process_json_prints_the_counts_and_the_errors(cli, people):
    cli("method", "enable", "flatfile")
    (people / "a.csv").write_text(HEADER + "add,ann,MATH101,student,,\nadd,cy,MATH101,student,,\n")
    (people / "b.csv").write_text(HEADER + "add,bob,MATH101,student,,\n")
    result = cli("flatfile", "process", "--json")
    assert result.exit_code == 2, result.output  # a.csv had a rejected line
    first, second = json.loads(result.output)
    assert first["file"] == "a.csv" and second["file"] == "b.csv"
    assert first["counts"] == {
        "lines": 2,
        "accepted": 1,
        "rejected": 1,
        "scheduled": 0,
        "enrolled": 1,
        "updated": 0,
        "suspended": 0,
        "unenrolled": 0,
        "roles_added": 1,
        "roles_removed": 0,
    }
    assert first["errors"] == [
        {"line": 3, "reason": "unknown user 'cy'", "text": "add,cy,MATH101,student,,"}
    ]
    assert first["renamed_to"] == str(people / "a.csv.done")
    assert first["errors_file"] == str(people / "a.csv.errors.csv")
    assert second["errors"] == [] and second["errors_file"] is None


def test_dry_run_of_one_file_lists_the_changes_and_changes_nothing(cli, people, tmp_path):
    path = people / "try.csv"
    path.write_text(HEADER + "add,ann,MATH101,student,,\nadd,bob,MATH101,teacher,2027-01-01,\n")
    result = cli("flatfile", "process", str(path), "--dry-run")  # works on a disabled method
    assert result.exit_code == 0, result.output
    assert result.output == (
        "try.csv: 2 line(s), 1 would be applied, 1 would be scheduled, 0 rejected; enrolled 1, "
        "updated 0, suspended 0, unenrolled 0, roles added 1, removed 0\n"
        "  MATH101: enrolled 1 (ann); scheduled 1\n"
    )
    assert path.exists()
    assert json.loads(cli("enrolment", "list", "MATH101", "--json").output) == []


def test_errors_are_one_line_on_stderr(cli, people, tmp_path):
    (people / "enrol.csv").write_text(HEADER)
    disabled = cli("flatfile", "process")
    assert disabled.exit_code == 1
    assert disabled.output == (
        "enrolkit: error: flat-file enrolment is disabled on this site; "
        "enable it: enrolkit method enable flatfile\n"
    )
    cli("method", "enable", "flatfile")
    missing = cli("flatfile", "process", str(people / "nope.csv"))
    assert (missing.exit_code, missing.output) == (
        1,
        f"enrolkit: error: {people / 'nope.csv'}: no such file\n",
    )
    (people / "bad.csv").write_text("operation,who\n")
    bad = cli("flatfile", "process")
    assert bad.exit_code == 1
    assert bad.output.startswith("enrolkit: error: bad.csv:1: unknown column(s) 'who'")


# --- the real command ---------------------------------------------------------------------------


@pytest.fixture
def real(make_runtime, tmp_path, clock):
    """A site on a SQLite file, with the method enabled, for ``enrolkit`` subprocesses."""
    url = f"sqlite:///{tmp_path / 'real.db'}"
    runtime = make_runtime(url=url, entry_points=True)
    with runtime.site() as site, site.atomic():
        site.set_method_enabled("flatfile", True)
    folder = tmp_path / "home" / "flatfile"
    folder.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENROLKIT_")}
    env.update(
        ENROLKIT_DATABASE_URL=url,
        ENROLKIT_HOME=str(tmp_path / "home"),
        ENROLKIT_NOW=str(clock.now()),
    )
    return folder, env


def test_hook_register_commands_adds_the_flatfile_group_to_enrolkit(real):
    _, env = real
    shown = subprocess.run([ENROLKIT, "--help"], env=env, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert "flatfile    Flat-file enrolment" in shown.stdout
    ran = subprocess.run(
        [ENROLKIT, "flatfile", "process", "--json"], env=env, capture_output=True, text=True
    )
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, "[]\n", "")
    blocked = subprocess.run(
        [ENROLKIT, "--help"],
        env={**env, "ENROLKIT_DISABLE_PLUGINS": "flatfile"},
        capture_output=True,
        text=True,
    )
    assert blocked.returncode == 0 and "flatfile" not in blocked.stdout


def test_a_large_file_shows_a_progress_bar_on_a_terminal(real):
    folder, env = real
    # 12,000 lines for unknown users: quick to apply, and over the progress bar's 256 KiB.
    lines = "".join(f"add,user{i:06d},SOMECOURSE,student,,\n" for i in range(12_000))
    (folder / "big.csv").write_text(HEADER + lines)
    main, secondary = pty.openpty()
    proc = subprocess.Popen(
        [ENROLKIT, "flatfile", "process"], env=env, stdout=secondary, stderr=secondary
    )
    os.close(secondary)
    screen = _read_until_exit(main, proc)
    assert proc.returncode == 2, screen  # every line was rejected
    assert "reading big.csv" in screen and "100%" in screen
    assert "big.csv: 12000 line(s), 0 applied, 0 scheduled, 12000 rejected" in screen


def _read_until_exit(fd: int, proc: subprocess.Popen, timeout: float = 60) -> str:
    chunks, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # the terminal closed: the process has exited
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.wait(timeout=10)
    os.close(fd)
    return b"".join(chunks).decode("utf-8", "replace")
