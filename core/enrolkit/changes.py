"""The batched change records that change hooks receive, and a course-access decision."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import overload


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


class RoleChanges(Sequence[RoleChange]):
    """The ``role_assignments_changed`` payload of an engine batch: a read-only sequence of
    :class:`RoleChange` built from plain rows on first use. A batch of 100,000 enrolments
    changes 100,000 roles, and the hook implementations installed everywhere (webhooks, meta,
    category) return before reading them when their feature is off: building the records
    up front cost about a fifth of a second per batch for nobody. It compares equal to a tuple
    of the same records; ``tuple(changes)`` gives one."""

    __slots__ = ("_rows", "_make", "_built")

    def __init__(self, rows: Sequence, make: Callable[..., RoleChange]) -> None:
        #: One row per record, and how a row becomes one: ``make(*row)``.
        self._rows, self._make = rows, make
        self._built: tuple[RoleChange, ...] | None = None

    def _records(self) -> tuple[RoleChange, ...]:
        if self._built is None:
            make = self._make
            self._built = tuple(make(*row) for row in self._rows)
            self._rows = ()
        return self._built

    def __len__(self) -> int:
        return len(self._built if self._built is not None else self._rows)

    @overload
    def __getitem__(self, index: int) -> RoleChange: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[RoleChange, ...]: ...
    def __getitem__(self, index):
        return self._records()[index]

    def __iter__(self) -> Iterator[RoleChange]:
        return iter(self._records())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RoleChanges | tuple):
            return self._records() == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._records())

    def __add__(self, other: Iterable[RoleChange]) -> tuple[RoleChange, ...]:
        return self._records() + tuple(other)

    def __radd__(self, other: Iterable[RoleChange]) -> tuple[RoleChange, ...]:
        return tuple(other) + self._records()

    def __repr__(self) -> str:
        return f"RoleChanges({self._records()!r})"


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
