"""What the auto-enrol tests read back: enrolments as ``enrolkit enrolment list`` shows them,
log events, and the rules of the issue written as Moodle availability JSON."""

from __future__ import annotations

import json

from enrolkit.enrolments import list_enrolments
from enrolkit.models import LogEntry
from sqlalchemy import select

DAY = 86_400
JAN_2026 = 1767225600  # 2026-01-01T00:00:00Z


def profile(field: str, value: str, *, custom: bool = False) -> dict:
    return {"type": "profile", "cf" if custom else "sf": field, "op": "isequalto", "v": value}


#: (department = IT or department = Support) and badge "Onboarding complété" and date >= 2026-01-01
ONBOARDING = {
    "op": "&",
    "c": [
        {"op": "|", "c": [profile("department", "IT"), profile("department", "Support")]},
        {"type": "badge", "id": "Onboarding complété"},
        {"type": "date", "d": ">=", "t": JAN_2026},
    ],
}


def rule(tree: dict) -> str:
    return json.dumps(tree, ensure_ascii=False)


def rows(site, course) -> dict[str, dict]:
    """username -> the auto-enrol row of ``enrolkit enrolment list``."""
    return {
        row["username"]: row
        for row in list_enrolments(site.site, course)
        if row["method"] == "autoenrol"
    }


def active(site, course) -> set[str]:
    return {name for name, row in rows(site, course).items() if row["status"] == "active"}


def groups_of(site, course) -> dict[str, list[str]]:
    return {name: row["groups"] for name, row in rows(site, course).items()}


def events(site, event: str) -> list[LogEntry]:
    return list(
        site.session.scalars(
            select(LogEntry)
            .where(LogEntry.component == "enrol_autoenrol", LogEntry.event == event)
            .order_by(LogEntry.id)
        )
    )
