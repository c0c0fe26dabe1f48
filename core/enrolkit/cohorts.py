"""Cohorts and their members; membership changes fire ``cohort_members_changed`` in batches."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Delete, Insert, delete, insert, literal, select

from . import clock, csvfile, db, lengths
from .catalog import ImportRefused, check_category_path, ensure_category
from .csvfile import RowError
from .errors import EnrolkitError
from .locks import retrying
from .models import Cohort, CohortMember, LogEntry, User
from .site import Site

COHORT_REQUIRED = ("idnumber", "name")
COHORT_OPTIONAL = ("category", "description")
#: Members added per INSERT statement (three bound values each).
CHUNK = 5000


def import_cohorts(
    site: Site, path: str | Path, *, strict: bool = False
) -> tuple[int, int, list[RowError]]:
    db.check_intact(site.session.get_bind().engine)  # never write into a damaged file
    created = updated = 0
    errors: list[RowError] = []
    name = Path(path).name
    with site.atomic():
        for item in csvfile.read(path, required=COHORT_REQUIRED, optional=COHORT_OPTIONAL):
            if isinstance(item, RowError):
                errors.append(item)
                continue
            line, row = item
            if not row["idnumber"] or not row["name"]:
                errors.append(RowError(name, line, "columns idnumber and name must not be empty"))
                continue
            try:
                lengths.check_values(Cohort, {"idnumber": row["idnumber"], "name": row["name"]})
                if row.get("category"):
                    check_category_path(row["category"])
            except EnrolkitError as exc:
                errors.append(RowError(name, line, str(exc)))
                continue
            category = ensure_category(site, row["category"]) if row.get("category") else None
            cohort = site.session.scalar(select(Cohort).where(Cohort.idnumber == row["idnumber"]))
            if cohort is None:
                site.session.add(
                    Cohort(
                        idnumber=row["idnumber"],
                        name=row["name"],
                        description=row.get("description", ""),
                        category_id=category.id if category else None,
                        timecreated=clock.now(),
                    )
                )
                created += 1
            else:
                cohort.name = row["name"]
                if "description" in row:
                    cohort.description = row["description"]
                if category is not None:
                    cohort.category_id = category.id
                updated += 1
        if strict and errors:
            raise ImportRefused(errors)
        site.session.flush()
    return created, updated, errors


def add_members(site: Site, cohort: Cohort, users: list[User]) -> list[int]:
    """Add users (already members are skipped); fire the hook once. Returns the ids added.

    The insert skips members already there, so the same add sent twice at once (a double click,
    two nodes) adds, logs and syncs once, and both callers succeed."""
    wanted = list(dict.fromkeys(u.id for u in users))

    def work() -> list[int]:
        with site.atomic(whole=True):
            if not wanted:
                return []
            now = clock.now()
            inserted: set[int] = set()
            for start in range(0, len(wanted), CHUNK):  # SQLite's limit on bound values
                rows = [
                    {"cohort_id": cohort.id, "user_id": uid, "timeadded": now}
                    for uid in wanted[start : start + CHUNK]
                ]
                insert_new = db.insert_new(site.session, CohortMember).values(rows)
                inserted |= _logged(site, insert_new, "cohort_member_added", cohort)
            added = [uid for uid in wanted if uid in inserted]
            if added:
                site.plugins.cohort_members_changed(
                    site=site, cohort_id=cohort.id, added=tuple(added), removed=()
                )
            return added

    return retrying(site, work)


def remove_members(site: Site, cohort: Cohort, users: list[User]) -> list[int]:
    """Remove users (non-members are skipped); fire the hook once. Returns the ids removed:
    of the same removal sent twice at once, only the one whose delete found the rows logs and
    syncs it."""
    ids = list(dict.fromkeys(u.id for u in users))

    def work() -> list[int]:
        with site.atomic(whole=True):
            if not ids:
                return []
            leave = delete(CohortMember).where(
                CohortMember.cohort_id == cohort.id, CohortMember.user_id.in_(ids)
            )
            deleted = _logged(site, leave, "cohort_member_removed", cohort)
            removed = [uid for uid in ids if uid in deleted]
            if removed:
                site.plugins.cohort_members_changed(
                    site=site, cohort_id=cohort.id, added=(), removed=tuple(removed)
                )
            return removed

    return retrying(site, work)


def delete_cohort(site: Site, cohort: Cohort) -> None:
    with site.atomic():
        site.plugins.cohort_deleted(site=site, cohort_id=cohort.id)
        from .log import record

        record(site, "cohort_deleted", "core", reason=cohort.idnumber)
        site.session.delete(cohort)
        site.session.flush()


def _logged(site: Site, change: Insert | Delete, event: str, cohort: Cohort) -> set[int]:
    """Run ``change`` (an insert or delete of cohort members) and log ``event`` once per member
    it really changed; the ids of those members.

    On PostgreSQL the log insert reads the change's ``RETURNING`` rows through a data-modifying
    CTE: one statement, one round trip, where an LMS sends a one-user change per enrolment.
    SQLite has no such CTE, so there the log is a second statement.
    """
    now, reason = clock.now(), f"cohort {cohort.idnumber}"
    change = change.returning(CohortMember.user_id)
    if site.session.get_bind().dialect.name != "postgresql":
        changed = list(site.session.scalars(change))
        if changed:
            site.session.execute(
                insert(LogEntry),
                [
                    {
                        "time": now,
                        "event": event,
                        "component": "core",
                        "user_id": uid,
                        "origin": site.origin,
                        "reason": reason,
                    }
                    for uid in changed
                ],
            )
        return set(changed)
    rows = change.cte("changed")
    values = {
        "time": literal(now, LogEntry.time.type),
        "event": literal(event, LogEntry.event.type),
        "component": literal("core", LogEntry.component.type),
        "user_id": rows.c.user_id,
        "origin": literal(site.origin, LogEntry.origin.type),
        "reason": literal(reason, LogEntry.reason.type),
    }
    logged = (
        insert(LogEntry)
        .from_select(list(values), select(*values.values()))
        .returning(LogEntry.user_id)
        .add_cte(rows)
    )
    return set(site.session.scalars(logged))
