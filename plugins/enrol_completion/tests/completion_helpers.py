"""What an admin sees through the CLI, for the completion tests (a module of its own: test
folders are not packages, so helpers are imported by this unique name)."""

from __future__ import annotations

import json


def ok(result):
    assert result.exit_code == 0, result.output
    return result


def refused(result, fragment: str) -> None:
    assert result.exit_code != 0, result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("enrolkit: error:") and fragment in last, result.stderr


def listing(cli, *args: str) -> list[dict]:
    return json.loads(ok(cli(*args, "--json")).stdout)


def enrolled(cli, course: str) -> dict[str, dict]:
    """``enrolkit enrolment list COURSE`` of the completion method, by username."""
    rows = listing(cli, "enrolment", "list", course)
    return {row["username"]: row for row in rows if row["method"] == "completion"}


def log_events(cli, event: str) -> list[dict]:
    return listing(cli, "log", "--component", "enrol_completion", "--event", event)
