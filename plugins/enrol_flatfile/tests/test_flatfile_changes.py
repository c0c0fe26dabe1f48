"""A file that changes under a run (issue 12, reliability): what a user gets.

* Changed while it is read: nothing of it is applied; it stays under its name for the next run.
* Changed once read (replaced or rewritten while its lines are applied, or after a run was
  killed): every line that was read is applied, once; the file now under the name is left in
  place, not renamed, and applied as a new file.

Both are said in the run's result (text and JSON), the log and the admins' mail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from enrol_flatfile.models import FlatfileFile
from enrol_flatfile.processor import APPLIED, APPLIED_CHANGED, NOT_APPLIED, process
from enrolkit.models import LogEntry, MailMessage
from sqlalchemy import select

HEADER = "operation,username,course,role,timestart,timeend\n"
ENROLKIT = str(Path(sys.executable).with_name("enrolkit"))


class Killed(BaseException):
    """Stands for a SIGKILL between two committed transactions."""


def _lines(names) -> str:
    return HEADER + "".join(f"add,{name},MATH101,student,,\n" for name in names)


def _setup(drop, chunk_size: int = 2):
    site = drop.site
    site.user("admin", siteadmin=True)
    users = {name: site.user(name) for name in ("u1", "u2", "u3", "u4", "u5", "u6", "v1", "v2")}
    course = site.course("MATH101")
    with site.atomic():
        site.set_method_settings("flatfile", {"chunk_size": str(chunk_size)})
    return users, course


def _replace(path, text: str) -> None:
    """Another program writes a new version, as editors and uploaders do: new file, renamed."""
    partial = path.with_name(f".{path.name}.new")
    partial.write_text(text)
    os.replace(partial, path)


def _on(step: str, action):
    """A progress callback that runs ``action`` once, after the first chunk of ``step``."""
    fired = []

    @contextmanager
    def progress(label, total, size):
        def advance(n):
            if label.startswith(step) and not fired:
                fired.append(True)
                action()

        yield advance

    return progress


def _enrolled(drop, users, course) -> list[str]:
    return sorted(name for name, user in users.items() if drop.enrolment(user, course))


def _statuses(drop) -> list[str]:
    drop.site.session.expire_all()
    return list(drop.site.session.scalars(select(FlatfileFile.status).order_by(FlatfileFile.id)))


def _mails(drop) -> list[MailMessage]:
    return list(drop.site.session.scalars(select(MailMessage).order_by(MailMessage.id)))


def test_a_file_written_to_while_it_is_read_is_not_applied_and_stays(db_drop):
    users, course = _setup(db_drop)
    path = db_drop.write("enrol.csv", _lines(["u1", "u2", "u3", "u4", "u5"]))

    def append():
        with path.open("a") as handle:
            handle.write("add,u6,MATH101,student,,\n")

    [result] = list(process(db_drop.site, progress=_on("reading", append)))

    assert result.outcome == NOT_APPLIED
    assert result.note.startswith("enrol.csv changed while it was being read: nothing of it")
    assert result.as_json()["outcome"] == "not_applied" and result.renamed_to is None
    assert _enrolled(db_drop, users, course) == []
    assert db_drop.files() == ["enrol.csv"] and _statuses(db_drop) == ["abandoned"]
    [mail] = _mails(db_drop)
    assert mail.subject == "Flat-file enrolment: enrol.csv was not applied"
    assert "changed while it was being read" in mail.body

    [again] = db_drop.process()  # the writer has finished: the whole file applies
    assert again.outcome == APPLIED and again.counts["enrolled"] == 6
    assert db_drop.files() == ["enrol.csv.done"]


def test_a_file_replaced_while_it_is_applied_has_every_line_read_applied(db_drop):
    users, course = _setup(db_drop)
    path = db_drop.write("enrol.csv", _lines(["u1", "u2", "u3", "u4", "u5", "u6"]))
    newer = _lines(["v1", "v2"])

    [result] = list(process(db_drop.site, progress=_on("applying", lambda: _replace(path, newer))))

    assert result.outcome == APPLIED_CHANGED and result.counts["enrolled"] == 6
    assert result.note == (
        "enrol.csv changed after it was read: all 6 line(s) read were applied, once; the file "
        "now under that name was left in place, not renamed, and is applied as a new file"
    )
    assert result.as_json()["outcome"] == "applied_changed" and result.renamed_to is None
    assert _enrolled(db_drop, users, course) == ["u1", "u2", "u3", "u4", "u5", "u6"]
    assert db_drop.files() == ["enrol.csv"] and path.read_text() == newer
    assert _statuses(db_drop) == ["changed"]
    [mail] = _mails(db_drop)
    assert mail.subject == "Flat-file enrolment: enrol.csv changed after it was read"
    assert result.note in mail.body
    reason = db_drop.site.session.scalar(
        select(LogEntry.reason).where(LogEntry.event == "flatfile_processed")
    )
    assert reason.endswith(result.note)

    [again] = db_drop.process()
    assert again.outcome == APPLIED and again.counts["enrolled"] == 2
    assert db_drop.files() == ["enrol.csv.done"]
    assert _statuses(db_drop) == ["changed", "finished"]


def test_a_run_killed_mid_file_then_the_file_changed_finishes_the_lines_it_read(db_drop):
    """Before: the next run marked the first file "abandoned", keeping the lines it had applied
    (20,000 of 50,000 in the issue) and dropping the others."""
    users, course = _setup(db_drop)
    path = db_drop.write("enrol.csv", _lines(["u1", "u2", "u3", "u4", "u5", "u6"]))

    def kill():
        raise Killed()

    try:
        list(process(db_drop.site, progress=_on("applying", kill)))
    except Killed:
        pass
    db_drop.site.session.rollback()
    assert len(_enrolled(db_drop, users, course)) == 2  # one chunk committed
    _replace(path, _lines(["v1", "v2"]))

    first, second = db_drop.process()

    assert (first.outcome, first.counts["lines"], first.counts["enrolled"]) == (
        APPLIED_CHANGED,
        6,
        6,
    )
    assert second.outcome == APPLIED and second.counts["enrolled"] == 2
    assert _enrolled(db_drop, users, course) == sorted(users)
    assert len(db_drop.events("user_enrolled")) == 8  # each line applied once
    assert db_drop.files() == ["enrol.csv.done"]
    assert _statuses(db_drop) == ["changed", "finished"]


def test_the_command_says_what_became_of_a_changed_file(db_drop, any_db):
    """The real ``enrolkit flatfile process``, text and JSON, after a run killed mid-file and a
    new version dropped under the same name."""
    users, course = _setup(db_drop)
    path = db_drop.write("enrol.csv", _lines(["u1", "u2", "u3", "u4"]))

    def kill():
        raise Killed()

    try:
        list(process(db_drop.site, progress=_on("applying", kill)))
    except Killed:
        pass
    db_drop.site.session.rollback()
    _replace(path, _lines(["v1"]))
    env = {**os.environ, "ENROLKIT_DATABASE_URL": any_db}
    shown = subprocess.run(
        [ENROLKIT, "flatfile", "process"], env=env, capture_output=True, text=True, timeout=120
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [
        "enrol.csv: 4 line(s), 4 applied, 0 scheduled, 0 rejected; enrolled 4, updated 0, "
        "suspended 0, unenrolled 0, roles added 4, removed 0",
        "  enrol.csv changed after it was read: all 4 line(s) read were applied, once; the file "
        "now under that name was left in place, not renamed, and is applied as a new file",
        "enrol.csv: 1 line(s), 1 applied, 0 scheduled, 0 rejected; enrolled 1, updated 0, "
        "suspended 0, unenrolled 0, roles added 1, removed 0 -> enrol.csv.done",
    ]
    _replace(db_drop.folder / "again.csv", _lines(["u5"]))
    as_json = subprocess.run(
        [ENROLKIT, "flatfile", "process", "--json"], env=env, capture_output=True, text=True
    )
    [result] = json.loads(as_json.stdout)
    assert (result["outcome"], result["note"], result["errors_not_shown"]) == ("applied", "", 0)
