"""Which course each completion instance waits for, as an indexed table.

``on_completion`` runs inside the transaction that records a completion and must find the
instances naming the completed course at once. Instance settings are JSON, and a JSON-path
lookup is not indexed on either database; scanning every completion instance grows with the
site. So each instance's source course id is kept here, keyed by instance and indexed by source,
written whenever an instance is saved and removed with it (foreign keys cascade: deleting the
instance or the source course drops the row).
"""

from __future__ import annotations

from enrolkit.models import Base, Course, EnrolInstance
from enrolkit.site import Site
from sqlalchemy import ForeignKey, delete, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from . import METHOD


class CompletionSource(Base):
    """One row per completion instance: the course whose completion it waits for."""

    __tablename__ = "enrol_completion_sources"
    instance_id: Mapped[int] = mapped_column(
        ForeignKey("enrol_instances.id", ondelete="CASCADE"), primary_key=True
    )
    source_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)


def remember(site: Site, instance_id: int, source_id: int) -> None:
    """Record (or change) the source of an instance, in the caller's transaction."""
    site.session.execute(
        delete(CompletionSource).where(CompletionSource.instance_id == instance_id)
    )
    site.session.execute(
        insert(CompletionSource).values(instance_id=instance_id, source_id=source_id)
    )


def source_of(site: Site, instance_id: int) -> Course | None:
    return site.session.scalar(
        select(Course)
        .join(CompletionSource, CompletionSource.source_id == Course.id)
        .where(CompletionSource.instance_id == instance_id)
    )


def waiting_for(site: Site, course_id: int, *, enabled_only: bool = True) -> list[EnrolInstance]:
    """The (enabled) completion instances whose source is ``course_id`` (an index lookup)."""
    stmt = (
        select(EnrolInstance)
        .join(CompletionSource, CompletionSource.instance_id == EnrolInstance.id)
        .where(CompletionSource.source_id == course_id, EnrolInstance.method == METHOD)
        .order_by(EnrolInstance.course_id, EnrolInstance.sortorder, EnrolInstance.id)
    )
    if enabled_only:
        stmt = stmt.where(EnrolInstance.enabled.is_(True))
    return list(site.session.scalars(stmt))


def links(site: Site, *, enabled_only: bool = True) -> list[tuple[int, int]]:
    """Every (source course id, target course id) pair that completion instances make."""
    stmt = select(CompletionSource.source_id, EnrolInstance.course_id).join(
        EnrolInstance, EnrolInstance.id == CompletionSource.instance_id
    )
    if enabled_only:
        stmt = stmt.where(EnrolInstance.enabled.is_(True))
    return [(source, target) for source, target in site.session.execute(stmt)]
