"""Cohorts and their members; membership changes fire ``cohort_members_changed`` in batches."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import delete, insert, select

from . import clock, csvfile, db, lengths
from .catalog import ImportRefused, check_category_path, ensure_category
from .csvfile import RowError
from .errors import EnrolkitError
from .locks import retrying
from .models import Cohort, CohortMember, User
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
        with site.atomic():
            if not wanted:
                return []
            now = clock.now()
            inserted: set[int] = set()
            for start in range(0, len(wanted), CHUNK):  # SQLite's limit on bound values
                rows = [
                    {"cohort_id": cohort.id, "user_id": uid, "timeadded": now}
                    for uid in wanted[start : start + CHUNK]
                ]
                inserted.update(
                    site.session.scalars(
                        db.insert_new(site.session, CohortMember)
                        .values(rows)
                        .returning(CohortMember.user_id)
                    )
                )
            added = [uid for uid in wanted if uid in inserted]
            if added:
                _log(site, "cohort_member_added", cohort, added)
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
        with site.atomic():
            if not ids:
                return []
            deleted = set(
                site.session.scalars(
                    delete(CohortMember)
                    .where(CohortMember.cohort_id == cohort.id, CohortMember.user_id.in_(ids))
                    .returning(CohortMember.user_id)
                )
            )
            removed = [uid for uid in ids if uid in deleted]
            if removed:
                _log(site, "cohort_member_removed", cohort, removed)
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


def _log(site: Site, event: str, cohort: Cohort, user_ids: list[int]) -> None:
    from .models import LogEntry

    now = clock.now()
    site.session.execute(
        insert(LogEntry),
        [
            {
                "time": now,
                "event": event,
                "component": "core",
                "user_id": uid,
                "origin": site.origin,
                "reason": f"cohort {cohort.idnumber}",
            }
            for uid in user_ids
        ],
    )
