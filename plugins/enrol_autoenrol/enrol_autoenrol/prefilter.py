"""Which login-mode instances a user could match, found through an index before any rule runs.

A login must not cost more as the site grows instances the user cannot match. So each login-mode
instance's rule is reduced, when it is saved, to *slots*: sets of ``(field, value)`` pairs such
that every matching user has at least one pair of each slot. A field is a standard one (a
``users`` column) or ``profile_field_<shortname>``, a custom one. ``department = IT and badge X``
gives one slot ``{(department, IT)}``; ``(department = IT or department = Support) and ...`` gives
``{(department, IT), (department, Support)}``. The slots go to ``enrol_autoenrol_prefilter``,
indexed by column and value. An instance whose rule yields no slot (empty, negated, badges only)
gets one slot with the pair ``('', '')``, which every user has.

At login one indexed query finds the instances all of whose slots the user's own values (their
columns, and their ``profile_data`` rows, '' for a custom field without one) satisfy,
that are enabled, and in whose course the user has no enrolment yet; only their rules are then
evaluated in Python. The index can only widen the set of candidates, never narrow it wrongly: the
rule decides.
"""

from __future__ import annotations

from collections.abc import Iterator

from enrolkit.models import (
    STANDARD_FIELDS,
    Base,
    EnrolInstance,
    ProfileData,
    ProfileField,
    User,
    UserEnrolment,
)
from enrolkit.people import PROFILE_PREFIX
from enrolkit.rules import Rule
from enrolkit.rules.tree import Condition, Group
from enrolkit.site import Site
from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    String,
    and_,
    delete,
    distinct,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.orm import Mapped, mapped_column

from .schema import LOGIN

#: The pair of the catch-all slot: an instance without an indexable equality.
ANYONE = ("", "")
#: Longest value indexed; a longer one is left out of the index (the rule still decides).
VALUE_LENGTH = 255
#: Longest field name: ``profile_field_`` and a custom field's shortname (100 characters).
FIELD_LENGTH = 120

Slot = frozenset[tuple[str, str]]


class PrefilterPair(Base):
    """One pair of one slot of a login-mode instance; ``slots`` repeats the instance's count."""

    __tablename__ = "enrol_autoenrol_prefilter"
    instance_id: Mapped[int] = mapped_column(
        ForeignKey("enrol_instances.id", ondelete="CASCADE"), primary_key=True
    )
    slot: Mapped[int] = mapped_column(Integer, primary_key=True)
    field: Mapped[str] = mapped_column(String(FIELD_LENGTH), primary_key=True)
    value: Mapped[str] = mapped_column(String(VALUE_LENGTH), primary_key=True)
    slots: Mapped[int] = mapped_column(Integer)
    __table_args__ = (
        Index("ix_enrol_autoenrol_prefilter_lookup", "field", "value", "instance_id"),
    )


def slots(rule: Rule) -> list[Slot]:
    """The rule's slots: each is a set of pairs, one of which every matching user has."""
    return list(dict.fromkeys(_slots(rule.root))) if not rule.is_empty else []


def _pair(condition: Condition) -> tuple[str, str] | None:
    pair = condition.kind.prefilter(condition.params)
    if pair is None:
        return None
    field, value = pair
    known = field in STANDARD_FIELDS or field.startswith(PROFILE_PREFIX)
    if not known or len(field) > FIELD_LENGTH or len(value) > VALUE_LENGTH:
        return None
    return field, value


def _slots(group: Group) -> Iterator[Slot]:
    """Slots of a group that must hold: each required child's, or one for an "any of"."""
    if group.op == "&":
        for child in group.children:
            if isinstance(child, Group):
                yield from _slots(child)
            else:
                pair = _pair(child)
                if pair is not None:
                    yield frozenset({pair})
    elif group.op == "|":
        pairs: set[tuple[str, str]] = set()
        for child in group.children:
            one = _one_slot(child)
            if one is None:
                return  # a child that needs no indexed value: the "any of" cannot be indexed
            pairs |= one
        yield frozenset(pairs)


def _one_slot(node: Condition | Group) -> Slot | None:
    """The smallest slot every user passing ``node`` satisfies, if any."""
    if isinstance(node, Condition):
        pair = _pair(node)
        return frozenset({pair}) if pair is not None else None
    return min(_slots(node), key=len, default=None)


def index(site: Site, instance: EnrolInstance, rule: Rule) -> None:
    """Write the instance's slots (or none, when it is not in login mode) in the caller's
    transaction."""
    session = site.session
    session.execute(delete(PrefilterPair).where(PrefilterPair.instance_id == instance.id))
    if (instance.settings or {}).get("mode") != LOGIN:
        return
    found = slots(rule) or [frozenset({ANYONE})]
    session.execute(
        insert(PrefilterPair),
        [
            {
                "instance_id": instance.id,
                "slot": number,
                "field": field,
                "value": value,
                "slots": len(found),
            }
            for number, slot in enumerate(found)
            for field, value in sorted(slot)
        ],
    )


def candidates(site: Site, user: User) -> list[EnrolInstance]:
    """Enabled login-mode instances whose slots ``user`` satisfies, in courses where the user has
    no enrolment yet (by any method, in any state), in a stable order."""
    pairs = [(field, getattr(user, field) or "") for field in STANDARD_FIELDS] + [ANYONE]
    # Every custom field's pair, '' where the user has no value: in the same query.
    custom = select(
        literal(PROFILE_PREFIX) + ProfileField.shortname, func.coalesce(ProfileData.value, "")
    ).outerjoin(
        ProfileData,
        and_(ProfileData.field_id == ProfileField.id, ProfileData.user_id == user.id),
    )
    p = PrefilterPair
    possible = (
        select(p.instance_id)
        .where(
            or_(
                # One expanding parameter, not an AND per field: the statement is built,
                # cache-keyed and sent on every login.
                tuple_(p.field, p.value).in_(pairs),
                tuple_(p.field, p.value).in_(custom),
            )
        )
        .group_by(p.instance_id)
        .having(func.count(distinct(p.slot)) == func.max(p.slots))
    )
    courses_in = (
        select(EnrolInstance.course_id)
        .join(UserEnrolment, UserEnrolment.instance_id == EnrolInstance.id)
        .where(UserEnrolment.user_id == user.id)
    )
    return list(
        site.session.scalars(
            select(EnrolInstance)
            .where(
                EnrolInstance.id.in_(possible),
                EnrolInstance.enabled.is_(True),
                EnrolInstance.course_id.not_in(courses_in),
            )
            .order_by(EnrolInstance.course_id, EnrolInstance.sortorder, EnrolInstance.id)
        )
    )
