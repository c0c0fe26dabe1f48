"""Step 2 of applying a file: the staged lines, a chunk of courses at a time, one engine plan
per course, the chunk's plans in one engine batch (:meth:`~enrolkit.engine.Engine.apply_many`).

Each transaction takes the next courses (up to ``chunk_size`` lines; a bigger course is taken
in slices, in line order), applies their plans together, queues or cancels future-dated lines,
and deletes the lines it applied, so a re-run continues with exactly the lines left.

Within a course, lines keep their order: the engine collapses a plan's changes per user (the
last enrolment change wins) and per user and role (the last role change wins). For each user
and role, a line whose timestart is in the future goes to the pending-action queue; a later
line for the same user, course and role replaces it, whether it is immediate or future.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from enrolkit import pending
from enrolkit.engine import ENROL, REMOVE, Change, Outcome, Plan
from enrolkit.enrolments import ensure_instances
from enrolkit.models import Course, User
from enrolkit.site import Site
from sqlalchemy import delete, select, update

from .journal import add_counts, lock
from .method import NAME
from .models import APPLYING, FlatfileLine
from .reader import ADD

#: Dry run: courses described in detail, and users named per kind of change.
SHOWN_COURSES, SHOWN_USERS = 100, 5

_lines = FlatfileLine.__table__.c


@dataclass
class Applier:
    """Applies the staged lines of one file."""

    site: Site
    file_id: int
    name: str
    chunk_size: int
    #: The site's removal action for ``del`` lines, read once for the run.
    removal: str
    dry_run: bool = False
    #: Dry run: what would change, per course (the first ``SHOWN_COURSES``).
    changes: list[dict] = field(default_factory=list)
    _instances: dict[int, int] = field(default_factory=dict)
    _with_pending: set[int] = field(default_factory=set)

    def run(self, advance: Callable[[int], None]) -> None:
        self._with_pending = set(
            self.site.session.scalars(
                select(pending.pending_table.c.instance_id)
                .where(
                    pending.pending_table.c.method == NAME,
                    pending.pending_table.c.status == pending.PENDING,
                )
                .distinct()
            )
        )
        while True:
            with self.site.atomic():
                journal = lock(self.site, self.file_id)
                if journal.status != APPLYING:
                    return
                batch = self._next_batch()
                if not batch:
                    return
                counts: dict[str, int] = {}
                self._find_instances([course_id for course_id, _ in batch])
                self._apply_courses(batch, counts)
                add_counts(journal, **counts)
            advance(sum(len(rows) for _, rows in batch))

    # --- what to apply next -------------------------------------------------------------------

    def _next_batch(self) -> list[tuple[int, list]]:
        """The next courses in id order, up to ``chunk_size`` lines, their lines taken (deleted)
        from the staging table; a course with more lines than that comes in slices.

        One read in the staging table's key order (file, course, line), at most ``chunk_size``
        rows: when it is full, the last course may have more lines, so it is left for the next
        chunk, unless it is the only one (then this is its first slice). No count per course,
        which would scan far more of the table than a chunk at each step."""
        session = self.site.session
        columns = (_lines.line, _lines.course_id, _lines.user_id, _lines.role_id, _lines.op,
                   _lines.timestart, _lines.timeend)  # fmt: skip
        mine = _lines.file_id == self.file_id
        rows = session.execute(
            select(*columns)
            .where(mine)
            .order_by(_lines.course_id, _lines.line)
            .limit(self.chunk_size)
        ).all()
        if not rows:
            return []
        last = rows[-1].course_id
        if len(rows) < self.chunk_size:
            taken = _lines.course_id <= last
        elif rows[0].course_id == last:
            taken = (_lines.course_id == last) & (_lines.line <= rows[-1].line)
        else:
            rows = [row for row in rows if row.course_id != last]
            taken = _lines.course_id < last
        session.execute(delete(FlatfileLine.__table__).where(mine, taken))
        batch: dict[int, list] = {}
        for row in rows:
            batch.setdefault(row.course_id, []).append(row)
        return list(batch.items())

    # --- a chunk of courses ---------------------------------------------------------------

    def _apply_courses(self, batch: list[tuple[int, list]], counts: dict[str, int]) -> None:
        """One plan per course with immediate lines, all applied in one engine batch."""
        plans: list[Plan] = []
        scheduled: dict[int, int] = {}
        for course_id, rows in batch:
            plan, scheduled[course_id] = self._course_plan(course_id, rows)
            if plan is not None:
                plans.append(plan)
        _add(counts, scheduled=sum(scheduled.values()))
        outcomes = {
            outcome.instance_id: outcome
            for outcome in self.site.engine.apply_many(plans, dry_run=self.dry_run)
        }
        for outcome in outcomes.values():
            _add(counts, **outcome.counts())
        if self.dry_run:
            for course_id, _ in batch:
                instance_id = self._instances[course_id]
                outcome = outcomes.get(instance_id)
                if outcome is not None or scheduled[course_id]:
                    empty = Outcome(instance_id, dry_run=True)
                    self._describe(course_id, outcome or empty, scheduled[course_id])

    def _course_plan(self, course_id: int, rows: list) -> tuple[Plan | None, int]:
        """The plan of one course's immediate lines (None without any), after queueing its
        future-dated lines; and how many were queued."""
        instance_id = self._instance(course_id)
        now = self.site.now()
        changes, last = [], {}
        for row in rows:
            last[row.user_id, row.role_id] = row
            if row.timestart > now:
                continue
            reason = f"{self.name} line {row.line}"
            if row.op == ADD:
                changes.append(
                    Change(
                        row.user_id, ENROL, row.role_id, row.timestart, row.timeend, None, reason
                    )
                )
            else:
                changes.append(Change(row.user_id, REMOVE, row.role_id, reason=reason))
        future = [row for row in last.values() if row.timestart > now]
        settled = [key for key, row in last.items() if row.timestart <= now]
        if not self.dry_run:
            if instance_id in self._with_pending and settled:
                self._cancel(instance_id, settled)
            for row in future:
                self._schedule(instance_id, row)
        if not changes:
            return None, len(future)
        plan = Plan(
            instance_id, reason=f"flat file {self.name}", changes=changes, removal=self.removal
        )
        return plan, len(future)

    def _find_instances(self, course_ids: list[int]) -> None:
        """The instances of these courses, the missing ones created, in a few statements."""
        wanted = [course_id for course_id in course_ids if course_id not in self._instances]
        if wanted:
            courses = self.site.session.scalars(select(Course).where(Course.id.in_(wanted)))
            found = ensure_instances(self.site, list(courses), NAME)
            self._instances.update((course_id, found[course_id].id) for course_id in wanted)

    def _instance(self, course_id: int) -> int:
        return self._instances[course_id]

    def _cancel(self, instance_id: int, keys: list[tuple[int, int]]) -> None:
        """An immediate line replaces the pending action of the same user, course and role."""
        table = pending.pending_table
        names = [pending.default_key(NAME, instance_id, user, role) for user, role in keys]
        for start in range(0, len(names), 1000):
            self.site.session.execute(
                update(table)
                .where(table.c.key.in_(names[start : start + 1000]))
                .where(table.c.status == pending.PENDING)
                .values(status=pending.CANCELLED, timeapplied=self.site.now())
            )

    def _schedule(self, instance_id: int, row) -> None:
        pending.schedule(
            self.site,
            due=row.timestart,
            action=ENROL if row.op == ADD else REMOVE,
            instance_id=instance_id,
            user_id=row.user_id,
            role_id=row.role_id,
            timestart=row.timestart,
            timeend=row.timeend,
            reason=f"{self.name} line {row.line}",
        )
        self._with_pending.add(instance_id)

    def _describe(self, course_id: int, outcome: Outcome, scheduled: int) -> None:
        if len(self.changes) >= SHOWN_COURSES:
            return
        kinds = ("enrolled", "updated", "suspended", "unenrolled")
        shown = {kind: getattr(outcome, kind)[:SHOWN_USERS] for kind in kinds}
        ids = sorted({uid for uids in shown.values() for uid in uids})
        names = dict(
            self.site.session.execute(select(User.id, User.username).where(User.id.in_(ids))).all()
        )
        self.changes.append(
            {
                "course": self.site.session.get(Course, course_id).shortname,
                **{kind: len(getattr(outcome, kind)) for kind in kinds},
                "scheduled": scheduled,
                "users": {kind: [names[uid] for uid in shown[kind]] for kind in kinds},
            }
        )


def _add(counts: dict[str, int], **more: int) -> None:
    for key, value in more.items():
        counts[key] = counts.get(key, 0) + value
