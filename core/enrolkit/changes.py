"""The batched change records that change hooks receive, and a course-access decision."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EnrolmentChanges:
    """What one applied plan changed in one enrolment instance; user ids per kind of change."""

    instance_id: int
    course_id: int
    method: str
    origin: str
    reason: str
    enrolled: tuple[int, ...] = ()
    updated: tuple[int, ...] = ()
    suspended: tuple[int, ...] = ()
    unenrolled: tuple[int, ...] = ()

    @property
    def users(self) -> tuple[int, ...]:
        return self.enrolled + self.updated + self.suspended + self.unenrolled

    def __bool__(self) -> bool:
        return bool(self.users)


@dataclass(frozen=True)
class RoleChange:
    """A role assigned (``added``) or unassigned in a context."""

    user_id: int
    role_id: int
    contextlevel: str
    instanceid: int
    added: bool
    component: str = ""
    itemid: int = 0


@dataclass(frozen=True)
class InstanceChange:
    """An enrolment instance was created, updated, enabled, disabled or deleted.

    A plain record rather than the instance itself, so that a deleted instance can be described
    too. ``enabled`` is the instance's state after the change (False once deleted)."""

    KINDS = ("created", "updated", "enabled", "disabled", "deleted")

    instance_id: int
    course_id: int
    method: str
    kind: str
    enabled: bool

    def __post_init__(self):
        if self.kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, not {self.kind!r}")


@dataclass(frozen=True)
class CourseAccess:
    """A method's answer to a course view: ``granted``, ``confirm`` (offer "Enrol me") or ``denied``.

    The core's decision on a course view is a ``CourseAccess`` too; when it is ``confirm``,
    ``offers`` holds every ``confirm`` answer (one "Enrol me" each, e.g. two self-enrolment
    instances with their own keys) and the decision's own fields are the first one's."""

    decision: str
    reason: str = ""
    instance_id: int | None = None
    redirect: str | None = None
    offers: tuple[CourseAccess, ...] = ()

    DECISIONS = ("granted", "confirm", "denied")

    def __post_init__(self):
        if self.decision not in self.DECISIONS:
            raise ValueError(f"decision must be one of {self.DECISIONS}, not {self.decision!r}")


@dataclass(frozen=True)
class ProfileChange:
    """Users whose profile changed, and which fields (standard names or ``profile_field_x``)."""

    user_ids: tuple[int, ...]
    fields: tuple[str, ...] = field(default_factory=tuple)
