"""When a completion counts, and when the enrolment it earns starts and ends."""

from __future__ import annotations

from dataclasses import dataclass

from enrolkit import clock
from enrolkit.models import EnrolInstance
from sqlalchemy import ColumnElement


@dataclass(frozen=True)
class Timing:
    delay: int = 0
    duration: int = 0
    enrolstart: int = 0
    enrolend: int = 0

    @classmethod
    def of(cls, instance: EnrolInstance) -> Timing:
        settings = instance.settings or {}
        return cls(**{name: int(settings.get(name) or 0) for name in cls.__dataclass_fields__})

    def accepts(self, timecompleted: int) -> bool:
        """Whether a completion at ``timecompleted`` falls in the instance's window. The window
        is about the completion, not the moment it is processed, so the live event, a
        completion recorded later by hand and a backfill all answer the same."""
        return (not self.enrolstart or timecompleted >= self.enrolstart) and (
            not self.enrolend or timecompleted <= self.enrolend
        )

    def accepts_sql(self, timecompleted: ColumnElement[int]) -> list[ColumnElement[bool]]:
        """:meth:`accepts` as SQL conditions on a completion time column."""
        conditions = []
        if self.enrolstart:
            conditions.append(timecompleted >= self.enrolstart)
        if self.enrolend:
            conditions.append(timecompleted <= self.enrolend)
        return conditions

    def window(self) -> str:
        return (
            f"{clock.iso(self.enrolstart) or 'any time'} to {clock.iso(self.enrolend) or 'no end'}"
        )

    def start(self, timecompleted: int, now: int) -> int:
        """Completion time + delay, but never in the past: a completion recorded late (an
        equivalence dated last year) or found by a backfill starts its enrolment now, so a
        duration is never used up before the enrolment exists."""
        return max(timecompleted + self.delay, now)

    def end(self, start: int) -> int:
        return start + self.duration if self.duration else 0
